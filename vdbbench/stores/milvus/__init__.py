"""The milvus store: its adapter and the facts about it."""
