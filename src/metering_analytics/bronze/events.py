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


def capture_to_bronze(capture: DataFrame, path_patterns: Sequence[str], ingested_at: Column | None = None) -> DataFrame:
    """Shape raw Capture rows (with `source_file`) as bronze.events."""
    ingested_at = ingested_at if ingested_at is not None else F.current_timestamp()
    ts = enqueued_time(F.col("EnqueuedTimeUtc"), F.col("SystemProperties"))
    df = capture.select(
        path_part(F.col("source_file"), path_patterns, 2).alias("partition_id"),
        F.col("SequenceNumber").alias("sequence_number"),
        F.col("Offset").alias("offset"),
        ts.alias("enqueued_time"),
        F.col("EnqueuedTimeUtc").alias("enqueued_time_raw"),
        F.to_date(ts).alias("enqueued_date"),
        properties_as_strings(F.col("SystemProperties")).alias("system_properties"),
        properties_as_strings(F.col("Properties")).alias("properties"),
        F.col("Body").alias("body"),
        path_part(F.col("source_file"), path_patterns, 1).alias("event_hub"),
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
