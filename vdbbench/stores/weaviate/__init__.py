"""The weaviate store: its adapter and the facts about it."""
