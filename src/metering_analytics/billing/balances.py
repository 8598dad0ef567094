"""gold.included_balance: per subscription, meter and billing cycle, how much of the included
quantity was used, what went into overage and what is left.

For a waterfall meter the included quantity is its free band, C_0 (the first tier's threshold).
A row exists for every cycle in which the meter saw usage, and for the cycle containing `as_of` of
every subscription active at `as_of` (started, and not deleted by then), so a customer with no usage
yet this cycle still shows a full balance. A deleted subscription has no current cycle.
"""
from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BooleanType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from metering_analytics.billing import cycles
from metering_analytics.billing.overage import meters
from metering_analytics.billing.quantities import QUANTITY, exact, reported

INCLUDED_BALANCE_SCHEMA = StructType(
    [
        StructField("subscription_key", StringType(), False),
        StructField("resource_id", StringType(), True),
        StructField("resource_uri", StringType(), True),
        StructField("plan_id", StringType(), False),
        StructField("renewal_interval", StringType(), False),
        StructField("meter_name", StringType(), False),
        StructField("dimension_type", StringType(), False),
        StructField("dimension", StringType(), True),  # simple meters; null for waterfall
        StructField("cycle_index", IntegerType(), False),
        StructField("cycle_start", TimestampType(), False),
        StructField("cycle_end", TimestampType(), False),  # exclusive
        StructField("included_quantity", DoubleType(), True),  # null when Infinite
        StructField("included_infinite", BooleanType(), False),
        StructField("total_usage", DoubleType(), False),
        StructField("consumed_included", DoubleType(), False),
        StructField("overage_quantity", DoubleType(), False),
        StructField("remaining_included", DoubleType(), True),  # null when Infinite
        StructField("usage_events", LongType(), False),
        StructField("last_usage_time", TimestampType(), True),
        StructField("is_current_cycle", BooleanType(), False),
    ]
)

_CYCLE_KEY = ["subscription_key", "meter_name", "cycle_index"]


def cycle_usage(event_cycles: DataFrame) -> DataFrame:
    """Total usage per (subscription, meter, cycle), exact, from `overage.usage_cycles`."""
    return event_cycles.groupBy(*_CYCLE_KEY).agg(
        exact(F.sum("quantity")).alias("total_usage"),
        F.count(F.lit(1)).alias("usage_events"),
        F.max("enqueued_time").alias("last_usage_time"),
    )


def current_cycles(subscriptions: DataFrame, plan_dimensions: DataFrame, as_of: datetime) -> DataFrame:
    """(subscription, meter, cycle) of the cycle containing `as_of`, for subscriptions active then."""
    now = cycles.timestamp_literal(as_of)
    active = subscriptions.where(
        (F.col("subscription_start") <= now) & (F.col("deleted_at").isNull() | (F.col("deleted_at") > now))
    )
    return (
        active.select("subscription_key",
                      cycles.cycle_index("subscription_start", "renewal_months", now).alias("cycle_index"))
        .join(plan_dimensions.select("subscription_key", "meter_name"), "subscription_key")
        .select(*_CYCLE_KEY, F.lit(True).alias("is_current_cycle"))
    )


def included_balance(event_cycles: DataFrame, subscriptions: DataFrame, plan_dimensions: DataFrame,
                     as_of: datetime) -> DataFrame:
    """INCLUDED_BALANCE_SCHEMA rows; `event_cycles` is `overage.usage_cycles(...)`."""
    return balances_of_cycle_usage(cycle_usage(event_cycles), subscriptions, plan_dimensions, as_of)


def balances_of_cycle_usage(usage: DataFrame, subscriptions: DataFrame, plan_dimensions: DataFrame,
                            as_of: datetime) -> DataFrame:
    """INCLUDED_BALANCE_SCHEMA rows from per-cycle usage (`cycle_usage`, or the billing stage's kept copy)."""
    rows = usage.join(current_cycles(subscriptions, plan_dimensions, as_of), _CYCLE_KEY, "full")
    subs = subscriptions.select("subscription_key", "resource_id", "resource_uri", "plan_id", "renewal_interval",
                                "renewal_months", "subscription_start")
    total = exact(F.coalesce(F.col("total_usage"), F.lit(0)))
    included = F.col("included_quantity").cast(QUANTITY)
    consumed = F.when(F.col("included_infinite"), total).otherwise(F.least(total, included))
    return (
        rows.join(F.broadcast(subs), "subscription_key")
        .join(meters(plan_dimensions), ["subscription_key", "meter_name"])
        .withColumn("total", total)
        .withColumn("consumed", exact(consumed))
        .select(
            "subscription_key", "resource_id", "resource_uri", "plan_id", "renewal_interval", "meter_name",
            "dimension_type", "dimension", "cycle_index",
            cycles.cycle_start("subscription_start", "renewal_months", "cycle_index").alias("cycle_start"),
            cycles.cycle_end("subscription_start", "renewal_months", "cycle_index").alias("cycle_end"),
            reported(included).alias("included_quantity"),
            "included_infinite",
            reported(F.col("total")).alias("total_usage"),
            reported(F.col("consumed")).alias("consumed_included"),
            reported(exact(F.col("total") - F.col("consumed"))).alias("overage_quantity"),
            reported(exact(included - F.col("consumed"))).alias("remaining_included"),
            F.coalesce(F.col("usage_events"), F.lit(0)).cast("long").alias("usage_events"),
            "last_usage_time",
            F.coalesce(F.col("is_current_cycle"), F.lit(False)).alias("is_current_cycle"),
        )
    )
