"""The exact store: its adapter and the facts about it."""
