"""Capture records -> bronze.events rows (pure transforms)."""
from __future__ import annotations

from typing import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from metering_analytics.schemas import BRONZE_EVENTS_SCHEMA

BRONZE_KEY = ("partition_id", "sequence_number")
CAPTURE_TIME_FORMAT = "M/d/yyyy h:mm:ss a"


def avro_union_as_string(value: Column) -> Column:
    """Capture property values are an Avro union (long, double, string, bytes); keep their text."""
    return F.coalesce(
        value["member2"],
        value["member0"].cast("string"),
        value["member1"].cast("string"),
        F.base64(value["member3"]),
    )


def properties_as_strings(properties: Column) -> Column:
    return F.transform_values(properties, lambda _key, value: avro_union_as_string(value))


def path_part(source_file: Column, patterns: Sequence[str], group: int) -> Column:
    """The first non-empty capture group among the configured Capture path patterns."""
    extracted = [F.nullif(F.regexp_extract(source_file, p, group), F.lit("")) for p in patterns]
    return F.coalesce(*extracted) if len(extracted) > 1 else extracted[0]


def enqueued_time(enqueued_time_utc: Column, system_properties: Column) -> Column:
    """The Event Hubs enqueued time: `x-opt-enqueued-time` (ms) when present, else the Capture string.

    Both are the same clock; the system property keeps the milliseconds the string drops.
    """
    millis = system_properties["x-opt-enqueued-time"]["member0"]
    parsed = F.try_to_timestamp(enqueued_time_utc, F.lit(CAPTURE_TIME_FORMAT))
    return F.coalesce(F.timestamp_millis(millis), parsed)


def file_layout(files: DataFrame, path_patterns: Sequence[str]) -> DataFrame:
    """Add each file's `event_hub` and `partition_id`, parsed from its `source_file` path.

    Parsed once per file rather than per record: the patterns are searched anywhere in the path, which
    costs more than decoding the record itself.
    """
    return files.withColumns({
        "event_hub": path_part(F.col("source_file"), path_patterns, 1),
        "partition_id": path_part(F.col("source_file"), path_patterns, 2),
    })


def capture_file_stats(capture: DataFrame, path_patterns: Sequence[str]) -> DataFrame:
    """Raw Capture rows (with `source_file`) -> one row per file: records, distinct sequence numbers,
    their range, and the file's layout (file_layout)."""
    stats = capture.groupBy("source_file").agg(
        F.count(F.lit(1)).alias("records_read"),
        F.count_distinct("SequenceNumber").alias("distinct_sequence_numbers"),
        F.min("SequenceNumber").alias("min_sequence_number"),
        F.max("SequenceNumber").alias("max_sequence_number"),
    )
    return file_layout(stats, path_patterns)


def may_repeat_records(file_stats: list[dict]) -> bool:
    """False when the files of a batch (rows of capture_file_stats) certainly hold no record twice.

    A record is its (partition, sequence number), or (file, sequence number) where the path names no
    partition. Capture files hold distinct, contiguous sequence numbers and never overlap, so this cheap
    proof usually holds and the batch needs no de-duplication; anything else (a file delivered twice,
    a null or repeated sequence number) answers True.
    """
    ranges: dict[str, list[tuple[int, int]]] = {}
    for f in file_stats:
        if f["records_read"] == 0:
            continue
        if f["distinct_sequence_numbers"] != f["records_read"]:
            return True
        if f["partition_id"] is not None:
            ranges.setdefault(f["partition_id"], []).append((f["min_sequence_number"], f["max_sequence_number"]))
    for spans in ranges.values():
        spans.sort()
        if any(later[0] <= earlier[1] for earlier, later in zip(spans, spans[1:])):
            return True
    return False


def capture_to_bronze(capture: DataFrame, files: DataFrame, ingested_at: Column | None = None) -> DataFrame:
    """Shape raw Capture rows (with `source_file`) as bronze.events; `files` (file_layout) gives each
    file's event hub and partition id."""
    ingested_at = ingested_at if ingested_at is not None else F.current_timestamp()
    layout = F.broadcast(files.select("source_file", "event_hub", "partition_id"))
    located = capture.join(layout, "source_file", "left")
    ts = enqueued_time(F.col("EnqueuedTimeUtc"), F.col("SystemProperties"))
    df = located.select(
        F.col("partition_id"),
        F.col("SequenceNumber").alias("sequence_number"),
        F.col("Offset").alias("offset"),
        ts.alias("enqueued_time"),
        F.col("EnqueuedTimeUtc").alias("enqueued_time_raw"),
        F.to_date(ts).alias("enqueued_date"),
        properties_as_strings(F.col("SystemProperties")).alias("system_properties"),
        properties_as_strings(F.col("Properties")).alias("properties"),
        F.col("Body").alias("body"),
        F.col("event_hub"),
        F.col("source_file"),
        ingested_at.alias("ingested_at"),
    )
    return df.select([F.col(f.name).cast(f.dataType) for f in BRONZE_EVENTS_SCHEMA.fields])


def first_copy_of_each_record(bronze: DataFrame) -> DataFrame:
    """A record delivered twice (same partition and sequence number) is kept once.

    The copy from the lexicographically first source file wins, so the result does not depend on
    the order in which files were listed. A hash aggregate, not a window: no sort of the bodies.
    Records whose path matched no layout (no partition id) are told apart by their file.
    """
    key = [
        F.col("partition_id"),
        F.col("sequence_number"),
        F.when(F.col("partition_id").isNull(), F.col("source_file")).alias("_unrecognised_file"),
    ]
    record = F.struct(*[F.col(c) for c in bronze.columns])
    return (
        bronze.groupBy(*key)
        .agg(F.min_by(record, F.col("source_file")).alias("_record"))
        .select("_record.*")
    )
