"""silver.subscription_lifecycle -> silver.subscriptions and silver.plan_dimensions.

Derived from the whole lifecycle table each time it changes (it holds two rows per subscription at
most, plus rejects), so the outcome is the same whatever order the Capture files arrive in.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import MapType, StringType

from metering_analytics.io.lakehouse import with_columns_of
from metering_analytics.schemas import (
    BILLING_DIMENSION_SCHEMA,
    SILVER_PLAN_DIMENSIONS_SCHEMA,
    SILVER_SUBSCRIPTIONS_SCHEMA,
)
from metering_analytics.silver.positions import is_before
from metering_analytics.silver.values import (
    identity_matches,
    is_infinite,
    offer_type,
    parse_quantity,
    renewal_months,
)

def _matches_earlier(later: DataFrame, earlier: DataFrame, prefix: str) -> DataFrame:
    """Rows of `later` joined with every row of `earlier` that names the same subscription and came first."""
    e = earlier.select([F.col(c).alias(f"{prefix}{c}") for c in earlier.columns])
    condition = identity_matches(
        F.col("resource_id"), F.col("resource_uri"), F.col(f"{prefix}resource_id"), F.col(f"{prefix}resource_uri")
    ) & is_before(
        F.col(f"{prefix}enqueued_time"), F.col(f"{prefix}partition_id"), F.col(f"{prefix}sequence_number"),
        F.col("enqueued_time"), F.col("partition_id"), F.col("sequence_number"),
    )
    return later.join(F.broadcast(e), condition, "inner")


def tracked_purchases(lifecycle: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(first purchase of each subscription, later purchases naming an already tracked one)."""
    purchases = lifecycle.where(F.col("message_type") == "SubscriptionPurchased")
    key = ["partition_id", "sequence_number"]
    repeats = _matches_earlier(purchases, purchases, "first_").select(*key)
    duplicates = purchases.join(repeats, key, "left_semi")
    tracked = purchases.join(repeats, key, "left_anti")
    return tracked, duplicates


def derive_subscriptions(lifecycle: DataFrame) -> tuple[DataFrame, DataFrame, DataFrame]:
    """Return (silver.subscriptions, silver.plan_dimensions, rejected lifecycle messages).

    Rejected rows carry partition_id, sequence_number, reason, detail.
    """
    tracked, duplicates = tracked_purchases(lifecycle)
    deletions = lifecycle.where(F.col("message_type") == "SubscriptionDeleted")

    # Each deletion ends the earliest-purchased subscription it names that was purchased before it.
    t = tracked.select([F.col(c).alias(f"sub_{c}") for c in ("partition_id", "sequence_number", "enqueued_time",
                                                             "resource_id", "resource_uri")])
    deletion_matches = deletions.join(
        F.broadcast(t),
        identity_matches(F.col("resource_id"), F.col("resource_uri"), F.col("sub_resource_id"), F.col("sub_resource_uri"))
        & is_before(F.col("sub_enqueued_time"), F.col("sub_partition_id"), F.col("sub_sequence_number"),
                    F.col("enqueued_time"), F.col("partition_id"), F.col("sequence_number")),
        "inner",
    )
    first_target = Window.partitionBy("partition_id", "sequence_number").orderBy(
        "sub_enqueued_time", "sub_partition_id", "sub_sequence_number")
    deletion_matches = deletion_matches.withColumn("_rank", F.row_number().over(first_target)).where("_rank = 1")
    first_deletion = Window.partitionBy("sub_partition_id", "sub_sequence_number").orderBy(
        "enqueued_time", "partition_id", "sequence_number")
    ranked = deletion_matches.withColumn("_nth", F.row_number().over(first_deletion))
    effective = ranked.where("_nth = 1").select(
        F.col("sub_partition_id").alias("partition_id"),
        F.col("sub_sequence_number").alias("sequence_number"),
        F.col("enqueued_time").alias("deleted_at"),
        F.col("partition_id").alias("deleted_partition_id"),
        F.col("sequence_number").alias("deleted_sequence_number"),
    )
    repeated = ranked.where("_nth > 1").select(
        "partition_id", "sequence_number", F.lit("after_deletion").alias("reason"),
        F.lit("subscription already deleted").alias("detail"))
    unmatched = deletions.join(deletion_matches.select("partition_id", "sequence_number"),
                               ["partition_id", "sequence_number"], "left_anti").select(
        "partition_id", "sequence_number", F.lit("unknown_subscription").alias("reason"),
        F.lit("no subscription purchased before this deletion").alias("detail"))

    subscriptions = with_columns_of(
        tracked.join(effective, ["partition_id", "sequence_number"], "left").select(
            F.coalesce("resource_uri", "resource_id").alias("subscription_key"),
            "resource_id", "resource_uri", "plan_id", "renewal_interval",
            renewal_months(F.col("renewal_interval")).alias("renewal_months"),
            "subscription_start",
            F.col("enqueued_time").alias("purchased_at"),
            "deleted_at", "deleted_partition_id", "deleted_sequence_number",
            offer_type(F.col("resource_uri")).alias("offer_type"),
            "partition_id", "sequence_number",
        ),
        SILVER_SUBSCRIPTIONS_SCHEMA,
    )
    rejected = duplicates.select(
        "partition_id", "sequence_number", F.lit("duplicate_purchase").alias("reason"),
        F.lit("subscription is already tracked; the first purchase's plan stays").alias("detail"),
    ).unionByName(unmatched).unionByName(repeated)
    return subscriptions, plan_dimensions(tracked), rejected


def plan_dimensions(tracked: DataFrame) -> DataFrame:
    dims = F.from_json("billing_dimensions_json", MapType(StringType(), BILLING_DIMENSION_SCHEMA))
    exploded = tracked.select(
        F.coalesce("resource_uri", "resource_id").alias("subscription_key"),
        "plan_id",
        F.explode(dims).alias("meter_name", "d"),
    )
    d = F.col("d")
    simple = d["type"] == "simple"
    tiers = F.transform(
        d["tiers"],
        lambda tier, i: F.struct(
            i.alias("tier_index"), tier["dimension"].alias("dimension"),
            parse_quantity(tier["threshold"]).alias("threshold")),
    )
    rows = exploded.select(
        "subscription_key", "plan_id", "meter_name",
        d["type"].alias("dimension_type"),
        F.when(simple, d["dimension"]).alias("dimension"),
        F.when(simple & ~is_infinite(d["included"]), F.coalesce(parse_quantity(d["included"]), F.lit(0.0)))
        .alias("included_quantity"),
        (simple & is_infinite(d["included"])).alias("included_infinite"),
        F.when(~simple, tiers).alias("tiers"),
    )
    return with_columns_of(rows, SILVER_PLAN_DIMENSIONS_SCHEMA)
