"""The lancedb store: its adapter and the facts about it."""
