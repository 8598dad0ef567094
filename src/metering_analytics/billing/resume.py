"""Continuing a billing cycle's running totals from where the last run left them.

An hour of usage appended to a cycle changes the running totals of that hour's events and later ones
only. Recomputing the cycle from its first event, as a full rebuild does, would make an hourly run of a
year-long (annual) cycle cost as much as the whole history. So the billing stage keeps every
(subscription, meter, cycle)'s exact usage in `gold.incremental_cycle_usage` and, for a cycle that only
gained rows, numbers the events from the earliest changed hour H on, starting at

    usage before H  =  kept total  +  signed sum of the changed rows  -  current usage at or after H

(everything before H is unchanged, so the kept total minus what used to lie at or after H is what lies
before it; what used to lie there is what lies there now minus what the changes added). The arithmetic
is on exact decimals, so each event from H on gets the same usage_before / usage_after as a full
rebuild gives it, and so do the hourly Marketplace quantities from H on (cycles begin at midnight, so
no hour straddles two cycles).

A cycle that lost a row (a delete, or the pre-image of an update) is recomputed from its start instead:
its latest usage time may then lie before H, and nothing kept says where.
"""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, LongType, StringType, StructField, StructType, TimestampType

from metering_analytics.billing import cycles
from metering_analytics.billing.overage import USAGE_BASE
from metering_analytics.billing.quantities import QUANTITY, exact
from metering_analytics.incremental.changes import SIGN

CYCLE_USAGE = "incremental_cycle_usage"
CYCLE_USAGE_SCHEMA = StructType(
    [
        StructField("subscription_key", StringType(), False),
        StructField("meter_name", StringType(), False),
        StructField("cycle_index", IntegerType(), False),
        StructField("total_usage", QUANTITY, False),
        StructField("usage_events", LongType(), False),
        StructField("last_usage_time", TimestampType(), True),
    ]
)

_CYCLE = ["subscription_key", "cycle_index"]
_METER_CYCLE = ["subscription_key", "meter_name", "cycle_index"]


def changed_cycle_usage(changed_usage: DataFrame, subscriptions: DataFrame) -> DataFrame:
    """Per (subscription, meter, cycle) of the changed usage rows (with SIGN, +1 entered, -1 left): the
    signed exact quantity and count, whether a row left, the earliest changed hour and the latest
    enqueued time of a row that entered."""
    subs = F.broadcast(subscriptions.select("subscription_key", "subscription_start", "renewal_months"))
    quantity = exact(F.col("quantity"))
    entered = F.col(SIGN) > 0
    return (
        changed_usage.join(subs, "subscription_key")
        .withColumn("cycle_index", cycles.cycle_index("subscription_start", "renewal_months", "enqueued_time"))
        .groupBy(*_METER_CYCLE)
        .agg(
            exact(F.sum(F.when(entered, quantity).otherwise(-quantity))).alias("changed_usage"),
            F.sum(F.col(SIGN)).cast("long").alias("changed_events"),
            F.max((~entered).cast("int")).alias("any_left"),
            F.min(F.date_trunc("hour", "enqueued_time")).alias("first_hour"),
            F.max(F.when(entered, F.col("enqueued_time"))).alias("last_entered_time"),
        )
    )


def changed_cycles(changed: DataFrame, subscriptions: DataFrame, dirty_keys: DataFrame) -> DataFrame:
    """Per changed cycle of a subscription not in `dirty_keys` (those are numbered whole): its bounds
    (cycle_start, cycle_end), the earliest changed hour and whether it only gained rows (resumed)."""
    subs = F.broadcast(subscriptions.select("subscription_key", "subscription_start", "renewal_months"))
    return (
        changed.join(dirty_keys, "subscription_key", "left_anti")
        .groupBy(*_CYCLE).agg(F.max("any_left").alias("any_left"), F.min("first_hour").alias("first_hour"))
        .join(subs, "subscription_key")
        .select(
            *_CYCLE,
            cycles.cycle_start("subscription_start", "renewal_months", "cycle_index").alias("cycle_start"),
            cycles.cycle_end("subscription_start", "renewal_months", "cycle_index").alias("cycle_end"),
            "first_hour",
            (F.col("any_left") == 0).alias("resumed"),
        )
    )


def cycle_ranges(changed_cycles_: DataFrame) -> DataFrame:
    """The whole cycles of `changed_cycles` as scope ranges (scope_key, scope_start, scope_end)."""
    return changed_cycles_.select(F.col("subscription_key").alias("scope_key"), F.col("cycle_start").alias("scope_start"),
                                  F.col("cycle_end").alias("scope_end"))


def usage_ranges(changed_cycles_: DataFrame) -> DataFrame:
    """The usage to number again, as scope ranges: from the earliest changed hour to the cycle's end for
    a resumed cycle, the whole cycle for one that lost a row."""
    return changed_cycles_.select(
        F.col("subscription_key").alias("scope_key"),
        F.when(F.col("resumed"), F.col("first_hour")).otherwise(F.col("cycle_start")).alias("scope_start"),
        F.col("cycle_end").alias("scope_end"),
    )


def usage_bases(event_cycles: DataFrame, resumed: DataFrame, kept: DataFrame, changed: DataFrame) -> DataFrame:
    """USAGE_BASE per (subscription, meter, cycle) of the `resumed` cycles, from the events numbered
    again (`overage.usage_cycles` of the ranges), the kept cycle usage (before this run) and the changes."""
    after_resume = (
        event_cycles.join(resumed, _CYCLE, "left_semi")
        .groupBy(*_METER_CYCLE).agg(exact(F.sum("quantity")).alias("after_resume"))
    )
    zero = exact(F.lit(0))
    return (
        after_resume.join(kept.select(*_METER_CYCLE, "total_usage"), _METER_CYCLE, "left")
        .join(changed.select(*_METER_CYCLE, "changed_usage"), _METER_CYCLE, "left")
        .select(*_METER_CYCLE, exact(
            F.coalesce("total_usage", zero) + F.coalesce("changed_usage", zero) - F.col("after_resume")
        ).alias(USAGE_BASE))
    )


def with_usage_bases(event_cycles: DataFrame, bases: DataFrame) -> DataFrame:
    """`event_cycles` with USAGE_BASE (0 for cycles numbered from their start)."""
    return (
        event_cycles.join(F.broadcast(bases), _METER_CYCLE, "left")
        .withColumn(USAGE_BASE, exact(F.coalesce(USAGE_BASE, exact(F.lit(0)))))
    )


def continued_cycle_usage(kept: DataFrame, changed: DataFrame, resumed: DataFrame) -> DataFrame:
    """CYCLE_USAGE_SCHEMA rows of the resumed cycles: the kept rows plus the changes (every meter of
    those cycles, changed or not). Only rows entered these cycles, so the latest usage time is the later
    of the kept one and the latest that entered."""
    zero = exact(F.lit(0))
    return (
        kept.join(resumed, _CYCLE, "left_semi")
        .join(changed.join(resumed, _CYCLE, "left_semi"), _METER_CYCLE, "full")
        .select(
            *_METER_CYCLE,
            exact(F.coalesce("total_usage", zero) + F.coalesce("changed_usage", zero)).alias("total_usage"),
            (F.coalesce("usage_events", F.lit(0)) + F.coalesce("changed_events", F.lit(0))).cast("long")
            .alias("usage_events"),
            F.greatest("last_usage_time", "last_entered_time").alias("last_usage_time"),
        )
    )
