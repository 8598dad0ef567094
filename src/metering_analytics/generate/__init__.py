"""Deterministic sample data: Event Hubs Capture files of a metered-billing-accelerator deployment.

`generate()` writes a realistic stream (plans of conf/prices.yml, customers with seasonality,
growth, churn and overage, the aggregator's pings and Marketplace results, a little junk) as Capture
Avro files in both Capture path layouts, plus the accelerator's per-partition state snapshots.
"""
from metering_analytics.generate.run import DEFAULT_EVENTS_PER_SUBSCRIPTION_HOUR, GenerationSummary, generate

__all__ = ["generate", "GenerationSummary", "DEFAULT_EVENTS_PER_SUBSCRIPTION_HOUR"]
