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


def last_commit_metrics(spark: SparkSession, lakehouse: Lakehouse, layer: str, table: str) -> dict[str, str]:
    history = lakehouse.delta_table(spark, layer, table).history(1).select("operation", "operationMetrics").first()
    return dict(history["operationMetrics"] or {}) if history and history["operation"] == "MERGE" else {}


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
        bronze = first_copy_of_each_record(capture_to_bronze(batch, config.source.capture_path_patterns))
        merge_new_records(bronze, lakehouse)
        # The MERGE's own metrics: counting the batch separately would read every file twice.
        metrics = last_commit_metrics(spark, lakehouse, *BRONZE_EVENTS)
        result.batches += 1
        result.records_read += int(metrics.get("numSourceRows", 0))
        result.records_added += int(metrics.get("numTargetRowsInserted", 0))

    stream = read_capture_stream(
        spark,
        config.source.capture_path,
        max_files_per_trigger=config.source.max_files_per_trigger,
        use_auto_loader=use_auto_loader,
    )
    drain(stream, write_batch, checkpoint or lakehouse.checkpoint("bronze_events"))
    return result
