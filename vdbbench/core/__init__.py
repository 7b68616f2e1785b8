"""Shared foundations every layer may use: filters, metrics, distances, schema, results, provenance."""
