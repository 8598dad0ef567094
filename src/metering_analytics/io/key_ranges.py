"""Capture positions as ranges: the proof that lets a batch be appended instead of merged.

Every bronze and silver row is keyed by its Capture position: (partition id, sequence number), or
(source file, sequence number) when the file's path names no partition. A MERGE on that key makes a
replay add nothing, but it joins each batch against the table, shuffling the batch's rows, bodies
included. Yet nearly every batch is new: its positions were never written.

So a writer records the ranges of positions it is about to write (per partition: lowest and highest
sequence number; per file for records without a partition) *before* it writes them. A batch whose ranges
meet no recorded range holds no position the table has, and is appended; any overlap (a replay after a
crash, a file delivered twice, a reset checkpoint) falls back to the MERGE. An overlap can be a false
alarm (interleaved ranges), never a miss: that costs speed, not correctness.
"""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType

KEY_RANGE_SCHEMA = StructType([
    StructField("partition_id", StringType(), True),
    StructField("source_file", StringType(), True),  # set only where partition_id is null
    StructField("min_sequence_number", LongType(), True),
    StructField("max_sequence_number", LongType(), True),
])


def key_ranges(records: DataFrame) -> DataFrame:
    """Rows with partition_id, sequence_number and source_file -> their ranges (KEY_RANGE_SCHEMA).

    Records without a sequence number are left out: their key never matches, in a MERGE or here.
    """
    located = records.where(F.col("sequence_number").isNotNull()).select(
        "partition_id",
        F.when(F.col("partition_id").isNull(), F.col("source_file")).alias("source_file"),
        "sequence_number",
    )
    return located.groupBy("partition_id", "source_file").agg(
        F.min("sequence_number").alias("min_sequence_number"),
        F.max("sequence_number").alias("max_sequence_number"),
    )


def span(ranges: list[dict]) -> tuple[int, int] | None:
    """The lowest and highest sequence number of `ranges` (rows with min/max_sequence_number); None
    when none has one."""
    located = [r for r in ranges if r["min_sequence_number"] is not None]
    if not located:
        return None
    return min(r["min_sequence_number"] for r in located), max(r["max_sequence_number"] for r in located)


def _owner(row: dict) -> tuple[str, str]:
    return ("partition", row["partition_id"]) if row["partition_id"] is not None else ("file", row["source_file"])


def overlapping(new_ranges: list[dict], recorded: DataFrame) -> bool:
    """True when any of `new_ranges` (rows of KEY_RANGE_SCHEMA) meets a range in `recorded`.

    Only the recorded ranges of the same partitions (or files) within the batch's overall span are read,
    so the check costs what the batch touches, not what the table holds.
    """
    new_ranges = [r for r in new_ranges if r["min_sequence_number"] is not None]
    if not new_ranges:
        return False
    low, high = span(new_ranges)
    partitions = sorted({r["partition_id"] for r in new_ranges if r["partition_id"] is not None})
    files = sorted({r["source_file"] for r in new_ranges if r["partition_id"] is None})
    owned = F.lit(False)
    if partitions:
        owned = owned | F.col("partition_id").isin(partitions)
    if files:
        owned = owned | (F.col("partition_id").isNull() & F.col("source_file").isin(files))
    candidates = recorded.where(
        owned & (F.col("max_sequence_number") >= low) & (F.col("min_sequence_number") <= high)
    ).select("partition_id", "source_file", "min_sequence_number", "max_sequence_number").collect()
    spans: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for row in candidates:
        spans.setdefault(_owner(row.asDict()), []).append((row["min_sequence_number"], row["max_sequence_number"]))
    return any(
        start <= r["max_sequence_number"] and r["min_sequence_number"] <= end
        for r in new_ranges
        for start, end in spans.get(_owner(r), ())
    )
