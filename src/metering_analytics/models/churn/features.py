"""Churn features per subscription and as-of date, from usage only.

An as-of date t is a midnight (UTC); every feature looks only at complete days before t, so a row
never sees what happened on or after its as-of date. The subscriptions of a row are those active at
t (started before t, not deleted by t).

Windows (days before t): `7d` = [t-7, t), `28d` = [t-28, t), `prev_28d` = [t-56, t-28).
Rates are events per day over the days the subscription existed in the window, so a customer who
started 40 days ago is compared over its 12 days in the earlier window, not over 28.

Usage is counted in usage *events* (messages), which add up across meters whatever their units; the
included-quantity feature uses quantities, meter by meter.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
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
from metering_analytics.billing.overage import meters

# Average days per month, to turn a cycle's included quantity into an allowance per 28 days.
DAYS_PER_MONTH = 365.2425 / 12
# A trend needs at least this many days of history in the earlier window to be meaningful.
MIN_BASE_DAYS = 7
# Use of an allowance is capped here: one huge overage must not hide the other meters.
MAX_INCLUDED_USE = 2.0

AS_OF_GRID_SCHEMA = StructType([StructField("as_of_date", DateType(), False)])

CHURN_FEATURES_SCHEMA = StructType(
    [
        StructField("subscription_key", StringType(), False),
        StructField("resource_id", StringType(), True),
        StructField("resource_uri", StringType(), True),
        StructField("plan_id", StringType(), False),
        StructField("renewal_interval", StringType(), False),
        StructField("as_of_date", DateType(), False),
        StructField("tenure_days", IntegerType(), False),
        StructField("days_to_renewal", IntegerType(), False),
        StructField("events_7d", LongType(), False),
        StructField("events_28d", LongType(), False),
        StructField("events_prev_28d", LongType(), False),
        StructField("usage_trend_7d", DoubleType(), True),  # rate of 7d / rate of prev_28d - 1
        StructField("usage_trend_28d", DoubleType(), True),  # rate of 28d / rate of prev_28d - 1
        StructField("days_without_usage", IntegerType(), False),
        StructField("active_day_share_28d", DoubleType(), True),
        StructField("included_use_28d", DoubleType(), True),
        StructField("meters_used_28d", IntegerType(), False),
        StructField("meters_used_prev_28d", IntegerType(), False),
        StructField("rejected_submissions_28d", LongType(), False),
        StructField("deleted_at", TimestampType(), True),  # for the labels only, never a feature
    ]
)


def as_of_dates(first_usage_day: date | None, clock: datetime, grid_days: int, min_history_days: int) -> list[date]:
    """As-of dates every `grid_days`, ending on the clock's day, from `min_history_days` after the first usage.

    The grid is anchored on the clock's day, so the last as-of date is "today" (the current scores)
    and the same data always gives the same grid.
    """
    if first_usage_day is None:
        return []
    last = clock.date()
    first = first_usage_day + timedelta(days=min_history_days)
    dates = []
    t = last
    while t >= first:
        dates.append(t)
        t -= timedelta(days=grid_days)
    return sorted(dates)


def grid_frame(spark: SparkSession, dates: list[date]) -> DataFrame:
    return spark.createDataFrame([(d,) for d in dates], AS_OF_GRID_SCHEMA)


def daily_meter_usage(consumption_daily: DataFrame) -> DataFrame:
    """(subscription_key, meter_name, day, events, quantity) from gold.cs_consumption_daily."""
    return consumption_daily.groupBy("subscription_key", "meter_name", "day").agg(
        F.sum("events").alias("events"), F.sum("quantity").alias("quantity"))


def _days_before(t: Column, n: int) -> Column:
    return F.date_sub(t, n)


def _rate(events: Column, days: Column) -> Column:
    return F.when(days >= MIN_BASE_DAYS, events / days)


def _trend(recent_rate: Column, base_rate: Column) -> Column:
    return F.when(base_rate > 0, F.round(recent_rate / base_rate - 1, 6))


def churn_features(subscriptions: DataFrame, plan_dimensions: DataFrame, consumption_daily: DataFrame,
                   reconciliation: DataFrame, dates: list[date]) -> DataFrame:
    """CHURN_FEATURES_SCHEMA rows: one per subscription active at each of the as-of `dates`."""
    grid = grid_frame(subscriptions.sparkSession, dates)
    t = F.col("as_of_date")
    t_ts = t.cast("timestamp")
    start_day = F.to_date("subscription_start")
    rows = (
        subscriptions.crossJoin(F.broadcast(grid))
        .where((start_day < t) & (F.col("deleted_at").isNull() | (F.col("deleted_at") > t_ts)))
        .select(
            "subscription_key", "resource_id", "resource_uri", "plan_id", "renewal_interval", "renewal_months",
            "subscription_start", "deleted_at", "as_of_date",
            F.datediff(t, start_day).alias("tenure_days"),
            F.datediff(
                F.to_date(cycles.cycle_end("subscription_start", "renewal_months",
                                           cycles.cycle_index("subscription_start", "renewal_months", t_ts))),
                t,
            ).alias("days_to_renewal"),
        )
    )
    daily = daily_meter_usage(consumption_daily)
    keys = rows.select("subscription_key", "as_of_date", "renewal_months")
    # Each day's usage goes to the (few) as-of dates whose 56-day window holds it: an equi-join on
    # (subscription, as-of date) instead of comparing every day with every date.
    grid_dates = F.array(*[F.lit(d) for d in dates]) if dates else F.array().cast("array<date>")
    day = F.col("day")
    windows_holding_day = F.filter(grid_dates, lambda d: (d > day) & (d <= F.date_add(day, 56)))
    windowed = (
        daily.withColumn("as_of_date", F.explode(windows_holding_day))
        .join(keys, ["subscription_key", "as_of_date"])
        .withColumn("in_7d", F.col("day") >= _days_before(t, 7))
        .withColumn("in_28d", F.col("day") >= _days_before(t, 28))
    )
    totals = windowed.groupBy("subscription_key", "as_of_date").agg(
        F.sum(F.when(F.col("in_7d"), F.col("events")).otherwise(0)).alias("events_7d"),
        F.sum(F.when(F.col("in_28d"), F.col("events")).otherwise(0)).alias("events_28d"),
        F.sum(F.when(~F.col("in_28d"), F.col("events")).otherwise(0)).alias("events_prev_28d"),
        F.countDistinct(F.when(F.col("in_28d"), F.col("day"))).alias("active_days_28d"),
        F.countDistinct(F.when(F.col("in_28d"), F.col("meter_name"))).alias("meters_used_28d"),
        F.countDistinct(F.when(~F.col("in_28d"), F.col("meter_name"))).alias("meters_used_prev_28d"),
    )
    included = _included_use(windowed, plan_dimensions)
    last_usage = _days_without_usage(rows.select("subscription_key", "as_of_date"), daily)
    rejected = _rejected_submissions(rows.select("subscription_key", "as_of_date"), reconciliation)

    tenure = F.col("tenure_days")
    days_7, days_28 = F.least(tenure, F.lit(7)), F.least(tenure, F.lit(28))
    days_prev = F.greatest(F.least(tenure - 28, F.lit(28)), F.lit(0))
    zero = F.lit(0).cast("long")
    base_rate = _rate(F.coalesce("events_prev_28d", zero), days_prev)
    return (
        rows.join(totals, ["subscription_key", "as_of_date"], "left")
        .join(included, ["subscription_key", "as_of_date"], "left")
        .join(last_usage, ["subscription_key", "as_of_date"], "left")
        .join(rejected, ["subscription_key", "as_of_date"], "left")
        .select(
            "subscription_key", "resource_id", "resource_uri", "plan_id", "renewal_interval", "as_of_date",
            tenure.cast("int").alias("tenure_days"),
            F.col("days_to_renewal").cast("int").alias("days_to_renewal"),
            F.coalesce("events_7d", zero).cast("long").alias("events_7d"),
            F.coalesce("events_28d", zero).cast("long").alias("events_28d"),
            F.coalesce("events_prev_28d", zero).cast("long").alias("events_prev_28d"),
            _trend(F.coalesce("events_7d", zero) / days_7, base_rate).alias("usage_trend_7d"),
            _trend(F.coalesce("events_28d", zero) / days_28, base_rate).alias("usage_trend_28d"),
            # Never used: the whole tenure is without usage.
            F.coalesce("days_without_usage", tenure).cast("int").alias("days_without_usage"),
            F.round(F.coalesce("active_days_28d", zero) / days_28, 6).alias("active_day_share_28d"),
            "included_use_28d",
            F.coalesce("meters_used_28d", zero).cast("int").alias("meters_used_28d"),
            F.coalesce("meters_used_prev_28d", zero).cast("int").alias("meters_used_prev_28d"),
            F.coalesce("rejected_submissions_28d", zero).cast("long").alias("rejected_submissions_28d"),
            "deleted_at",
        )
    )


def _included_use(windowed: DataFrame, plan_dimensions: DataFrame) -> DataFrame:
    """Mean share of the 28-day allowance used, over the meters with a finite allowance used in 56 days.

    A meter the customer never uses is left out: not using a feature is not a warning sign, dropping
    it is (that is `meters_used_*`).
    """
    allowances = meters(plan_dimensions).where(
        ~F.col("included_infinite") & (F.col("included_quantity") > 0)
    ).select("subscription_key", "meter_name", F.col("included_quantity").cast("double").alias("included"))
    per_meter = (
        windowed.groupBy("subscription_key", "as_of_date", "meter_name", "renewal_months")
        .agg(F.sum(F.when(F.col("in_28d"), F.col("quantity")).otherwise(0.0)).alias("quantity_28d"))
        .join(F.broadcast(allowances), ["subscription_key", "meter_name"])
    )
    allowance_28d = F.col("included") * 28 / (F.col("renewal_months") * DAYS_PER_MONTH)
    use = F.least(F.col("quantity_28d") / allowance_28d, F.lit(MAX_INCLUDED_USE))
    return per_meter.groupBy("subscription_key", "as_of_date").agg(F.round(F.avg(use), 6).alias("included_use_28d"))


def _days_without_usage(keys: DataFrame, daily: DataFrame) -> DataFrame:
    """Complete days between the last day with usage before t and t (0: used the day before)."""
    usage_days = daily.groupBy("subscription_key").agg(F.array_distinct(F.collect_list("day")).alias("days"))
    t = F.col("as_of_date")
    last = F.array_max(F.filter("days", lambda d: d < t))
    return keys.join(usage_days, "subscription_key").select(
        "subscription_key", "as_of_date", (F.datediff(t, last) - 1).alias("days_without_usage"))


def _rejected_submissions(keys: DataFrame, reconciliation: DataFrame) -> DataFrame:
    """Marketplace submissions rejected (gold.billing_reconciliation status `rejected`) in the 28 days before t."""
    rejected = reconciliation.where(
        (F.col("status") == "rejected") & F.col("subscription_key").isNotNull() & F.col("submitted_at").isNotNull()
    ).select("subscription_key", F.to_date("submitted_at").alias("day"))
    t = F.col("as_of_date")
    return (
        keys.join(rejected, "subscription_key")
        .where((F.col("day") >= F.date_sub(t, 28)) & (F.col("day") < t))
        .groupBy("subscription_key", "as_of_date").agg(F.count(F.lit(1)).alias("rejected_submissions_28d"))
    )
