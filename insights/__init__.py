"""Insights: each endpoint's captured traffic, latency, errors, scaling and cost as charts,
its captured records, and load tests from the browser."""
