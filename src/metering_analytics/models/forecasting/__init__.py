"""Forecasts of event and usage totals, backtested against seasonal-naive baselines; capacity planning;
per-subscription projections to the end of the billing cycle. Entry point: `stage.run_forecasts`."""
