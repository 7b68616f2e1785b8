"""The qdrant-server store: its adapter and the facts about it."""
