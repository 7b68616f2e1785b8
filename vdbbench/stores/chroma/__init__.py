"""The chroma store: its adapter and the facts about it."""
