"""The redis store: its adapter and the facts about it."""
