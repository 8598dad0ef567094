"""Bronze stage: Capture files -> bronze.events, incrementally and exactly once.

The stream's checkpoint remembers which files were read; the MERGE on (partition id, sequence number)
makes a file delivered twice, or a batch replayed after a crash, add nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession

from metering_analytics.bronze.events import capture_to_bronze, first_copy_of_each_record
from metering_analytics.config import PipelineConfig
from metering_analytics.io.lakehouse import Lakehouse
from metering_analytics.io.streams import drain
from metering_analytics.schemas import BRONZE_EVENTS_SCHEMA
from metering_analytics.sources.capture import read_capture_stream

BRONZE_EVENTS = ("bronze", "events")


@dataclass
class BronzeResult:
    batches: int = 0
    records_read: int = 0
    records_added: int = 0


def rows_inserted_since(spark: SparkSession, lakehouse: Lakehouse, version: int) -> int:
    """Rows the commits after `version` inserted (a MERGE that inserts nothing commits nothing)."""
    history = lakehouse.delta_table(spark, *BRONZE_EVENTS).history().where(f"version > {version}")
    return sum(int((row["operationMetrics"] or {}).get("numTargetRowsInserted", 0))
               for row in history.select("operationMetrics").collect())


def table_version(spark: SparkSession, lakehouse: Lakehouse) -> int:
    return lakehouse.delta_table(spark, *BRONZE_EVENTS).history(1).first()["version"]


def merge_new_records(batch: DataFrame, lakehouse: Lakehouse) -> None:
    # Null-safe on partition_id so that records from unrecognised paths are deduplicated by file.
    lakehouse.merge_insert_new(
        batch,
        *BRONZE_EVENTS,
        keys=("sequence_number",),
        extra_condition=(
            "t.partition_id <=> s.partition_id "
            "AND (t.partition_id IS NOT NULL OR t.source_file = s.source_file)"
        ),
    )


def run_bronze(spark: SparkSession, config: PipelineConfig, *, checkpoint: str | None = None,
               use_auto_loader: bool | None = None) -> BronzeResult:
    lakehouse = config.lakehouse
    lakehouse.ensure_table(spark, *BRONZE_EVENTS, BRONZE_EVENTS_SCHEMA)
    result = BronzeResult()

    def write_batch(batch: DataFrame, _batch_id: int) -> None:
        merge_new_records(first_copy_of_each_record(capture_to_bronze(batch, config.source.capture_path_patterns)),
                          lakehouse)
        result.batches += 1

    stream = read_capture_stream(
        spark,
        config.source.capture_path,
        max_files_per_trigger=config.source.max_files_per_trigger,
        use_auto_loader=use_auto_loader,
    )
    version = table_version(spark, lakehouse)
    result.records_read = drain(stream, write_batch, checkpoint or lakehouse.checkpoint("bronze_events"))
    result.records_added = rows_inserted_since(spark, lakehouse, version)
    return result
