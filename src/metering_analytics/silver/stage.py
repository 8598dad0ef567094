"""Silver stage: bronze.events -> typed silver tables and quarantine, incrementally and idempotently.

A Delta stream over bronze hands each new slice of records to `process_batch`; every write is a MERGE
keyed by the record's Capture position, so a replayed batch changes nothing. Each MERGE also names the
batch's sequence-number range on the target, so Delta reads only the files that can hold a match and a
batch costs what its records cost, not what the tables hold.
"""
from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from metering_analytics.config import PipelineConfig
from metering_analytics.io.lakehouse import Lakehouse
from metering_analytics.io.streams import drain
from metering_analytics.schemas import (
    SILVER_MAINTENANCE_SCHEMA,
    SILVER_MARKETPLACE_SUBMISSIONS_SCHEMA,
    SILVER_PINGS_SCHEMA,
    SILVER_PLAN_DIMENSIONS_SCHEMA,
    SILVER_QUARANTINE_SCHEMA,
    SILVER_SUBSCRIPTION_LIFECYCLE_SCHEMA,
    SILVER_SUBSCRIPTIONS_SCHEMA,
    SILVER_USAGE_EVENTS_SCHEMA,
)
from metering_analytics.silver import facts
from metering_analytics.silver.messages import decode_messages
from metering_analytics.silver.subscriptions import derive_subscriptions
from metering_analytics.silver.usage import resolve_usage
from metering_analytics.silver.values import identity_matches

KEY = ("partition_id", "sequence_number")
SILVER_TABLES = {
    "subscription_lifecycle": SILVER_SUBSCRIPTION_LIFECYCLE_SCHEMA,
    "subscriptions": SILVER_SUBSCRIPTIONS_SCHEMA,
    "plan_dimensions": SILVER_PLAN_DIMENSIONS_SCHEMA,
    "usage_events": SILVER_USAGE_EVENTS_SCHEMA,
    "marketplace_submissions": SILVER_MARKETPLACE_SUBMISSIONS_SCHEMA,
    "pings": SILVER_PINGS_SCHEMA,
    "maintenance": SILVER_MAINTENANCE_SCHEMA,
    "quarantine": SILVER_QUARANTINE_SCHEMA,
}
LIFECYCLE_REASONS = ("duplicate_purchase", "unknown_subscription", "after_deletion")
QUARANTINE_MATCH = (
    "t.sequence_number = s.sequence_number AND t.partition_id <=> s.partition_id "
    "AND (t.partition_id IS NOT NULL OR t.source_file = s.source_file)"
)


@dataclass
class SilverResult:
    batches: int = 0
    records: int = 0


def sequence_bounds(records: DataFrame) -> str | None:
    """A MERGE condition on the target alone: its sequence number within the records' range (Delta skips
    the files outside it by their statistics). None when the records hold no sequence number."""
    low, high = records.agg(F.min("sequence_number"), F.max("sequence_number")).first()
    return None if low is None else f"t.sequence_number BETWEEN {int(low)} AND {int(high)}"


def _merge_new(lakehouse: Lakehouse, df: DataFrame, table: str, bounds: str | None) -> None:
    if df.isEmpty():  # a MERGE costs several Spark jobs even with nothing to merge
        return
    lakehouse.merge_insert_new(df, "silver", table, keys=KEY, extra_condition=bounds)


def _merge_quarantine(lakehouse: Lakehouse, df: DataFrame, bounds: str | None) -> None:
    spark = df.sparkSession
    match = f"{QUARANTINE_MATCH} AND {bounds}" if bounds else QUARANTINE_MATCH
    (
        lakehouse.delta_table(spark, "silver", "quarantine").alias("t")
        .merge(df.alias("s"), match)
        .whenMatchedUpdate(set={"reason": "s.reason", "detail": "s.detail"})
        .whenNotMatchedInsertAll()
        .execute()
    )


def _delete_keys(lakehouse: Lakehouse, spark: SparkSession, table: str, keys: DataFrame, bounds: str | None) -> None:
    match = "t.partition_id = s.partition_id AND t.sequence_number = s.sequence_number"
    (
        lakehouse.delta_table(spark, "silver", table).alias("t")
        .merge(keys.alias("s"), f"{match} AND {bounds}" if bounds else match)
        .whenMatchedDelete()
        .execute()
    )


def _refresh_subscriptions(spark: SparkSession, lakehouse: Lakehouse, lifecycle_batch: DataFrame) -> tuple[DataFrame, DataFrame]:
    """Re-derive subscriptions and plan dimensions from the whole lifecycle table; returns them and the
    deleted subscriptions the batch's lifecycle messages name (those whose deletion may be new)."""
    lifecycle = lakehouse.read(spark, "silver", "subscription_lifecycle")
    subscriptions, dimensions, rejected = derive_subscriptions(lifecycle)
    lakehouse.overwrite(subscriptions, "silver", "subscriptions")
    lakehouse.overwrite(dimensions, "silver", "plan_dimensions")

    # Lifecycle verdicts can change when an earlier message arrives late: replace them as a set.
    lakehouse.delta_table(spark, "silver", "quarantine").delete(
        F.col("message_type").isin("SubscriptionPurchased", "SubscriptionDeleted")
        & F.col("reason").isin(*LIFECYCLE_REASONS)
    )
    rejected_rows = lifecycle.join(rejected, list(KEY), "inner").localCheckpoint()
    if not rejected_rows.isEmpty():
        _merge_quarantine(lakehouse, facts.quarantine_rows(rejected_rows), sequence_bounds(rejected_rows))

    subs = lakehouse.read(spark, "silver", "subscriptions")
    # Named by the batch rather than found by comparing the table before and after: a batch replayed
    # after a crash, when silver.subscriptions already shows the deletion, must check the same ones.
    # A subscription's deletion changes only when a message naming it (purchase or deletion) arrives.
    named = lifecycle_batch.select(F.col("resource_id").alias("named_id"), F.col("resource_uri").alias("named_uri"))
    newly_deleted = subs.where(F.col("deleted_at").isNotNull()).join(
        F.broadcast(named),
        identity_matches(F.col("resource_id"), F.col("resource_uri"), F.col("named_id"), F.col("named_uri")),
        "left_semi",
    ).select("subscription_key")
    return subs, newly_deleted


def _reresolve_usage(spark: SparkSession, lakehouse: Lakehouse, subs: DataFrame, newly_deleted: DataFrame) -> None:
    """Usage whose verdict a lifecycle change can alter: unknown-subscription rejects and usage of
    subscriptions whose deletion just arrived (possibly after the usage that follows it)."""
    dimensions = lakehouse.read(spark, "silver", "plan_dimensions")
    # Quarantine keeps what a usage record needs to be decoded again; bronze is read only for the
    # (rare) usage that a late deletion invalidates.
    waiting = lakehouse.read(spark, "silver", "quarantine").where(
        (F.col("reason") == "unknown_subscription") & (F.col("message_type") == "UsageReported")
    ).select(*KEY, "enqueued_time", "body", "properties", "source_file")
    deleted_keys = [r["subscription_key"] for r in newly_deleted.collect()]  # a handful per batch
    if deleted_keys:
        stale = (
            lakehouse.read(spark, "silver", "usage_events")
            .where(F.col("subscription_key").isin(deleted_keys))
            .join(F.broadcast(subs.select("subscription_key", "deleted_at")), "subscription_key")
            .where(F.col("enqueued_time") >= F.col("deleted_at"))
            .select(*KEY)
            .localCheckpoint()
        )
    if deleted_keys and not stale.isEmpty():
        waiting = waiting.unionByName(
            lakehouse.read(spark, "bronze", "events").join(F.broadcast(stale), list(KEY), "left_semi")
            .select(*KEY, "enqueued_time", "body", "properties", "source_file"))
    bronze_like = waiting.withColumn("enqueued_time_raw", F.lit(None).cast("string")).localCheckpoint()
    if bronze_like.isEmpty():
        return
    bounds = sequence_bounds(bronze_like)
    usage = facts.usage_candidates(decode_messages(bronze_like))
    valid, rejected = resolve_usage(usage, subs, dimensions)
    valid = valid.localCheckpoint()
    rejected = rejected.localCheckpoint()
    # Each record is written to its new table before it leaves the old one: a crash in between leaves
    # it in both, and the replayed batch finds it again (still quarantined, or still in usage_events)
    # and finishes the move. Deleting first would lose it.
    _merge_new(lakehouse, valid, "usage_events", bounds)
    _merge_quarantine(lakehouse, facts.quarantine_rows(rejected), bounds)
    _delete_keys(lakehouse, spark, "quarantine", valid.select(*KEY), bounds)
    _delete_keys(lakehouse, spark, "usage_events", rejected.select(*KEY), bounds)


def process_batch(spark: SparkSession, lakehouse: Lakehouse, bronze_batch: DataFrame) -> None:
    """Parse one slice of bronze records into the silver tables and quarantine."""
    decoded = decode_messages(bronze_batch).localCheckpoint()
    bounds = sequence_bounds(decoded)
    lifecycle = facts.subscription_lifecycle(decoded).localCheckpoint()
    lifecycle_changed = not lifecycle.isEmpty()
    if lifecycle_changed:
        _merge_new(lakehouse, lifecycle, "subscription_lifecycle", bounds)
        subs, newly_deleted = _refresh_subscriptions(spark, lakehouse, lifecycle)
    else:
        subs = lakehouse.read(spark, "silver", "subscriptions")
    subs = subs.localCheckpoint()

    _merge_new(lakehouse, facts.marketplace_submissions(decoded), "marketplace_submissions", bounds)
    _merge_new(lakehouse, facts.pings(decoded), "pings", bounds)
    _merge_new(lakehouse, facts.maintenance(decoded), "maintenance", bounds)

    dimensions = lakehouse.read(spark, "silver", "plan_dimensions")
    valid, rejected_usage = resolve_usage(facts.usage_candidates(decoded), subs, dimensions)
    _merge_new(lakehouse, valid.localCheckpoint(), "usage_events", bounds)
    rejected = facts.rejected(decoded).unionByName(facts.quarantine_rows(rejected_usage))
    _merge_quarantine(lakehouse, rejected, bounds)

    if lifecycle_changed:
        _reresolve_usage(spark, lakehouse, subs, newly_deleted)


def ensure_silver_tables(spark: SparkSession, lakehouse: Lakehouse) -> None:
    # The change feed tells the billing and gold stages which rows changed since their last run.
    for table, schema in SILVER_TABLES.items():
        lakehouse.ensure_table(spark, "silver", table, schema, change_feed=True)


def run_silver(spark: SparkSession, config: PipelineConfig, *, checkpoint: str | None = None) -> SilverResult:
    lakehouse = config.lakehouse
    ensure_silver_tables(spark, lakehouse)
    result = SilverResult()

    def write_batch(batch: DataFrame, _batch_id: int) -> None:
        process_batch(spark, lakehouse, batch)
        result.batches += 1

    source = lakehouse.read_stream(spark, "bronze", "events", max_files_per_trigger=200)
    result.records = drain(source, write_batch, checkpoint or lakehouse.checkpoint("silver"))
    return result
