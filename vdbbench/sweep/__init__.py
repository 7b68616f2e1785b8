"""The sweep: plan what to measure from the config, prepare the data, run every store entry."""
