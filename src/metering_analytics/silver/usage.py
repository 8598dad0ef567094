"""Usage candidates -> silver.usage_events (resolved to a subscription) or quarantine with a reason."""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from metering_analytics.io.lakehouse import with_columns_of
from metering_analytics.schemas import SILVER_USAGE_EVENTS_SCHEMA
from metering_analytics.silver.positions import is_before

_SUBSCRIPTION_COLUMNS = (
    "subscription_key", "resource_id", "resource_uri", "plan_id", "subscription_start", "purchased_at",
    "partition_id", "sequence_number", "deleted_at", "deleted_partition_id", "deleted_sequence_number",
)


def _candidate_matches(usage: DataFrame, subscriptions: DataFrame) -> DataFrame:
    """Every (usage, subscription) pair that names the same subscription by the identity rule.

    Two equi-joins instead of one OR-join, so that millions of events never meet a nested loop:
    by URI when both sides have one, else by resource id.
    """
    subs = F.broadcast(subscriptions.select([F.col(c).alias(f"s_{c}") for c in _SUBSCRIPTION_COLUMNS]))
    by_uri = usage.join(subs, F.col("resource_uri") == F.col("s_resource_uri"), "inner")
    by_id = usage.join(
        subs,
        (F.col("resource_id") == F.col("s_resource_id"))
        & (F.col("resource_uri").isNull() | F.col("s_resource_uri").isNull()),
        "inner",
    )
    return by_uri.unionByName(by_id)


def resolve_usage(usage: DataFrame, subscriptions: DataFrame, dimensions: DataFrame) -> tuple[DataFrame, DataFrame]:
    """Split usage candidates into (silver.usage_events rows, rejected rows with reason and detail).

    A usage event matching several tracked subscriptions belongs to the earliest purchased one.
    """
    first_purchase = Window.partitionBy("partition_id", "sequence_number").orderBy(
        "s_purchased_at", "s_partition_id", "s_sequence_number")
    matched = (
        _candidate_matches(usage, subscriptions)
        .withColumn("_rank", F.row_number().over(first_purchase))
        .where("_rank = 1")
        .drop("_rank")
    )
    unmatched = usage.join(matched.select("partition_id", "sequence_number"),
                           ["partition_id", "sequence_number"], "left_anti")

    meters = F.broadcast(dimensions.select(
        F.col("subscription_key").alias("s_subscription_key"), "meter_name",
        F.col("dimension").alias("simple_dimension")))
    checked = matched.join(
        meters.withColumn("_known_meter", F.lit(True)), ["s_subscription_key", "meter_name"], "left")

    before_purchase = is_before(F.col("enqueued_time"), F.col("partition_id"), F.col("sequence_number"),
                                F.col("s_purchased_at"), F.col("s_partition_id"), F.col("s_sequence_number"))
    after_deletion = F.col("s_deleted_at").isNotNull() & is_before(
        F.col("s_deleted_at"), F.col("s_deleted_partition_id"), F.col("s_deleted_sequence_number"),
        F.col("enqueued_time"), F.col("partition_id"), F.col("sequence_number"))
    reason = (
        F.when(before_purchase, F.lit("unknown_subscription"))
        .when(F.col("enqueued_time") < F.col("s_subscription_start"), F.lit("before_subscription_start"))
        .when(after_deletion, F.lit("after_deletion"))
        .when(F.col("_known_meter").isNull(), F.lit("unknown_meter"))
    )
    detail = (
        F.when(before_purchase, F.concat(F.lit("usage enqueued before the purchase of "), F.col("s_subscription_key")))
        .when(F.col("enqueued_time") < F.col("s_subscription_start"),
              F.concat(F.lit("subscription starts "), F.col("s_subscription_start").cast("string")))
        .when(after_deletion, F.concat(F.lit("subscription deleted at "), F.col("s_deleted_at").cast("string")))
        .when(F.col("_known_meter").isNull(), F.concat(F.lit("meterName="), F.col("meter_name"),
                                                       F.lit(" not in plan "), F.col("s_plan_id")))
    )
    checked = checked.withColumn("reason", reason).withColumn("detail", detail)

    valid = with_columns_of(
        checked.where(F.col("reason").isNull()).select(
            "partition_id", "sequence_number",
            F.col("s_subscription_key").alias("subscription_key"),
            "resource_id", "resource_uri",
            F.col("s_plan_id").alias("plan_id"),
            "meter_name",
            F.col("simple_dimension").alias("dimension"),
            "quantity", "enqueued_time", "event_timestamp", "properties",
        ),
        SILVER_USAGE_EVENTS_SCHEMA,
    )
    rejected_columns = [c for c in usage.columns] + ["reason", "detail"]
    rejected = checked.where(F.col("reason").isNotNull()).select(*rejected_columns).unionByName(
        unmatched.withColumn("reason", F.lit("unknown_subscription"))
        .withColumn("detail", F.lit("no purchased subscription has this resourceId/resourceUri"))
    )
    return valid, rejected.withColumn("message_type", F.lit("UsageReported"))
