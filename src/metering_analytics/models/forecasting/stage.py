"""The forecasts stage (after gold): event and usage forecasts, backtest metrics, capacity plan and
per-subscription cycle projections, each table rebuilt in one Delta commit.

`trained_at` is the run's clock `as_of` (the latest enqueued time), never the wall clock: the same input
gives the same tables.
"""
from __future__ import annotations

import time
from datetime import datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from metering_analytics.billing.prices import PriceCatalog, unit_price_frame
from metering_analytics.billing.stage import require_utc_session, utc_naive
from metering_analytics.gold import customer_success as cs
from metering_analytics.gold import operations as ops
from metering_analytics.gold import sales
from metering_analytics.io.lakehouse import Lakehouse, with_columns_of
from metering_analytics.models.forecasting.backtest import (
    FORECAST,
    METRIC,
    RESULT_SCHEMA,
    forecast_series_or_empty,
)
from metering_analytics.models.forecasting.capacity import CAPACITY_PLAN_SCHEMA, capacity_plan
from metering_analytics.models.forecasting.candidates import quiet_prophet_logs
from metering_analytics.models.forecasting.projection import (
    SUBSCRIPTION_USAGE_PROJECTION_SCHEMA,
    priced,
    project,
    projection_input,
)
from metering_analytics.models.forecasting.series import forecast_input, period_end
from metering_analytics.models.forecasting.settings import (
    DAILY,
    HOURLY,
    ForecastSettings,
    load_forecast_settings,
)
from metering_analytics.schemas import BRONZE_EVENTS_SCHEMA, SILVER_PLAN_DIMENSIONS_SCHEMA

__all__ = ["run_forecasts", "load_forecast_settings", "FORECAST_SCHEMAS", "forecast_results"]

FORECAST_EVENT_TOTALS_SCHEMA = StructType(
    [RESULT_SCHEMA[c] for c in ("series", "granularity", "ts", "yhat", "yhat_lower", "yhat_upper", "model",
                                "trained_at")])
FORECAST_METRICS_SCHEMA = StructType(
    [RESULT_SCHEMA[c] for c in ("series", "granularity", "model", "window", "window_role", "test_start",
                                "test_end", "points", "mase", "smape", "coverage_80", "raw_coverage_80",
                                "is_champion", "trained_at")])
# In the order they are written.
FORECAST_SCHEMAS: dict[str, StructType] = {
    "forecast_event_totals": FORECAST_EVENT_TOTALS_SCHEMA,
    "forecast_metrics": FORECAST_METRICS_SCHEMA,
    "capacity_plan": CAPACITY_PLAN_SCHEMA,
    "subscription_usage_projection": SUBSCRIPTION_USAGE_PROJECTION_SCHEMA,
}
_NO_DATA_CLOCK = datetime(1970, 1, 1)


def forecast_results(series: DataFrame, settings: ForecastSettings, as_of: datetime) -> DataFrame:
    """RESULT_SCHEMA rows of every (series, granularity) of `series` (series.SERIES_SCHEMA), fitted in
    parallel: one pandas group per series."""
    ends = {g: period_end(as_of, g) for g in (HOURLY, DAILY)}
    return series.groupBy("series", "granularity").applyInPandas(
        lambda frame: forecast_series_or_empty(frame, settings, ends, as_of), RESULT_SCHEMA)


def run_forecasts(spark: SparkSession, lakehouse: Lakehouse, settings: ForecastSettings, as_of: datetime | None,
                  prices: PriceCatalog) -> dict:
    """Rebuild the four forecast tables; returns a JSON-able summary.

    `as_of` is the report clock (naive means UTC), as for run_gold; None takes the latest enqueued time
    from bronze.events. `prices` values the projected overage.
    """
    started = time.perf_counter()
    require_utc_session(spark)
    quiet_prophet_logs()
    if as_of is None:
        bronze = lakehouse.read_or_empty(spark, "bronze", "events", BRONZE_EVENTS_SCHEMA)
        as_of = bronze.agg(F.max("enqueued_time")).first()[0] or _NO_DATA_CLOCK
    as_of = utc_naive(as_of)

    def gold(table: str, schema: StructType) -> DataFrame:
        return lakehouse.read_or_empty(spark, "gold", table, schema)

    def write(table: str, df: DataFrame) -> int:
        lakehouse.overwrite(with_columns_of(df, FORECAST_SCHEMAS[table]), "gold", table)
        return lakehouse.read(spark, "gold", table).count()

    counts: dict[str, int] = {}
    series = forecast_input(gold("ops_event_totals_hourly", ops.EVENT_TOTALS_HOURLY_SCHEMA),
                            gold("sales_usage_by_product_hourly", sales.USAGE_BY_PRODUCT_HOURLY_SCHEMA),
                            as_of, settings).localCheckpoint()
    series_in = series.select("series", "granularity").distinct().count()
    # Fitted once, written twice: the checkpoint keeps the second write from refitting every model.
    results = forecast_results(series, settings, as_of).localCheckpoint()
    timings = {"series_seconds": round(time.perf_counter() - started, 1)}
    counts["gold.forecast_event_totals"] = write(
        "forecast_event_totals", results.where(F.col("record") == FORECAST))
    counts["gold.forecast_metrics"] = write("forecast_metrics", results.where(F.col("record") == METRIC))
    series_out = results.select("series", "granularity").distinct().count()

    forecasts = lakehouse.read(spark, "gold", "forecast_event_totals")
    counts["gold.capacity_plan"] = write("capacity_plan", capacity_plan(
        forecasts, gold("ops_throughput", ops.THROUGHPUT_SCHEMA), settings.capacity_events_per_second,
        settings.headroom_margin_percent, settings.plan_on, period_end(as_of, HOURLY),
        settings.peak_factor_lookback_days, settings.peak_factor_quantile, as_of))

    timings["capacity_seconds"] = round(time.perf_counter() - started, 1)
    inputs = projection_input(gold("cs_current_cycle", cs.CURRENT_CYCLE_SCHEMA),
                              gold("cs_consumption_daily", cs.CONSUMPTION_DAILY_SCHEMA),
                              lakehouse.read_or_empty(spark, "silver", "plan_dimensions",
                                                      SILVER_PLAN_DIMENSIONS_SCHEMA),
                              as_of, settings.projection_lookback_days).localCheckpoint()
    subscriptions_in = inputs.select("subscription_key").distinct().count()
    projections = project(inputs, as_of, settings.projection_lookback_days)
    counts["gold.subscription_usage_projection"] = write(
        "subscription_usage_projection", priced(projections, unit_price_frame(spark, prices), prices.currency))
    subscriptions_out = lakehouse.read(spark, "gold", "subscription_usage_projection") \
        .select("subscription_key").distinct().count()

    first_breach = lakehouse.read(spark, "gold", "capacity_plan").agg(F.min("first_breach_date")).first()[0]
    return {
        **counts,
        "series_fitted": series_out,
        "series_failed": series_in - series_out,
        "subscriptions_projected": subscriptions_out,
        "subscriptions_failed": subscriptions_in - subscriptions_out,
        "groups_failed": (series_in - series_out) + (subscriptions_in - subscriptions_out),
        "capacity_first_breach_date": first_breach.isoformat() if first_breach else None,
        **timings,
        "seconds": round(time.perf_counter() - started, 1),
    }
