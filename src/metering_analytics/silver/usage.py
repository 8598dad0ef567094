"""Usage candidates -> silver.usage_events (resolved to a subscription) or quarantine with a reason.

Resolution is three broadcast lookups on the (small) subscriptions table, so millions of events are
matched without a shuffle, a sort or a nested loop:

- usage with a resourceUri: the subscription with that URI, or an earlier-purchased one that has no
  URI but the same resourceId (the identity rule: URIs decide only when both sides have one);
- usage without a resourceUri: the earliest-purchased subscription with that resourceId.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from metering_analytics.io.lakehouse import with_columns_of
from metering_analytics.schemas import SILVER_USAGE_EVENTS_SCHEMA
from metering_analytics.silver.positions import is_before

_SUBSCRIPTION_FIELDS = (
    "subscription_key", "plan_id", "subscription_start", "purchased_at", "partition_id", "sequence_number",
    "deleted_at", "deleted_partition_id", "deleted_sequence_number",
)


def _lookup(subscriptions: DataFrame, key: str, name: str) -> DataFrame:
    """key value -> the earliest-purchased subscription having it, as one struct column `name`."""
    earliest = Window.partitionBy(key).orderBy("purchased_at", "partition_id", "sequence_number")
    return F.broadcast(
        subscriptions.where(F.col(key).isNotNull())
        .withColumn("_rank", F.row_number().over(earliest))
        .where("_rank = 1")
        .select(F.col(key).alias(f"{name}_key"), F.struct(*_SUBSCRIPTION_FIELDS).alias(name))
    )


def _earlier(a: Column, b: Column) -> Column:
    a_first = is_before(a["purchased_at"], a["partition_id"], a["sequence_number"],
                        b["purchased_at"], b["partition_id"], b["sequence_number"])
    return F.when(a.isNull(), b).when(b.isNull(), a).when(a_first, a).otherwise(b)


def match_subscriptions(usage: DataFrame, subscriptions: DataFrame) -> DataFrame:
    """`usage` with a struct column `sub`: the subscription it names by the identity rule, or null."""
    by_uri = _lookup(subscriptions, "resource_uri", "by_uri")
    by_id_without_uri = _lookup(subscriptions.where(F.col("resource_uri").isNull()), "resource_id", "by_bare_id")
    by_id = _lookup(subscriptions, "resource_id", "by_id")
    joined = (
        usage.join(by_uri, F.col("resource_uri") == F.col("by_uri_key"), "left")
        .join(by_id_without_uri, F.col("resource_id") == F.col("by_bare_id_key"), "left")
        .join(by_id, F.col("resource_uri").isNull() & (F.col("resource_id") == F.col("by_id_key")), "left")
    )
    sub = F.when(F.col("resource_uri").isNotNull(), _earlier(F.col("by_uri"), F.col("by_bare_id"))).otherwise(
        F.col("by_id"))
    return joined.withColumn("sub", sub).drop("by_uri_key", "by_uri", "by_bare_id_key", "by_bare_id",
                                               "by_id_key", "by_id")


def resolve_usage(usage: DataFrame, subscriptions: DataFrame, dimensions: DataFrame) -> tuple[DataFrame, DataFrame]:
    """Split usage candidates into (silver.usage_events rows, rejected rows with reason and detail)."""
    return split_resolved(resolved_usage(usage, subscriptions, dimensions), usage.columns)


def resolved_usage(usage: DataFrame, subscriptions: DataFrame, dimensions: DataFrame) -> DataFrame:
    """Usage candidates with their subscription (`sub`), meter dimension and verdict (`reason`, `detail`:
    null when valid); split_resolved turns them into table rows."""
    meters = F.broadcast(dimensions.select(
        F.col("subscription_key").alias("_meter_subscription"), F.col("meter_name").alias("_meter_name"),
        F.col("dimension").alias("simple_dimension"), F.lit(True).alias("_known_meter")))
    matched = match_subscriptions(usage, subscriptions)
    checked = matched.join(
        meters,
        (F.col("sub.subscription_key") == F.col("_meter_subscription")) & (F.col("meter_name") == F.col("_meter_name")),
        "left",
    )
    sub = F.col("sub")
    before_purchase = is_before(F.col("enqueued_time"), F.col("partition_id"), F.col("sequence_number"),
                                sub["purchased_at"], sub["partition_id"], sub["sequence_number"])
    before_start = F.col("enqueued_time") < sub["subscription_start"]
    after_deletion = sub["deleted_at"].isNotNull() & is_before(
        sub["deleted_at"], sub["deleted_partition_id"], sub["deleted_sequence_number"],
        F.col("enqueued_time"), F.col("partition_id"), F.col("sequence_number"))
    unknown_meter = F.col("_known_meter").isNull()
    reason = (
        F.when(sub.isNull(), F.lit("unknown_subscription"))
        .when(before_purchase, F.lit("unknown_subscription"))
        .when(before_start, F.lit("before_subscription_start"))
        .when(after_deletion, F.lit("after_deletion"))
        .when(unknown_meter, F.lit("unknown_meter"))
    )
    detail = (
        F.when(sub.isNull(), F.lit("no purchased subscription has this resourceId/resourceUri"))
        .when(before_purchase, F.concat(F.lit("usage enqueued before the purchase of "), sub["subscription_key"]))
        .when(before_start, F.concat(F.lit("subscription starts "), sub["subscription_start"].cast("string")))
        .when(after_deletion, F.concat(F.lit("subscription deleted at "), sub["deleted_at"].cast("string")))
        .when(unknown_meter, F.concat(F.lit("meterName="), F.col("meter_name"), F.lit(" not in plan "), sub["plan_id"]))
    )
    return checked.withColumn("reason", reason).withColumn("detail", detail)


def split_resolved(checked: DataFrame, usage_columns: list[str]) -> tuple[DataFrame, DataFrame]:
    """resolved_usage rows -> (silver.usage_events rows, rejected rows: the candidate columns, reason,
    detail and message type)."""
    sub = F.col("sub")
    valid = with_columns_of(
        checked.where(F.col("reason").isNull()).select(
            "partition_id", "sequence_number",
            sub["subscription_key"].alias("subscription_key"),
            "resource_id", "resource_uri",
            sub["plan_id"].alias("plan_id"),
            "meter_name",
            F.col("simple_dimension").alias("dimension"),
            "quantity", "enqueued_time", "event_timestamp", "properties",
        ),
        SILVER_USAGE_EVENTS_SCHEMA,
    )
    rejected = checked.where(F.col("reason").isNotNull()).select(
        *usage_columns, "reason", "detail", F.lit("UsageReported").alias("message_type"))
    return valid, rejected
