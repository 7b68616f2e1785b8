"""The bm25 store: its adapter and the facts about it."""
