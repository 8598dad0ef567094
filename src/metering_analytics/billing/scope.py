"""What an incremental billing run recomputes besides the usage it numbers again (see billing.resume and
docs/incremental.md).

A *scope* is a set of ranges (scope_key = subscription_key, scope_start, scope_end), half-open, null
bounds unbounded: whole billing cycles for gold.included_balance (changed cycles, cycles whose
"current" mark the clock moves), whole subscriptions for new and newly deleted ones, and the days of
gold.revenue_daily. Everything of a subscription outside its ranges is unchanged by construction.
"""
from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from metering_analytics.billing import cycles

SCOPE_COLUMNS = ["scope_key", "scope_start", "scope_end"]


def _cycle_range(subscriptions: DataFrame, k) -> list:
    return [
        F.col("subscription_key").alias("scope_key"),
        cycles.cycle_start("subscription_start", "renewal_months", k).alias("scope_start"),
        cycles.cycle_end("subscription_start", "renewal_months", k).alias("scope_end"),
    ]


def _active(at) -> F.Column:
    return (F.col("subscription_start") <= at) & (F.col("deleted_at").isNull() | (F.col("deleted_at") > at))


def clock_cycles(subscriptions: DataFrame, before: datetime, after: datetime) -> DataFrame:
    """The cycles whose "current" mark the move of the report clock changes: for every subscription
    whose cycle at the clock, or whose being active, differs between the two clocks, both cycles."""
    then, now = cycles.timestamp_literal(before), cycles.timestamp_literal(after)
    k_then = cycles.cycle_index("subscription_start", "renewal_months", then)
    k_now = cycles.cycle_index("subscription_start", "renewal_months", now)
    moved = subscriptions.where((k_then != k_now) | (_active(then) != _active(now)))
    return moved.select(*_cycle_range(moved, k_then)).unionByName(moved.select(*_cycle_range(moved, k_now)))


def whole_subscriptions(keys: DataFrame) -> DataFrame:
    return keys.select(F.col("subscription_key").alias("scope_key"), F.lit(None).cast("timestamp").alias("scope_start"),
                       F.lit(None).cast("timestamp").alias("scope_end"))


def revenue_days(changed_hours: DataFrame, dirty_subscriptions: DataFrame, before: datetime,
                 after: datetime) -> DataFrame:
    """Days (column `value`) of gold.revenue_daily that can change: the days of changed reconciliation
    rows, the days between the two clocks, and every day up to the clock of a new or newly deleted
    subscription (its recurring fee)."""
    lo, hi = min(before, after), max(before, after)
    clock_days = changed_hours.sparkSession.range(1).select(
        F.explode(F.sequence(F.to_date(cycles.timestamp_literal(lo)), F.to_date(cycles.timestamp_literal(hi))))
        .alias("value"))
    sub_days = dirty_subscriptions.where(F.col("subscription_start") <= cycles.timestamp_literal(hi)).select(
        F.explode(F.sequence(F.to_date("subscription_start"), F.to_date(cycles.timestamp_literal(hi)))).alias("value"))
    return (
        changed_hours.select(F.to_date("value").alias("value"))
        .unionByName(clock_days).unionByName(sub_days).distinct()
    )
