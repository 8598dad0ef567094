"""Customer success: per-subscription consumption, the current billing cycle, and a summary per subscription.

cs_consumption_hourly is the one aggregation of silver.usage_events at the (hour, subscription, meter)
grain; the daily table and the sales and operations usage tables are rolled up from it.
"""
from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BooleanType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from metering_analytics.billing import cycles
from metering_analytics.billing.quantities import exact, reported
from metering_analytics.gold.periods import days_between, instant, plus_days

TREND_WINDOW_DAYS = 28  # "the last 4 weeks" of the summary, against the 4 weeks before


def _consumption_schema(period: str, period_type) -> StructType:
    return StructType(
        [
            StructField(period, period_type, False),
            StructField("subscription_key", StringType(), False),
            StructField("plan_id", StringType(), False),
            StructField("meter_name", StringType(), False),
            StructField("dimension", StringType(), True),  # simple meters; null for a waterfall meter
            StructField("events", LongType(), False),
            StructField("quantity", DoubleType(), False),
        ]
    )


CONSUMPTION_HOURLY_SCHEMA = _consumption_schema("hour", TimestampType())
CONSUMPTION_DAILY_SCHEMA = _consumption_schema("day", DateType())
_CONSUMPTION_KEY = ["subscription_key", "plan_id", "meter_name", "dimension"]

CURRENT_CYCLE_SCHEMA = StructType(
    [
        StructField("subscription_key", StringType(), False),
        StructField("plan_id", StringType(), False),
        StructField("renewal_interval", StringType(), False),
        StructField("meter_name", StringType(), False),
        StructField("dimension_type", StringType(), False),
        StructField("dimension", StringType(), True),
        StructField("cycle_index", IntegerType(), False),
        StructField("cycle_start", TimestampType(), False),
        StructField("cycle_end", TimestampType(), False),
        StructField("included_quantity", DoubleType(), True),  # null when Infinite
        StructField("included_infinite", BooleanType(), False),
        StructField("used_quantity", DoubleType(), False),
        StructField("remaining_quantity", DoubleType(), True),  # null when Infinite
        StructField("overage_quantity", DoubleType(), False),
        StructField("cycle_days", DoubleType(), False),
        StructField("elapsed_days", DoubleType(), False),
        StructField("days_left", DoubleType(), False),
        StructField("projected_usage", DoubleType(), True),  # null before any time has elapsed
        StructField("projected_overage", DoubleType(), True),
        StructField("run_out_date", DateType(), True),
        StructField("last_usage_time", TimestampType(), True),
        StructField("as_of", TimestampType(), False),
    ]
)

SUBSCRIPTION_SUMMARY_SCHEMA = StructType(
    [
        StructField("subscription_key", StringType(), False),
        StructField("resource_id", StringType(), True),
        StructField("resource_uri", StringType(), True),
        StructField("plan_id", StringType(), False),
        StructField("renewal_interval", StringType(), False),
        StructField("offer_type", StringType(), False),
        StructField("status", StringType(), False),  # active | deleted
        StructField("subscription_start", TimestampType(), False),
        StructField("deleted_at", TimestampType(), True),
        StructField("tenure_days", IntegerType(), False),
        StructField("next_renewal_date", DateType(), True),  # null once deleted
        StructField("last_activity", TimestampType(), True),  # enqueued time of the latest usage event
        StructField("usage_events_last_4_weeks", LongType(), False),
        StructField("usage_events_prior_4_weeks", LongType(), False),
        StructField("usage_trend_percent", DoubleType(), True),  # null when the prior 4 weeks had none
        StructField("as_of", TimestampType(), False),
    ]
)


def consumption_hourly(usage_events: DataFrame) -> DataFrame:
    """CONSUMPTION_HOURLY_SCHEMA rows from silver.usage_events: events and exact quantity per hour."""
    return (
        usage_events.groupBy(F.date_trunc("hour", "enqueued_time").alias("hour"), *_CONSUMPTION_KEY)
        .agg(F.count(F.lit(1)).alias("events"), reported(F.sum(exact(F.col("quantity")))).alias("quantity"))
        .select(*[f.name for f in CONSUMPTION_HOURLY_SCHEMA.fields])
    )


def consumption_daily(hourly: DataFrame) -> DataFrame:
    """CONSUMPTION_DAILY_SCHEMA rows: the hourly table summed per UTC day."""
    return (
        hourly.groupBy(F.to_date("hour").alias("day"), *_CONSUMPTION_KEY)
        .agg(F.sum("events").alias("events"), reported(F.sum(exact(F.col("quantity")))).alias("quantity"))
        .select(*[f.name for f in CONSUMPTION_DAILY_SCHEMA.fields])
    )


def current_cycle(included_balance: DataFrame, as_of: datetime) -> DataFrame:
    """CURRENT_CYCLE_SCHEMA rows: the current cycle of every active subscription and meter, projected.

    Run-rate: rate = used / elapsed days; projected usage = rate x cycle days. The included quantity
    runs out on cycle_start + included / rate, reported when that is before the cycle's end (for a meter
    already exhausted it is the run-rate estimate of when that happened); null without usage, for
    Infinite meters, or when it lasts the whole cycle at this rate.
    """
    now = instant(as_of)
    elapsed = days_between(F.col("cycle_start"), now)
    cycle_days = days_between(F.col("cycle_start"), F.col("cycle_end"))
    rate = F.col("total_usage") / elapsed
    projected = F.when(elapsed > 0, rate * cycle_days)
    finite = ~F.col("included_infinite")
    runs_out = finite & (projected > F.col("included_quantity"))
    # Guarded by runs_out, so included / rate is below cycle_days and cannot overflow a timestamp.
    run_out = F.when(runs_out, F.to_date(plus_days(F.col("cycle_start"), F.col("included_quantity") / rate)))
    # greatest() skips nulls: test for a projection first.
    projected_overage = F.when(projected.isNotNull(), F.when(
        finite, F.greatest(projected - F.col("included_quantity"), F.lit(0.0))).otherwise(F.lit(0.0)))
    return included_balance.where(F.col("is_current_cycle")).select(
        "subscription_key", "plan_id", "renewal_interval", "meter_name", "dimension_type", "dimension",
        "cycle_index", "cycle_start", "cycle_end", "included_quantity", "included_infinite",
        F.col("total_usage").alias("used_quantity"),
        F.col("remaining_included").alias("remaining_quantity"),
        "overage_quantity",
        F.round(cycle_days, 4).alias("cycle_days"),
        F.round(elapsed, 4).alias("elapsed_days"),
        F.round(days_between(now, F.col("cycle_end")), 4).alias("days_left"),
        # Plain doubles: a run-rate over a few seconds can exceed the exact decimal's range.
        F.round(projected, 9).alias("projected_usage"),
        F.round(projected_overage, 9).alias("projected_overage"),
        run_out.alias("run_out_date"),
        "last_usage_time",
        now.alias("as_of"),
    )


def subscription_summary(subscriptions: DataFrame, included_balance: DataFrame, hourly: DataFrame,
                         as_of: datetime) -> DataFrame:
    """SUBSCRIPTION_SUMMARY_SCHEMA rows, one per subscription (deleted ones included).

    The usage trend counts usage events (meters of one plan measure different units, so their
    quantities do not add up): the hours starting in [as_of - 28 days, as_of) against
    [as_of - 56 days, as_of - 28 days).
    """
    now = instant(as_of)
    window = F.expr(f"INTERVAL {TREND_WINDOW_DAYS} DAYS")
    recent = hourly.groupBy("subscription_key").agg(
        F.sum(F.when((F.col("hour") >= now - window) & (F.col("hour") < now), F.col("events"))).alias("last"),
        F.sum(F.when((F.col("hour") >= now - window - window) & (F.col("hour") < now - window),
                     F.col("events"))).alias("prior"),
    )
    last_activity = included_balance.groupBy("subscription_key").agg(F.max("last_usage_time").alias("last_activity"))
    deleted = F.col("deleted_at").isNotNull() & (F.col("deleted_at") <= now)
    ended = F.when(deleted, F.col("deleted_at")).otherwise(now)
    current_index = cycles.cycle_index("subscription_start", "renewal_months", now)
    last = F.coalesce(F.col("last"), F.lit(0)).cast("long")
    prior = F.coalesce(F.col("prior"), F.lit(0)).cast("long")
    return (
        subscriptions.join(last_activity, "subscription_key", "left")
        .join(recent, "subscription_key", "left")
        .select(
            "subscription_key", "resource_id", "resource_uri", "plan_id", "renewal_interval", "offer_type",
            F.when(deleted, "deleted").otherwise("active").alias("status"),
            "subscription_start", "deleted_at",
            F.greatest(F.datediff(F.to_date(ended), F.to_date("subscription_start")), F.lit(0)).alias("tenure_days"),
            F.when(~deleted, F.to_date(cycles.cycle_end("subscription_start", "renewal_months", current_index)))
            .alias("next_renewal_date"),
            "last_activity",
            last.alias("usage_events_last_4_weeks"),
            prior.alias("usage_events_prior_4_weeks"),
            F.when(prior > 0, F.round((last - prior) / prior * 100, 2)).alias("usage_trend_percent"),
            now.alias("as_of"),
        )
    )
