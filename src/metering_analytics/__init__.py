"""metering-analytics: a medallion lakehouse over the metered-billing-accelerator's Event Hubs Capture."""

__version__ = "0.1.0"
