"""Capacity planning: forecast peak ingress per day against the Event Hubs namespace's capacity.

Event Hubs throttles on sustained rate (gold.ops_throughput's busiest minute / 60), but the forecasts are
totals per hour and per day. A peak factor bridges them: per period of history, (busiest-minute events/s)
/ (the period's mean events/s); the plan uses a high quantile of it over the recent past. A day's forecast
peak = the busiest forecast hour's events / 3600 x the hourly factor for days the hourly forecast covers
in full, else the day's forecast events / 86400 x the daily factor. Headroom = (capacity - peak) /
capacity x 100, the same definition as gold.ops_throughput.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from pyspark.sql import DataFrame
from pyspark.sql import Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BooleanType,
    DateType,
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from metering_analytics.models.forecasting.settings import DAILY, HOURLY

OVERALL_SERIES = "events"

CAPACITY_PLAN_SCHEMA = StructType(
    [
        StructField("day", DateType(), False),
        StructField("source", StringType(), False),  # hourly | daily: the forecast the day's peak comes from
        StructField("forecast_events", DoubleType(), False),
        StructField("peak_factor", DoubleType(), False),
        StructField("peak_events_per_second", DoubleType(), False),  # from yhat
        StructField("peak_events_per_second_upper", DoubleType(), True),  # from yhat_upper (80% interval)
        StructField("capacity_events_per_second", LongType(), False),
        StructField("headroom_percent", DoubleType(), False),
        StructField("headroom_percent_upper", DoubleType(), True),
        StructField("margin_percent", DoubleType(), False),
        StructField("below_margin", BooleanType(), False),
        StructField("first_breach_date", DateType(), True),  # same on every row; null: no breach in the horizon
        StructField("trained_at", TimestampType(), False),
    ]
)


def peak_factors(throughput: DataFrame, end: datetime, lookback_days: int, quantile: float) -> DataFrame:
    """One row (hourly_factor, daily_factor): the `quantile` of busiest-minute rate / mean rate over the
    periods that start in [end - lookback, end) and had events; 1.0 (the mean rate) without history."""
    recent = throughput.where((F.col("period_start") >= F.lit(end - timedelta(days=lookback_days)))
                              & (F.col("period_start") < F.lit(end)) & (F.col("events") > 0))
    seconds = F.when(F.col("grain") == "hour", F.lit(3600.0)).otherwise(F.lit(86400.0))
    ratio = F.col("peak_events_per_second") / (F.col("events") / seconds)
    return recent.agg(
        F.coalesce(F.percentile_approx(F.when(F.col("grain") == "hour", ratio), quantile, 10000), F.lit(1.0))
        .alias("hourly_factor"),
        F.coalesce(F.percentile_approx(F.when(F.col("grain") == "day", ratio), quantile, 10000), F.lit(1.0))
        .alias("daily_factor"),
    )


def capacity_plan(forecasts: DataFrame, throughput: DataFrame, capacity_events_per_second: int,
                  margin_percent: float, plan_on: str, end: datetime, lookback_days: int, quantile: float,
                  trained_at: datetime) -> DataFrame:
    """CAPACITY_PLAN_SCHEMA rows, one per forecast day of the overall `events` series.

    `forecasts` has gold.forecast_event_totals' columns; `end` is the end of the observed hours (the peak
    factors are measured before it). A day is below the margin when its headroom (from the upper bound with
    plan_on=upper, else from yhat) is under `margin_percent`; first_breach_date is the earliest such day.
    """
    overall = forecasts.where(F.col("series") == OVERALL_SERIES)
    hourly_days = (
        overall.where(F.col("granularity") == HOURLY)
        .groupBy(F.to_date("ts").alias("day"))
        .agg(F.count(F.lit(1)).alias("hours"), F.sum("yhat").alias("forecast_events"),
             F.max("yhat").alias("peak"), F.max("yhat_upper").alias("peak_upper"))
        .where(F.col("hours") == 24)
        .select("day", F.lit(HOURLY).alias("source"), "forecast_events", "peak", "peak_upper")
    )
    daily_days = (
        overall.where(F.col("granularity") == DAILY)
        .select(F.to_date("ts").alias("day"), F.lit(DAILY).alias("source"), F.col("yhat").alias("forecast_events"),
                F.col("yhat").alias("peak"), F.col("yhat_upper").alias("peak_upper"))
        .join(hourly_days.select("day"), "day", "left_anti")
    )
    # One row: taken to the driver so the plan below needs no cross join.
    factors = peak_factors(throughput, end, lookback_days, quantile).first()
    factor = F.when(F.col("source") == HOURLY, F.lit(float(factors["hourly_factor"]))) \
        .otherwise(F.lit(float(factors["daily_factor"])))
    seconds = F.when(F.col("source") == HOURLY, F.lit(3600.0)).otherwise(F.lit(86400.0))
    capacity = float(capacity_events_per_second)

    def headroom(peak):
        return F.round((F.lit(capacity) - peak) / F.lit(capacity) * 100, 2)

    planned = (
        hourly_days.unionByName(daily_days)
        .withColumn("peak_factor", F.round(factor, 4))
        .withColumn("peak_events_per_second", F.round(F.col("peak") / seconds * F.col("peak_factor"), 4))
        .withColumn("peak_events_per_second_upper",
                    F.round(F.col("peak_upper") / seconds * F.col("peak_factor"), 4))
        .withColumn("headroom_percent", headroom(F.col("peak_events_per_second")))
        .withColumn("headroom_percent_upper", headroom(F.col("peak_events_per_second_upper")))
    )
    basis = F.coalesce(F.col("headroom_percent_upper"), F.col("headroom_percent")) if plan_on == "upper" \
        else F.col("headroom_percent")
    planned = planned.withColumn("below_margin", basis < F.lit(float(margin_percent)))
    # One row per forecast day (at most a few hundred): a window over all of them is cheap.
    first = F.min(F.when(F.col("below_margin"), F.col("day"))).over(Window.partitionBy())
    return planned.withColumn("first_breach_date", first).select(
        "day", "source", F.round("forecast_events", 4).alias("forecast_events"), "peak_factor",
        "peak_events_per_second", "peak_events_per_second_upper",
        F.lit(capacity_events_per_second).cast("long").alias("capacity_events_per_second"),
        "headroom_percent", "headroom_percent_upper", F.lit(float(margin_percent)).alias("margin_percent"),
        "below_margin", "first_breach_date", F.lit(trained_at).cast("timestamp").alias("trained_at"),
    )
