"""bronze.accelerator_snapshots -> the accelerator's per-meter state and its unreported usage."""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from metering_analytics.io.lakehouse import with_columns_of
from metering_analytics.schemas import (
    SILVER_METER_SNAPSHOTS_SCHEMA,
    SILVER_SNAPSHOT_USAGE_TO_BE_REPORTED_SCHEMA,
    SNAPSHOT_JSON_SCHEMA,
)
from metering_analytics.silver.values import is_infinite, parse_body_timestamp, parse_quantity


def _meters(snapshots: DataFrame) -> DataFrame:
    parsed = snapshots.select("snapshot_file", "content_sha256",
                              F.from_json("content", SNAPSHOT_JSON_SCHEMA).alias("s"))
    return parsed.select(
        "snapshot_file", "content_sha256",
        F.col("s.lastProcessedMessage.partitionId").alias("snapshot_partition_id"),
        F.col("s.lastProcessedMessage.sequenceNumber").try_cast("long").alias("snapshot_sequence_number"),
        parse_body_timestamp(F.col("s.lastProcessedMessage.partitionTimestamp")).alias("snapshot_time"),
        F.explode("s.meters").alias("m"),
    ).withColumn("sub", F.col("m.subscription"))


def meter_snapshots(snapshots: DataFrame) -> DataFrame:
    meters = _meters(snapshots).select(
        "*", F.explode("sub.plan.billingDimensions").alias("meter_name", "d"))
    d, value = F.col("d"), F.col("d.meter")
    rows = meters.select(
        "snapshot_file", "content_sha256", "snapshot_partition_id", "snapshot_sequence_number", "snapshot_time",
        F.coalesce("sub.resourceUri", "sub.resourceId").alias("subscription_key"),
        F.col("sub.resourceId").alias("resource_id"),
        F.col("sub.resourceUri").alias("resource_uri"),
        F.col("sub.plan.planId").alias("plan_id"),
        F.col("sub.renewalInterval").alias("renewal_interval"),
        parse_body_timestamp(F.col("sub.subscriptionStart")).alias("subscription_start"),
        "meter_name",
        d["type"].alias("dimension_type"),
        d["dimension"].alias("dimension"),
        is_infinite(d["included"]).alias("included_infinite"),
        parse_quantity(value["included"]["quantity"]).alias("included_remaining"),
        parse_quantity(value["included"]["consumed"]).alias("included_consumed"),
        parse_quantity(value["consumed"]["total"]).alias("overage_total"),
        parse_quantity(value["consumed"]["consumedQuantity"]).alias("overage_current_hour"),
        parse_quantity(value["total"]).alias("waterfall_total"),
        F.transform_values(value["consumption"], lambda _k, v: parse_quantity(v)).alias("waterfall_consumption"),
        parse_body_timestamp(F.coalesce(value["included"]["lastUpdate"], value["consumed"]["lastUpdate"],
                                        value["lastUpdate"])).alias("last_update"),
    )
    return with_columns_of(rows, SILVER_METER_SNAPSHOTS_SCHEMA)


def usage_to_be_reported(snapshots: DataFrame) -> DataFrame:
    items = _meters(snapshots).select("*", F.explode("m.usageToBeReported").alias("u"))
    rows = items.select(
        "snapshot_file", "content_sha256", "snapshot_time",
        F.coalesce("sub.resourceUri", "sub.resourceId").alias("subscription_key"),
        F.col("u.resourceId").alias("resource_id"),
        F.col("u.resourceUri").alias("resource_uri"),
        F.col("u.planId").alias("plan_id"),
        F.col("u.dimension").alias("dimension"),
        parse_quantity(F.col("u.quantity")).alias("quantity"),
        parse_body_timestamp(F.col("u.effectiveStartTime")).alias("effective_start_time"),
    )
    return with_columns_of(rows, SILVER_SNAPSHOT_USAGE_TO_BE_REPORTED_SCHEMA)
