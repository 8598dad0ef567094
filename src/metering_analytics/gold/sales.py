"""Sales: revenue and usage by product, top customers, the weekly usage heatmap, trends and plan fit.

A product is a plan and a Marketplace dimension. Usage is reported by the application per meter
name; a simple meter has one dimension, a waterfall meter's dimension is only decided when its usage
passes a tier, so usage tables carry plan, meter_name and dimension (null for waterfall usage).
"""
from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame, Window
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
from metering_analytics.billing.prices import MONEY
from metering_analytics.billing.quantities import exact, reported
from metering_analytics.gold.periods import growth_percent, instant, month_of, week_of

_REVENUE_COLUMNS = ["recurring_revenue", "overage_quantity", "overage_revenue", "gross_revenue", "store_fee",
                    "net_revenue"]


def _revenue_schema(period: str) -> StructType:
    return StructType(
        [
            StructField(period, DateType(), False),
            StructField("plan_id", StringType(), False),
            StructField("dimension", StringType(), False),  # '(recurring)' for recurring fees
            StructField("currency", StringType(), False),
            StructField("recurring_revenue", MONEY, False),
            StructField("overage_quantity", DoubleType(), False),
            StructField("overage_revenue", MONEY, False),
            StructField("gross_revenue", MONEY, False),
            StructField("store_fee", MONEY, False),
            StructField("net_revenue", MONEY, False),
        ]
    )


REVENUE_BY_PRODUCT_DAILY_SCHEMA = _revenue_schema("day")
REVENUE_BY_PRODUCT_MONTHLY_SCHEMA = _revenue_schema("month")


def _usage_schema(period: str, period_type) -> StructType:
    return StructType(
        [
            StructField(period, period_type, False),
            StructField("plan_id", StringType(), False),
            StructField("meter_name", StringType(), True),
            StructField("dimension", StringType(), True),  # null: waterfall usage before a tier assigns one
            StructField("events", LongType(), False),
            StructField("quantity", DoubleType(), False),
            StructField("included_quantity_consumed", DoubleType(), False),
            StructField("overage_quantity", DoubleType(), False),
        ]
    )


USAGE_BY_PRODUCT_HOURLY_SCHEMA = _usage_schema("hour", TimestampType())
USAGE_BY_PRODUCT_DAILY_SCHEMA = _usage_schema("day", DateType())
_USAGE_KEY = ["plan_id", "meter_name", "dimension"]
_USAGE_AMOUNTS = ["quantity", "included_quantity_consumed", "overage_quantity"]

TOP_CUSTOMERS_SCHEMA = StructType(
    [
        StructField("month", DateType(), False),
        StructField("ranking", StringType(), False),  # revenue | usage
        StructField("meter_name", StringType(), True),  # usage rankings are per meter name; null for revenue
        StructField("rank", IntegerType(), False),
        StructField("subscription_key", StringType(), False),
        StructField("plan_id", StringType(), False),
        StructField("value", DoubleType(), False),
    ]
)

HEATMAP_SCHEMA = StructType(
    [
        StructField("plan_id", StringType(), False),
        StructField("meter_name", StringType(), False),
        StructField("dimension", StringType(), True),
        StructField("day_of_week", IntegerType(), False),  # 1 = Monday ... 7 = Sunday
        StructField("hour_of_day", IntegerType(), False),
        StructField("events", LongType(), False),
        StructField("quantity", DoubleType(), False),
        StructField("timezone", StringType(), False),
        StructField("window_start", TimestampType(), True),  # null: all history
        StructField("window_end", TimestampType(), False),
    ]
)

TRENDS_SCHEMA = StructType(
    [
        StructField("period_type", StringType(), False),  # week | month
        StructField("period_start", DateType(), False),
        StructField("metric", StringType(), False),  # usage_quantity | gross_revenue
        StructField("plan_id", StringType(), False),
        StructField("meter_name", StringType(), True),  # usage only
        StructField("dimension", StringType(), True),
        StructField("value", DoubleType(), False),
        StructField("previous_value", DoubleType(), False),
        StructField("change", DoubleType(), False),
        StructField("growth_percent", DoubleType(), True),  # null when the previous period is 0
    ]
)

PLAN_FIT_SCHEMA = StructType(
    [
        StructField("plan_id", StringType(), False),
        StructField("renewal_interval", StringType(), False),
        StructField("meter_name", StringType(), False),
        StructField("dimension", StringType(), True),  # null for a waterfall meter (its free band)
        StructField("cycle_month", DateType(), False),  # month in which the cycles started
        StructField("completed_cycles", LongType(), False),
        StructField("cycles_under_25pct", LongType(), False),
        StructField("cycles_25_to_100pct", LongType(), False),
        StructField("cycles_over_100pct", LongType(), False),
        StructField("share_under_25pct", DoubleType(), False),
        StructField("share_25_to_100pct", DoubleType(), False),
        StructField("share_over_100pct", DoubleType(), False),
    ]
)


# -- revenue ------------------------------------------------------------------------------------------
def revenue_by_product_daily(revenue_daily: DataFrame) -> DataFrame:
    """REVENUE_BY_PRODUCT_DAILY_SCHEMA rows: gold.revenue_daily's sales columns."""
    return revenue_daily.select("day", "plan_id", "dimension", "currency", *_REVENUE_COLUMNS)


def revenue_by_product_monthly(revenue_daily: DataFrame) -> DataFrame:
    """REVENUE_BY_PRODUCT_MONTHLY_SCHEMA rows: gold.revenue_daily summed per calendar month."""
    sums = [F.sum(c).cast(MONEY if c != "overage_quantity" else DoubleType()).alias(c) for c in _REVENUE_COLUMNS]
    return (
        revenue_daily.withColumn("overage_quantity", exact(F.col("overage_quantity")))
        .groupBy(month_of(F.col("day")).alias("month"), "plan_id", "dimension", "currency")
        .agg(*sums)
    )


# -- usage --------------------------------------------------------------------------------------------
def meter_dimensions(plan_dimensions: DataFrame) -> DataFrame:
    """(subscription_key, dimension) -> the meter that bills to it, and that meter's type.

    A dimension billed by two meters of one subscription's plan is attributed to the meter first in
    name order: Marketplace sees one quantity per dimension and hour, so it cannot be split back.
    """
    simple = plan_dimensions.where(F.col("dimension_type") == "simple").select(
        "subscription_key", "dimension", "meter_name", "dimension_type")
    tiers = plan_dimensions.where(F.col("dimension_type") == "waterfall").select(
        "subscription_key", F.explode("tiers.dimension").alias("dimension"), "meter_name", "dimension_type")
    return (
        simple.unionByName(tiers)
        .groupBy("subscription_key", "dimension")
        .agg(F.min(F.struct("meter_name", "dimension_type")).alias("m"))
        .select("subscription_key", "dimension", "m.meter_name", "m.dimension_type")
    )


def usage_by_product_hourly(consumption_hourly: DataFrame, marketplace_usage: DataFrame,
                            plan_dimensions: DataFrame) -> DataFrame:
    """USAGE_BY_PRODUCT_HOURLY_SCHEMA rows.

    Every column adds up. A simple meter is one row (plan, meter, its dimension). A waterfall meter
    is a row with a null dimension holding its events, usage and included quantity consumed, plus a
    row per tier dimension holding only that tier's overage. included_quantity_consumed = usage -
    overage of the meter in the hour (gold.marketplace_usage is hourly by the usage's enqueued time).
    """
    overage = (
        marketplace_usage.select(F.col("effective_start_time").alias("hour"), "subscription_key", "plan_id",
                                 "dimension", exact(F.col("quantity")).alias("overage"))
        .join(meter_dimensions(plan_dimensions), ["subscription_key", "dimension"], "left")
    )
    meter_overage = overage.groupBy("hour", "subscription_key", "meter_name").agg(
        F.sum("overage").alias("meter_overage"))
    spent = exact(F.coalesce(F.col("meter_overage"), F.lit(0)))
    usage_rows = consumption_hourly.join(meter_overage, ["hour", "subscription_key", "meter_name"], "left").select(
        "hour", *_USAGE_KEY, "events",
        exact(F.col("quantity")).alias("quantity"),
        exact(exact(F.col("quantity")) - spent).alias("included_quantity_consumed"),
        F.when(F.col("dimension").isNotNull(), spent).otherwise(exact(F.lit(0))).alias("overage_quantity"),
    )
    zero = exact(F.lit(0))
    tier_rows = overage.where(~F.col("dimension_type").eqNullSafe("simple")).select(
        "hour", *_USAGE_KEY, F.lit(0).cast("long").alias("events"), zero.alias("quantity"),
        zero.alias("included_quantity_consumed"), F.col("overage").alias("overage_quantity"),
    )
    return _sum_usage(usage_rows.unionByName(tier_rows), F.col("hour").alias("hour"))


def usage_by_product_daily(usage_hourly: DataFrame) -> DataFrame:
    """USAGE_BY_PRODUCT_DAILY_SCHEMA rows: the hourly product table summed per UTC day."""
    return _sum_usage(usage_hourly, F.to_date("hour").alias("day"))


def _sum_usage(rows: DataFrame, period) -> DataFrame:
    return rows.groupBy(period, *_USAGE_KEY).agg(
        F.sum("events").cast("long").alias("events"),
        *[reported(F.sum(exact(F.col(c)))).alias(c) for c in _USAGE_AMOUNTS],
    )


# -- top customers ------------------------------------------------------------------------------------
def top_customers(subscription_mrr: DataFrame, consumption_daily: DataFrame, size: int) -> DataFrame:
    """TOP_CUSTOMERS_SCHEMA rows: per month the `size` largest subscriptions by revenue and by usage.

    revenue: the subscription's MRR in the month (mrr.subscription_mrr: recurring run-rate plus the
    month's billed overage revenue), for subscriptions active at the month's close.
    usage: the month's usage quantity of one meter name (units differ between meters, so each meter
    name is ranked on its own, across plans). Ties go to the smaller subscription key; zero values are
    not ranked.
    """
    revenue = subscription_mrr.where(F.col("active")).select(
        "month", F.lit("revenue").alias("ranking"), F.lit(None).cast("string").alias("meter_name"),
        "subscription_key", "plan_id", F.col("mrr").cast("double").alias("value"),
    )
    usage = (
        consumption_daily.groupBy(month_of(F.col("day")).alias("month"), "subscription_key", "plan_id", "meter_name")
        .agg(reported(F.sum(exact(F.col("quantity")))).alias("value"))
        .select("month", F.lit("usage").alias("ranking"), "meter_name", "subscription_key", "plan_id", "value")
    )
    order = Window.partitionBy("month", "ranking", "meter_name").orderBy(F.col("value").desc(), "subscription_key")
    return (
        revenue.unionByName(usage).where(F.col("value") > 0)
        .withColumn("rank", F.row_number().over(order))
        .where(F.col("rank") <= size)
        .select(*[f.name for f in TOP_CUSTOMERS_SCHEMA.fields])
    )


# -- heatmap ------------------------------------------------------------------------------------------
def usage_heatmap(usage_events: DataFrame, timezone: str, lookback_days: int, as_of: datetime) -> DataFrame:
    """HEATMAP_SCHEMA rows: usage by local day of week and hour of day, over the `lookback_days` days up
    to `as_of` (0: all history).

    Computed from the events themselves rather than hourly totals, so zones whose offset is not a
    whole hour (Asia/Kolkata, Asia/Kathmandu) are exact too.
    """
    now = instant(as_of)
    window_start = now - F.expr(f"INTERVAL {lookback_days} DAYS") if lookback_days else F.lit(None).cast("timestamp")
    events = usage_events.where(F.col("enqueued_time") <= now)
    if lookback_days:
        events = events.where(F.col("enqueued_time") > window_start)
    local = F.from_utc_timestamp("enqueued_time", timezone)
    return (
        events.groupBy("plan_id", "meter_name", "dimension",
                       (F.weekday(local) + 1).alias("day_of_week"), F.hour(local).alias("hour_of_day"))
        .agg(F.count(F.lit(1)).alias("events"), reported(F.sum(exact(F.col("quantity")))).alias("quantity"))
        .withColumn("timezone", F.lit(timezone))
        .withColumn("window_start", window_start)
        .withColumn("window_end", now)
    )


# -- trends -------------------------------------------------------------------------------------------
_TREND_KEY = ["metric", "plan_id", "meter_name", "dimension"]


def trends(consumption_daily: DataFrame, revenue_daily: DataFrame, as_of: datetime) -> DataFrame:
    """TRENDS_SCHEMA rows: usage quantity (per plan, meter, dimension) and gross revenue (per plan,
    dimension) in complete ISO weeks (Monday-Sunday) and complete calendar months, UTC, each against
    the period before it.

    A period is complete when it ended at or before `as_of`. Every period from a series' first one with
    data to the last complete one is listed, zeros included, so "previous" is always the adjacent period.
    """
    usage = consumption_daily.select(
        "day", F.lit("usage_quantity").alias("metric"), "plan_id", "meter_name", "dimension",
        exact(F.col("quantity")).alias("value"))
    revenue = revenue_daily.select(
        "day", F.lit("gross_revenue").alias("metric"), "plan_id", F.lit(None).cast("string").alias("meter_name"),
        "dimension", exact(F.col("gross_revenue")).alias("value"))
    values = usage.unionByName(revenue)
    now = instant(as_of)
    weekly = _period_series(values, "week", week_of(F.col("day")), F.date_sub(week_of(now), 7),
                            F.expr("INTERVAL 7 DAYS"))
    monthly = _period_series(values, "month", month_of(F.col("day")), F.add_months(month_of(now), -1),
                             F.expr("INTERVAL 1 MONTH"))
    return weekly.unionByName(monthly)


def _period_series(values: DataFrame, period_type: str, period_start, last_complete, step) -> DataFrame:
    per_period = (
        values.withColumn("period_start", period_start)
        .where(F.col("period_start") <= last_complete)
        .groupBy(*_TREND_KEY, "period_start").agg(F.sum("value").alias("value"))
    )
    # Zero rows for every period of each series; summing them in by group keeps null keys matching.
    dense = (
        per_period.groupBy(*_TREND_KEY).agg(F.min("period_start").alias("first"))
        .select(*_TREND_KEY, F.explode(F.sequence("first", last_complete, step)).alias("period_start"),
                exact(F.lit(0)).alias("value"))
        .unionByName(per_period)
        .groupBy(*_TREND_KEY, "period_start").agg(F.sum("value").cast("double").alias("value"))
    )
    order = Window.partitionBy(*_TREND_KEY).orderBy("period_start")
    previous = F.coalesce(F.lag("value").over(order), F.lit(0.0))
    return dense.select(
        F.lit(period_type).alias("period_type"), "period_start", *_TREND_KEY, F.round("value", 9).alias("value"),
        F.round(previous, 9).alias("previous_value"),
    ).select(
        "*", F.round(F.col("value") - F.col("previous_value"), 9).alias("change"),
        growth_percent(F.col("value"), F.col("previous_value")).alias("growth_percent"),
    )


# -- plan fit -----------------------------------------------------------------------------------------
def plan_fit(subscriptions: DataFrame, plan_dimensions: DataFrame, included_balance: DataFrame,
             as_of: datetime) -> DataFrame:
    """PLAN_FIT_SCHEMA rows: in completed cycles, how many subscriptions used under 25 %, 25-100 % and
    over 100 % of a meter's included quantity.

    A cycle is completed when it ended at or before `as_of` and the subscription was not deleted before
    its end. Cycles without usage count (at 0 %): they are generated from the subscriptions, since
    gold.included_balance lists only cycles with usage. Meters with an included quantity: simple meters
    with a finite, positive one, and waterfall meters with a positive free band (C_0); Infinite and
    zero allowances have no fit to measure.
    """
    now = instant(as_of)
    included = (
        F.when((F.col("dimension_type") == "simple") & ~F.col("included_infinite"), F.col("included_quantity"))
        .when(F.col("dimension_type") == "waterfall", F.col("tiers")[0]["threshold"])
    )
    meters = plan_dimensions.select("subscription_key", "meter_name", "dimension", included.alias("included")) \
        .where(F.col("included") > 0)
    ended = F.least(now, F.coalesce(F.col("deleted_at"), now))
    # Cycles 0 .. completed - 1 ended by `ended`.
    completed = cycles.cycle_index("subscription_start", "renewal_months", ended)
    subs = (
        subscriptions.withColumn("completed", completed).where(F.col("completed") >= 1)
        .select("subscription_key", "plan_id", "renewal_interval", "subscription_start", "renewal_months",
                F.explode(F.sequence(F.lit(0), F.col("completed") - 1)).alias("cycle_index"))
    )
    usage = included_balance.select("subscription_key", "meter_name", "cycle_index", "total_usage")
    ratio_usage = exact(F.coalesce(F.col("total_usage"), F.lit(0)))
    allowance = exact(F.col("included"))
    under = ratio_usage < allowance * F.lit(0.25)
    over = ratio_usage > allowance
    rows = (
        subs.join(meters, "subscription_key")
        .join(usage, ["subscription_key", "meter_name", "cycle_index"], "left")
        .withColumn("cycle_month", month_of(cycles.cycle_start("subscription_start", "renewal_months", "cycle_index")))
        .groupBy("plan_id", "renewal_interval", "meter_name", "dimension", "cycle_month")
        .agg(
            F.count(F.lit(1)).alias("completed_cycles"),
            F.count(F.when(under, 1)).alias("cycles_under_25pct"),
            F.count(F.when(~under & ~over, 1)).alias("cycles_25_to_100pct"),
            F.count(F.when(over, 1)).alias("cycles_over_100pct"),
        )
    )
    share = {c: F.round(F.col(f"cycles_{c}") / F.col("completed_cycles"), 4).alias(f"share_{c}")
             for c in ("under_25pct", "25_to_100pct", "over_100pct")}
    return rows.select("*", *share.values())
