"""Bronze stage: Capture files -> bronze.events, incrementally and exactly once.

The stream's checkpoint remembers which files were read; the MERGE on (partition id, sequence number)
makes a file delivered twice, or a batch replayed after a crash, add nothing. A second stream over the
same files fills bronze.capture_files, which names every damaged file and what was kept from it.

Each batch's files are read once (cached) and summarised per file first; that summary parses the paths,
proves most batches free of repeated records (so they skip de-duplication), and bounds the MERGE's
search of bronze to the batch's sequence-number range (Delta skips the files outside it), so a batch
costs what its own records cost, not what the table holds.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession

from metering_analytics.bronze.events import (
    capture_file_stats,
    capture_to_bronze,
    first_copy_of_each_record,
    may_repeat_records,
)
from metering_analytics.bronze.files import (
    AUDIT_COLUMNS,
    CAPTURE_FILES,
    READ_COLUMNS,
    audit_files,
    merge_file_columns,
    read_damaged_files,
)
from metering_analytics.config import PipelineConfig
from metering_analytics.io.lakehouse import Lakehouse
from metering_analytics.io.streams import drain
from metering_analytics.schemas import BRONZE_CAPTURE_FILES_SCHEMA, BRONZE_EVENTS_SCHEMA
from metering_analytics.sources.capture import read_capture_file_stream, read_capture_stream

BRONZE_EVENTS = ("bronze", "events")


@dataclass
class BronzeResult:
    batches: int = 0
    records_read: int = 0
    records_added: int = 0
    files_audited: int = 0
    damaged_files: list[dict] = field(default_factory=list)  # every damaged file seen so far


def rows_inserted_since(spark: SparkSession, lakehouse: Lakehouse, version: int) -> int:
    """Rows the commits after `version` inserted (a MERGE that inserts nothing commits nothing)."""
    history = lakehouse.delta_table(spark, *BRONZE_EVENTS).history().where(f"version > {version}")
    return sum(int((row["operationMetrics"] or {}).get("numTargetRowsInserted", 0))
               for row in history.select("operationMetrics").collect())


def table_version(spark: SparkSession, lakehouse: Lakehouse) -> int:
    return lakehouse.delta_table(spark, *BRONZE_EVENTS).history(1).first()["version"]


def merge_new_records(batch: DataFrame, lakehouse: Lakehouse, sequence_range: tuple[int, int] | None = None) -> None:
    """Insert the batch's records that bronze does not hold yet.

    `sequence_range` (the batch's lowest and highest sequence number) limits the search to bronze files
    whose sequence numbers overlap it: a condition on the target alone lets Delta skip files by their
    statistics. Null-safe on partition_id so that records from unrecognised paths are deduplicated by file.
    """
    condition = "t.partition_id <=> s.partition_id AND (t.partition_id IS NOT NULL OR t.source_file = s.source_file)"
    if sequence_range is not None:
        low, high = (int(v) for v in sequence_range)
        condition += f" AND t.sequence_number BETWEEN {low} AND {high}"
    lakehouse.merge_insert_new(batch, *BRONZE_EVENTS, keys=("sequence_number",), extra_condition=condition)


def _sequence_range(file_stats: list[dict]) -> tuple[int, int] | None:
    lows = [f["min_sequence_number"] for f in file_stats if f["min_sequence_number"] is not None]
    highs = [f["max_sequence_number"] for f in file_stats if f["max_sequence_number"] is not None]
    return (min(lows), max(highs)) if lows else None


def run_bronze(spark: SparkSession, config: PipelineConfig, *, checkpoint: str | None = None,
               use_auto_loader: bool | None = None) -> BronzeResult:
    lakehouse = config.lakehouse
    lakehouse.ensure_table(spark, *BRONZE_EVENTS, BRONZE_EVENTS_SCHEMA)
    lakehouse.ensure_table(spark, *CAPTURE_FILES, BRONZE_CAPTURE_FILES_SCHEMA)
    result = BronzeResult()
    source = config.source

    def write_batch(batch: DataFrame, _batch_id: int) -> None:
        capture = batch.persist()  # the batch's files are read once, for the summary and the records
        try:
            per_file = capture_file_stats(capture, source.capture_path_patterns).localCheckpoint()
            stats = [row.asDict() for row in per_file.collect()]  # one row per file: a few hundred
            records = capture_to_bronze(capture, per_file)
            if may_repeat_records(stats):
                records = first_copy_of_each_record(records)
            if any(f["records_read"] for f in stats):
                merge_new_records(records, lakehouse, _sequence_range(stats))
            merge_file_columns(per_file, lakehouse, READ_COLUMNS)
            # Counted here: the stream's own input metric counts a batch once per action on it.
            result.records_read += sum(f["records_read"] for f in stats)
        finally:
            capture.unpersist()
        result.batches += 1

    def audit_batch(files: DataFrame, _batch_id: int) -> None:
        merge_file_columns(audit_files(files), lakehouse, AUDIT_COLUMNS)

    files_checkpoint = f"{checkpoint.rstrip('/')}_files" if checkpoint else lakehouse.checkpoint("bronze_capture_files")
    checkpoint = checkpoint or lakehouse.checkpoint("bronze_events")
    stream = read_capture_stream(spark, source.capture_path, max_files_per_trigger=source.max_files_per_trigger,
                                 use_auto_loader=use_auto_loader)
    version = table_version(spark, lakehouse)
    drain(stream, write_batch, checkpoint)
    result.records_added = rows_inserted_since(spark, lakehouse, version)

    # Whole files are larger than their records: fewer per batch.
    files = read_capture_file_stream(spark, source.capture_path,
                                     max_files_per_trigger=max(1, source.max_files_per_trigger // 4),
                                     use_auto_loader=use_auto_loader)
    result.files_audited = drain(files, audit_batch, files_checkpoint)
    result.damaged_files = read_damaged_files(spark, lakehouse)
    return result
