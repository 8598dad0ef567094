"""Silver stage: bronze.events -> typed silver tables and quarantine, incrementally and idempotently.

A Delta stream over bronze hands each new slice of records to `process_batch`. Before it writes anything,
a batch records the ranges of Capture positions it holds in `silver.processed_ranges` (io.key_ranges):
a batch whose ranges meet none recorded before is new to every silver table, and its rows are appended;
a batch that meets one (a replay after a crash, a reset checkpoint) is written with MERGEs keyed by the
record's position, so it changes nothing it wrote before. Each MERGE names the batch's sequence-number
range on the target, so Delta reads only the files that can hold a match.

The batch is parsed once and kept without the bodies of valid usage events (silver does not store them;
most of the batch's bytes); the usage is resolved from the kept rows, and the few rejected usage events
fetch their bodies from bronze for quarantine.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from metering_analytics.config import PipelineConfig
from metering_analytics.io.key_ranges import KEY_RANGE_SCHEMA, key_ranges, overlapping, span
from metering_analytics.io.lakehouse import Lakehouse, same_rows
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
from metering_analytics.silver.usage import resolve_usage, resolved_usage, split_resolved
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
PROCESSED_RANGES = "processed_ranges"  # bookkeeping: which positions silver has taken in
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


@dataclass(frozen=True)
class BatchWriter:
    """Writes one batch's rows: appended when the batch is new to silver, merged on the position otherwise."""
    lakehouse: Lakehouse
    bounds: str | None  # the batch's sequence-number range, as a MERGE condition on the target
    new: bool

    def facts(self, df: DataFrame, table: str, known_to_hold_rows: bool = False) -> None:
        # A kept (checkpointed) frame answers isEmpty at no cost; no rows means no empty commit.
        if not known_to_hold_rows and df.isEmpty():
            return
        if self.new:
            self.lakehouse.append(df, "silver", table)
        else:
            _merge_new(self.lakehouse, df, table, self.bounds)

    def quarantine(self, df: DataFrame) -> None:
        if df.isEmpty():
            return
        if self.new:
            self.lakehouse.append(df, "silver", "quarantine")
        else:
            _merge_quarantine(self.lakehouse, df, self.bounds)


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
    # Most lifecycle messages (a new purchase) leave every other row as it was: a table whose rows do
    # not change is not rewritten, so its change feed shows only real changes.
    lakehouse.replace_if_changed(subscriptions, "silver", "subscriptions")
    lakehouse.replace_if_changed(dimensions, "silver", "plan_dimensions")

    # Lifecycle verdicts can change when an earlier message arrives late: replace them as a set.
    rejected_rows = lifecycle.join(rejected, list(KEY), "inner").localCheckpoint()
    verdict = ["partition_id", "sequence_number", "source_file", "reason", "detail"]
    quarantine = lakehouse.read(spark, "silver", "quarantine")
    is_lifecycle_verdict = (F.col("message_type").isin("SubscriptionPurchased", "SubscriptionDeleted")
                            & F.col("reason").isin(*LIFECYCLE_REASONS))
    if not same_rows(quarantine.where(is_lifecycle_verdict).select(*verdict),
                     facts.quarantine_rows(rejected_rows).select(*verdict)):
        lakehouse.delta_table(spark, "silver", "quarantine").delete(is_lifecycle_verdict)
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
    ).select(*KEY, "enqueued_time", "body", "properties", "source_file",
             F.col("reason").alias("_was_reason"), F.col("detail").alias("_was_detail"))
    deleted_keys = [r["subscription_key"] for r in newly_deleted.collect()]  # a handful per batch
    stale = None
    if deleted_keys:
        stale = (
            lakehouse.read(spark, "silver", "usage_events")
            .where(F.col("subscription_key").isin(deleted_keys))
            .join(F.broadcast(subs.select("subscription_key", "deleted_at")), "subscription_key")
            .where(F.col("enqueued_time") >= F.col("deleted_at"))
            .select(*KEY)
            .localCheckpoint()
        )
        if stale.isEmpty():
            stale = None
    if stale is not None:
        waiting = waiting.unionByName(
            lakehouse.read(spark, "bronze", "events").join(F.broadcast(stale), list(KEY), "left_semi")
            .select(*KEY, "enqueued_time", "body", "properties", "source_file",
                    F.lit(None).cast("string").alias("_was_reason"), F.lit(None).cast("string").alias("_was_detail")))
    bronze_like = waiting.withColumn("enqueued_time_raw", F.lit(None).cast("string")).localCheckpoint()
    if bronze_like.isEmpty():
        return
    bounds = sequence_bounds(bronze_like)
    usage = facts.usage_candidates(decode_messages(bronze_like.drop("_was_reason", "_was_detail")))
    valid, rejected = resolve_usage(usage, subs, dimensions)
    valid, rejected = valid.localCheckpoint(), rejected.localCheckpoint()
    # Most of the waiting usage is still waiting: only the verdicts that changed are written.
    was = bronze_like.select(*[F.col(c).alias(f"_was_{c}") for c in (*KEY, "source_file")], "_was_reason",
                             "_was_detail")
    unchanged = [F.col(c).eqNullSafe(F.col(f"_was_{c}")) for c in (*KEY, "source_file", "reason", "detail")]
    changed = rejected.join(was, reduce(Column.__and__, unchanged), "left_anti").localCheckpoint()
    # Each record is written to its new table before it leaves the old one: a crash in between leaves
    # it in both, and the replayed batch finds it again (still quarantined, or still in usage_events)
    # and finishes the move. Deleting first would lose it.
    if not valid.isEmpty():
        _merge_new(lakehouse, valid, "usage_events", bounds)
        _delete_keys(lakehouse, spark, "quarantine", valid.select(*KEY), bounds)
    if not changed.isEmpty():
        _merge_quarantine(lakehouse, facts.quarantine_rows(changed), bounds)
    if stale is not None:  # usage after a deletion, now in quarantine, leaves usage_events
        _delete_keys(lakehouse, spark, "usage_events", rejected.join(stale, list(KEY), "left_semi").select(*KEY),
                     bounds)


def _bounds(ranges: list[dict]) -> str | None:
    lowest_highest = span(ranges)
    return None if lowest_highest is None else "t.sequence_number BETWEEN {} AND {}".format(*lowest_highest)


def record_ranges(spark: SparkSession, lakehouse: Lakehouse, bronze_batch: DataFrame) -> BatchWriter:
    """Record the batch's position ranges in silver.processed_ranges (before any of its rows is written)
    and say how its rows must be written: appended if no range met a recorded one, merged otherwise."""
    ranges_df = key_ranges(bronze_batch).localCheckpoint()
    ranges = [row.asDict() for row in ranges_df.collect()]  # per partition: a few dozen rows
    new = not overlapping(ranges, lakehouse.read(spark, "silver", PROCESSED_RANGES))
    if ranges:
        lakehouse.merge_insert_new(ranges_df, "silver", PROCESSED_RANGES,
                                   keys=("min_sequence_number", "max_sequence_number"),
                                   extra_condition="t.partition_id <=> s.partition_id AND t.source_file <=> s.source_file")
    return BatchWriter(lakehouse, _bounds(ranges), new)


DECODED_KEPT = ("partition_id", "sequence_number", "enqueued_time", "message_type", "reason", "detail", "value",
                "properties", "source_file")


def _is_valid_usage() -> Column:
    return F.coalesce(F.col("reason").isNull() & (F.col("message_type") == "UsageReported"), F.lit(False))


def process_batch(spark: SparkSession, lakehouse: Lakehouse, bronze_batch: DataFrame,
                  writer: BatchWriter | None = None) -> int:
    """Parse one slice of bronze records into the silver tables and quarantine; returns its record count.

    `writer` (record_ranges) says whether the slice is new to silver; without one, every write merges.
    """
    writer = writer or BatchWriter(lakehouse, None, new=False)
    # Parsed once and kept. A valid usage event's body is not kept: silver does not store it, and it is
    # most of the batch's bytes. Selecting from the kept rows is cheap; filtering the unkept ones on the
    # verdict would make Spark evaluate the parse again inside the filter.
    kept = decode_messages(bronze_batch).select(
        *DECODED_KEPT, F.when(~_is_valid_usage(), F.col("body")).alias("body")).localCheckpoint()
    lifecycle = facts.subscription_lifecycle(kept).localCheckpoint()
    if not lifecycle.isEmpty():
        # Lifecycle rows are few and derive the subscriptions from the whole table: always merged.
        _merge_new(lakehouse, lifecycle, "subscription_lifecycle", writer.bounds)
        subs, newly_deleted = _refresh_subscriptions(spark, lakehouse, lifecycle)
        subs = subs.localCheckpoint()
        # Before this batch's usage: that is resolved against the refreshed subscriptions already.
        _reresolve_usage(spark, lakehouse, subs, newly_deleted)
    else:
        subs = lakehouse.read(spark, "silver", "subscriptions").localCheckpoint()

    writer.facts(facts.marketplace_submissions(kept), "marketplace_submissions")
    writer.facts(facts.pings(kept), "pings")
    writer.facts(facts.maintenance(kept), "maintenance")

    candidates = facts.usage_candidates(kept)
    dimensions = lakehouse.read(spark, "silver", "plan_dimensions")
    # Not kept: resolving again (broadcast lookups) for the few rejects costs less than keeping every
    # resolved row.
    valid, rejected_usage = split_resolved(resolved_usage(candidates, subs, dimensions), candidates.columns)
    rejected_usage = rejected_usage.localCheckpoint()
    if candidates.count() > rejected_usage.count():  # counted on kept rows: cheap
        writer.facts(valid, "usage_events", known_to_hold_rows=True)
    if not rejected_usage.isEmpty():  # their bodies, from bronze: quarantine keeps them for a replay
        bodies = bronze_batch.join(F.broadcast(rejected_usage.select(*KEY)), list(KEY), "left_semi")
        rejected_usage = rejected_usage.drop("body").join(bodies.select(*KEY, "body"), list(KEY))
    writer.quarantine(facts.rejected(kept).unionByName(facts.quarantine_rows(rejected_usage)))
    return kept.count()


def ensure_silver_tables(spark: SparkSession, lakehouse: Lakehouse) -> None:
    # The change feed tells the billing and gold stages which rows changed since their last run.
    for table, schema in SILVER_TABLES.items():
        lakehouse.ensure_table(spark, "silver", table, schema, change_feed=True)
    if not lakehouse.exists(spark, "silver", PROCESSED_RANGES):
        lakehouse.ensure_table(spark, "silver", PROCESSED_RANGES, KEY_RANGE_SCHEMA)
        _seed_processed_ranges(spark, lakehouse)


def _seed_processed_ranges(spark: SparkSession, lakehouse: Lakehouse) -> None:
    """Silver tables written before the ranges were kept: record the positions they hold (once)."""
    keyed = [t for t in SILVER_TABLES if "sequence_number" in SILVER_TABLES[t].fieldNames()]
    held = None
    for table in keyed:
        keys = lakehouse.read(spark, "silver", table).select(
            "partition_id", "sequence_number",
            (F.col("source_file") if "source_file" in SILVER_TABLES[table].fieldNames()
             else F.lit(None).cast("string")).alias("source_file"))
        held = keys if held is None else held.unionByName(keys)
    ranges = key_ranges(held).localCheckpoint()
    if not ranges.isEmpty():
        lakehouse.append(ranges, "silver", PROCESSED_RANGES)


def run_silver(spark: SparkSession, config: PipelineConfig, *, checkpoint: str | None = None) -> SilverResult:
    lakehouse = config.lakehouse
    ensure_silver_tables(spark, lakehouse)
    result = SilverResult()

    def write_batch(batch: DataFrame, _batch_id: int) -> None:
        # Counted here: the stream's own input metric counts a batch once per pass over it.
        result.records += process_batch(spark, lakehouse, batch, record_ranges(spark, lakehouse, batch))
        result.batches += 1

    source = lakehouse.read_stream(spark, "bronze", "events", max_files_per_trigger=200)
    drain(source, write_batch, checkpoint or lakehouse.checkpoint("silver"))
    return result
