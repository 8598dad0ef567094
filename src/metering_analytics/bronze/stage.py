"""Bronze stage: Capture files -> bronze.events, incrementally and exactly once.

The stream's checkpoint remembers which files were read; the MERGE on (partition id, sequence number)
makes a file delivered twice, or a batch replayed after a crash, add nothing. A second stream over the
same files fills bronze.capture_files, which names every damaged file and what was kept from it.

Each batch's files are summarised per file first (a pass over the record keys only); the summary parses
the paths once per file, proves most batches free of repeated records (so they skip de-duplication), and
gives each file's range of positions. Those ranges are recorded in bronze.capture_files before the
records are written: a batch whose ranges meet no recorded range holds no record bronze has, and is
appended (io.key_ranges); otherwise (a replay, a file delivered twice) the MERGE decides, its search of
bronze bounded to the batch's sequence-number range. Either way a batch costs what its own records
cost, not what the table holds.
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
    mounted_folder,
    read_damaged_files,
)
from metering_analytics.config import PipelineConfig
from metering_analytics.io.key_ranges import overlapping, span
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
    """Rows the commits after `version` added: appended, or inserted by a MERGE (which commits nothing
    when it inserts nothing)."""
    history = lakehouse.delta_table(spark, *BRONZE_EVENTS).history().where(f"version > {version}")
    added = 0
    for row in history.select("operation", "operationMetrics").collect():
        metrics = row["operationMetrics"] or {}
        added += int(metrics.get("numOutputRows" if row["operation"] == "WRITE" else "numTargetRowsInserted", 0))
    return added


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


def run_bronze(spark: SparkSession, config: PipelineConfig, *, checkpoint: str | None = None,
               use_auto_loader: bool | None = None) -> BronzeResult:
    lakehouse = config.lakehouse
    lakehouse.ensure_table(spark, *BRONZE_EVENTS, BRONZE_EVENTS_SCHEMA)
    lakehouse.ensure_table(spark, *CAPTURE_FILES, BRONZE_CAPTURE_FILES_SCHEMA)
    result = BronzeResult()
    source = config.source

    def write_batch(batch: DataFrame, _batch_id: int) -> None:
        # Reading the files twice (keys, then records) costs less than caching a batch's bodies.
        per_file = capture_file_stats(batch, source.capture_path_patterns).localCheckpoint()
        stats = [row.asDict() for row in per_file.collect()]  # one row per file: a few hundred
        known = overlapping(stats, lakehouse.read(spark, *CAPTURE_FILES))
        merge_file_columns(per_file, lakehouse, READ_COLUMNS)  # the ranges, before their records
        records = capture_to_bronze(batch, per_file)
        if may_repeat_records(stats):
            records = first_copy_of_each_record(records)
        if any(f["records_read"] for f in stats):
            if known:
                merge_new_records(records, lakehouse, span(stats))
            else:
                lakehouse.append(records, *BRONZE_EVENTS)
        # Counted here: the stream's own input metric counts a batch once per action on it.
        result.records_read += sum(f["records_read"] for f in stats)
        result.batches += 1

    def audit_batch(files: DataFrame, _batch_id: int) -> None:
        # Kept once: the append-or-merge decision and the write both read the scans.
        merge_file_columns(audit_files(files).localCheckpoint(), lakehouse, AUDIT_COLUMNS)

    files_checkpoint = f"{checkpoint.rstrip('/')}_files" if checkpoint else lakehouse.checkpoint("bronze_capture_files")
    checkpoint = checkpoint or lakehouse.checkpoint("bronze_events")
    stream = read_capture_stream(spark, source.capture_path, max_files_per_trigger=source.max_files_per_trigger,
                                 use_auto_loader=use_auto_loader)
    version = table_version(spark, lakehouse)
    drain(stream, write_batch, checkpoint)
    result.records_added = rows_inserted_since(spark, lakehouse, version)

    # Files on a mounted file system are scanned in place, reading their framing only: a batch costs
    # little, so it can name many files. Others are read whole, and whole files are larger than their
    # records: fewer per batch.
    in_place = mounted_folder(source.capture_path)
    per_audit = source.max_files_per_trigger * 10 if in_place else max(1, source.max_files_per_trigger // 4)
    files = read_capture_file_stream(spark, source.capture_path, max_files_per_trigger=per_audit,
                                     use_auto_loader=use_auto_loader, with_content=not in_place)
    result.files_audited = drain(files, audit_batch, files_checkpoint)
    result.damaged_files = read_damaged_files(spark, lakehouse)
    return result
