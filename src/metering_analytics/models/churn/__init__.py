"""Churn risk per subscription: features, labels, heuristic, model, drivers (see docs/metrics.md)."""
