"""Models on top of the gold tables: forecasts, churn risk and plan recommendations."""
