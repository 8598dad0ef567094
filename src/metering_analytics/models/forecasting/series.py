"""The series to forecast, built from the gold persona tables: (series, granularity, ts, y, is_headline).

Series names (the `series` column of every forecast table):

| name | y |
|---|---|
| `events` | every Capture record (all message types, quarantined included) |
| `events/type=<message_type>` | records of one message type (gold.ops_event_totals_hourly's types) |
| `events/plan=<plan>/meter=<meter>/dimension=<dimension or ->` | valid usage events of one product |
| `usage/plan=<plan>/meter=<meter>/dimension=<dimension or ->` | their quantity |

Only complete periods are kept: hours (days) that start before `as_of` truncated to the hour (day), so the
partial current period never looks like a drop. Rows are sparse (periods with no events are absent);
the per-series function fills the grid with zeros.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, DoubleType, StringType, StructField, StructType, TimestampType

from metering_analytics.models.forecasting.settings import DAILY, HOURLY, ForecastSettings

SERIES_SCHEMA = StructType(
    [
        StructField("series", StringType(), False),
        StructField("granularity", StringType(), False),  # hourly | daily
        StructField("ts", TimestampType(), False),  # period start (UTC); days at midnight
        StructField("y", DoubleType(), False),
        StructField("is_headline", BooleanType(), False),
    ]
)


def period_end(as_of: datetime, granularity: str) -> datetime:
    """The start of the period containing `as_of`: the exclusive end of the complete periods."""
    hour = as_of.replace(minute=0, second=0, microsecond=0)
    return hour if granularity == HOURLY else hour.replace(hour=0)


def _product(prefix: str) -> Column:
    return F.concat(F.lit(prefix), F.lit("/plan="), F.col("plan_id"), F.lit("/meter="), F.col("meter_name"),
                    F.lit("/dimension="), F.coalesce(F.col("dimension"), F.lit("-")))


def hourly_values(event_totals_hourly: DataFrame, usage_by_product_hourly: DataFrame) -> DataFrame:
    """(series, ts, y) per hour for every series, sparse."""
    events = event_totals_hourly.where(F.col("hour").isNotNull())
    overall = events.groupBy(F.col("hour").alias("ts")).agg(F.sum("events").alias("y")) \
        .withColumn("series", F.lit("events"))
    by_type = events.groupBy(F.concat(F.lit("events/type="), F.col("message_type")).alias("series"),
                             F.col("hour").alias("ts")).agg(F.sum("events").alias("y"))
    usage = usage_by_product_hourly.select(F.col("hour").alias("ts"), _product("events").alias("events_series"),
                                           _product("usage").alias("usage_series"), "events", "quantity")
    product_events = usage.groupBy(F.col("events_series").alias("series"), "ts").agg(F.sum("events").alias("y"))
    product_usage = usage.groupBy(F.col("usage_series").alias("series"), "ts").agg(F.sum("quantity").alias("y"))
    return (overall.unionByName(by_type).unionByName(product_events).unionByName(product_usage)
            .select("series", "ts", F.col("y").cast("double").alias("y")))


def forecast_input(event_totals_hourly: DataFrame, usage_by_product_hourly: DataFrame, as_of: datetime,
                   settings: ForecastSettings) -> DataFrame:
    """SERIES_SCHEMA rows: every series hourly and daily, complete periods within the history each needs
    (the fit history plus the backtest windows)."""
    hourly = hourly_values(event_totals_hourly, usage_by_product_hourly)
    frames = []
    for granularity in (HOURLY, DAILY):
        g = settings.granularity(granularity)
        end = period_end(as_of, granularity)
        windows = g.calibration_windows + settings.selection_windows + settings.holdout_windows
        start = end - timedelta(days=max(g.history_days, settings.min_train_days) + windows * g.backtest_horizon_days)
        values = hourly if granularity == HOURLY else hourly.groupBy(
            "series", F.date_trunc("day", "ts").alias("ts")).agg(F.sum("y").alias("y"))
        frames.append(values.where((F.col("ts") >= F.lit(start)) & (F.col("ts") < F.lit(end)))
                      .withColumn("granularity", F.lit(granularity)))
    both = frames[0].unionByName(frames[1])
    return both.select("series", "granularity", "ts", "y",
                       F.col("series").isin(*settings.headline_series).alias("is_headline"))
