"""Running points on a store: the store's process, timed passes, scoring, keys, load."""
