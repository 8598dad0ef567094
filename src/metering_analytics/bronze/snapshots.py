"""Snapshot stage: accelerator state files -> bronze.accelerator_snapshots -> silver snapshot tables.

A snapshot file is rewritten in place as the accelerator runs; each distinct content is kept once.
"""
from __future__ import annotations

from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from metering_analytics.config import PipelineConfig
from metering_analytics.io.lakehouse import with_columns_of
from metering_analytics.schemas import (
    BRONZE_SNAPSHOTS_SCHEMA,
    SILVER_METER_SNAPSHOTS_SCHEMA,
    SILVER_SNAPSHOT_USAGE_TO_BE_REPORTED_SCHEMA,
)
from metering_analytics.silver.snapshots import meter_snapshots, usage_to_be_reported
from metering_analytics.sources.snapshots import read_snapshot_files


def run_snapshots(spark: SparkSession, config: PipelineConfig) -> dict[str, int]:
    lakehouse = config.lakehouse
    lakehouse.ensure_table(spark, "bronze", "accelerator_snapshots", BRONZE_SNAPSHOTS_SCHEMA)
    lakehouse.ensure_table(spark, "silver", "meter_snapshots", SILVER_METER_SNAPSHOTS_SCHEMA)
    lakehouse.ensure_table(spark, "silver", "snapshot_usage_to_be_reported", SILVER_SNAPSHOT_USAGE_TO_BE_REPORTED_SCHEMA)
    path = config.source.snapshot_path
    if path and ("://" in path or Path(path).is_dir()):
        files = read_snapshot_files(spark, path)
        bronze = with_columns_of(files.select(
            "snapshot_file",
            F.regexp_extract("snapshot_file", r"([^/]+)/[^/]+$", 1).alias("partition_id"),
            F.sha2("content", 256).alias("content_sha256"),
            "content", "file_modified_at",
            F.current_timestamp().alias("ingested_at"),
        ), BRONZE_SNAPSHOTS_SCHEMA)
        lakehouse.merge_insert_new(bronze, "bronze", "accelerator_snapshots",
                                   keys=("snapshot_file", "content_sha256"))
    snapshots = lakehouse.read(spark, "bronze", "accelerator_snapshots")
    # Small (one document per partition and version): rebuilt whole, so parsing fixes apply to history.
    lakehouse.overwrite(meter_snapshots(snapshots), "silver", "meter_snapshots")
    lakehouse.overwrite(usage_to_be_reported(snapshots), "silver", "snapshot_usage_to_be_reported")
    return {
        "snapshots": snapshots.count(),
        "meters": lakehouse.read(spark, "silver", "meter_snapshots").count(),
    }
