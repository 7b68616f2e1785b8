"""Presentation: the HTML report, compare, export and the capability tables. Reads records only."""
