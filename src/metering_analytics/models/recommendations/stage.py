"""The recommendations stage: gold.plan_recommendations, rebuilt in full after the billing and gold stages.

One row per active subscription and plan of the price catalog: what the usage of the subscription's
last complete billing cycles would have cost under that plan (costing.py: billing's cycles, bands and
prices), whether the plan could bill that usage at all, and the saving against the current plan. The
cheapest valid alternative carries a suggestion for the account executive when it saves at least
`min_saving`; nothing that costs the customer more is ever suggested.

* `upgrade`: the cheaper plan has a higher recurring fee: the customer pays for overage that a larger
  allowance would absorb (its `persistent_overage_dimensions` are in overage in every evaluated cycle).
* `downgrade`: a lower recurring fee covers the usage for less.

The catalog has no add-on products (only plans), so an "add-on" suggestion is an upgrade to the plan
whose allowance covers the dimension in persistent overage; changing the renewal interval is not
suggested (cycles of different lengths are not comparable usage).
"""
from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DoubleType,
    IntegerType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from metering_analytics.billing.balances import INCLUDED_BALANCE_SCHEMA
from metering_analytics.billing.cycles import timestamp_literal
from metering_analytics.billing.prices import MONEY, PriceCatalog, recurring_fee_frame, unit_price_frame
from metering_analytics.billing.stage import require_utc_session, utc_naive
from metering_analytics.io.lakehouse import Lakehouse, with_columns_of
from metering_analytics.models.recommendations.costing import (
    active_subscriptions,
    candidate_bands,
    cycle_meter_usage,
    evaluated_cycles,
    latest_plan_definitions,
    plan_costs,
)
from metering_analytics.models.recommendations.settings import RecommendationSettings
from metering_analytics.schemas import BRONZE_EVENTS_SCHEMA, SILVER_PLAN_DIMENSIONS_SCHEMA, SILVER_SUBSCRIPTIONS_SCHEMA

PLAN_RECOMMENDATIONS = "plan_recommendations"
PLAN_RECOMMENDATIONS_SCHEMA = StructType(
    [
        StructField("subscription_key", StringType(), False),
        StructField("resource_id", StringType(), True),
        StructField("resource_uri", StringType(), True),
        StructField("plan_id", StringType(), False),  # the current plan
        StructField("renewal_interval", StringType(), False),
        StructField("candidate_plan_id", StringType(), False),
        StructField("is_current_plan", BooleanType(), False),
        StructField("cycles_evaluated", IntegerType(), False),
        StructField("first_cycle_start", TimestampType(), True),
        StructField("last_cycle_end", TimestampType(), True),
        StructField("is_valid", BooleanType(), False),
        StructField("invalid_reason", StringType(), True),
        StructField("currency", StringType(), False),
        StructField("recurring_cost", MONEY, True),
        StructField("overage_cost", MONEY, True),
        StructField("total_cost", MONEY, True),
        StructField("current_total_cost", MONEY, True),
        StructField("saving", MONEY, True),
        StructField("saving_percent", DoubleType(), True),
        StructField("is_cheapest_alternative", BooleanType(), False),
        StructField("persistent_overage_dimensions", ArrayType(StringType()), False),
        StructField("recommendation", StringType(), True),  # upgrade | downgrade | null
        StructField("suggestion", StringType(), True),
        StructField("as_of", TimestampType(), False),
    ]
)
_NO_DATA_CLOCK = datetime(1970, 1, 1)


def plan_recommendations(subscriptions: DataFrame, plan_dimensions: DataFrame, included_balance: DataFrame,
                         prices: PriceCatalog, as_of: datetime, settings: RecommendationSettings) -> DataFrame:
    """PLAN_RECOMMENDATIONS_SCHEMA rows."""
    spark = subscriptions.sparkSession
    active = active_subscriptions(subscriptions, as_of)
    evaluated = evaluated_cycles(active, as_of, settings.cycles)
    catalog_plans = spark.createDataFrame([(p,) for p in sorted(prices.plans)], "candidate_plan_id string")
    bands = candidate_bands(active, plan_dimensions, latest_plan_definitions(subscriptions, plan_dimensions),
                            catalog_plans)
    usage = cycle_meter_usage(included_balance, evaluated)
    costs = plan_costs(active, evaluated, usage, bands, catalog_plans, unit_price_frame(spark, prices),
                       recurring_fee_frame(spark, prices))

    subs = active.select("subscription_key", "resource_id", "resource_uri", "plan_id", "renewal_interval")
    current = costs.join(subs, "subscription_key").where(F.col("candidate_plan_id") == F.col("plan_id")).select(
        "subscription_key", F.col("total_cost").alias("current_total_cost"),
        F.col("overage_dimensions").alias("persistent_overage_dimensions"),
        F.col("candidate_recurring_fee").alias("current_recurring_fee"))
    rows = (
        costs.join(subs, "subscription_key").join(current, "subscription_key", "left")
        .withColumn("is_current_plan", F.col("candidate_plan_id") == F.col("plan_id"))
        .withColumn("saving", (F.col("current_total_cost") - F.col("total_cost")).cast(MONEY))
    )
    alternative = F.col("is_valid") & ~F.col("is_current_plan") & F.col("saving").isNotNull()
    cheapest_first = Window.partitionBy("subscription_key").orderBy(
        F.when(alternative, 0).otherwise(1), F.col("total_cost").asc_nulls_last(), "candidate_plan_id")
    rows = rows.withColumn("is_cheapest_alternative", alternative & (F.row_number().over(cheapest_first) == 1))
    shown = F.col("is_cheapest_alternative") & (F.col("saving") >= F.lit(settings.min_saving).cast(MONEY))
    kind = F.when(F.col("candidate_recurring_fee") > F.col("current_recurring_fee"), F.lit("upgrade")) \
        .otherwise(F.lit("downgrade"))
    overage_note = F.when(
        F.size("persistent_overage_dimensions") > 0,
        F.format_string("; %s in overage in every one of those cycles",
                        F.array_join("persistent_overage_dimensions", ", ")),
    ).otherwise(F.lit(""))
    suggestion = F.format_string(
        "%s to %s: the last %d billing cycles would have cost %s %s instead of %s %s, saving %s %s%s",
        F.when(kind == "upgrade", F.lit("Upgrade")).otherwise(F.lit("Move")), F.col("candidate_plan_id"),
        F.col("cycles_evaluated"), F.lit(prices.currency), F.format_number("total_cost", 2), F.lit(prices.currency),
        F.format_number("current_total_cost", 2), F.lit(prices.currency), F.format_number("saving", 2),
        overage_note,
    )
    return rows.select(
        "subscription_key", "resource_id", "resource_uri", "plan_id", "renewal_interval", "candidate_plan_id",
        "is_current_plan", "cycles_evaluated", "first_cycle_start", "last_cycle_end", "is_valid", "invalid_reason",
        F.lit(prices.currency).alias("currency"), "recurring_cost", "overage_cost", "total_cost",
        "current_total_cost", "saving",
        F.when(F.col("current_total_cost") > 0,
               F.round(F.col("saving") / F.col("current_total_cost") * 100, 2).cast("double")).alias("saving_percent"),
        "is_cheapest_alternative", "persistent_overage_dimensions",
        F.when(shown, kind).alias("recommendation"), F.when(shown, suggestion).alias("suggestion"),
        timestamp_literal(as_of).alias("as_of"),
    )


def run_recommendations(spark: SparkSession, lakehouse: Lakehouse, prices: PriceCatalog, as_of: datetime | None,
                        settings: RecommendationSettings | None = None) -> dict:
    """Rebuild gold.plan_recommendations; returns a JSON-able summary.

    `as_of` is the data clock (naive means UTC), as passed to run_gold; None takes the latest enqueued
    time of bronze.events. `settings` default to RecommendationSettings() (3 cycles, saving >= 1.00).
    """
    require_utc_session(spark)
    settings = settings or RecommendationSettings()
    if as_of is None:
        bronze = lakehouse.read_or_empty(spark, "bronze", "events", BRONZE_EVENTS_SCHEMA)
        as_of = bronze.agg(F.max("enqueued_time")).first()[0] or _NO_DATA_CLOCK
    clock = utc_naive(as_of)
    subscriptions = lakehouse.read_or_empty(spark, "silver", "subscriptions", SILVER_SUBSCRIPTIONS_SCHEMA)
    plan_dimensions = lakehouse.read_or_empty(spark, "silver", "plan_dimensions", SILVER_PLAN_DIMENSIONS_SCHEMA)
    included_balance = lakehouse.read_or_empty(spark, "gold", "included_balance", INCLUDED_BALANCE_SCHEMA)
    table = plan_recommendations(subscriptions, plan_dimensions, included_balance, prices, clock, settings)
    lakehouse.overwrite(with_columns_of(table, PLAN_RECOMMENDATIONS_SCHEMA), "gold", PLAN_RECOMMENDATIONS)
    written = lakehouse.read(spark, "gold", PLAN_RECOMMENDATIONS)
    summary = written.agg(
        F.count(F.lit(1)).alias("rows"),
        F.countDistinct("subscription_key").alias("subscriptions"),
        F.count("recommendation").alias("suggestions"),
        F.sum(F.when(F.col("recommendation").isNotNull(), F.col("saving"))).alias("total_saving"),
    ).first()
    return {
        f"gold.{PLAN_RECOMMENDATIONS}": summary["rows"],
        "subscriptions": summary["subscriptions"],
        "suggestions": summary["suggestions"],
        "suggested_saving": str(summary["total_saving"] or 0),
        "currency": prices.currency,
    }
