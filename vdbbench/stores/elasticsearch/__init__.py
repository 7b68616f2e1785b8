"""The elasticsearch store: its adapter and the facts about it."""
