"""The hnswlib store: its adapter and the facts about it."""
