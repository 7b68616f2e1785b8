"""Plot and format helpers and the ranking that the report and the workloads' sections share."""
