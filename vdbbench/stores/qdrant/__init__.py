"""The qdrant store: its adapter and the facts about it."""
