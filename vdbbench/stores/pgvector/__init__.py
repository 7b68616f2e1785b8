"""The pgvector store: its adapter and the facts about it."""
