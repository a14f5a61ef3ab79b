"""Insights: charts of captured data, latency, errors, scaling and cost per endpoint."""
