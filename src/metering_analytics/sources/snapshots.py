"""Reader of the accelerator's state snapshots: `{partitionId}/latest.json.gz` (or plain `.json`)."""
from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F


def read_snapshot_files(spark: SparkSession, snapshot_path: str) -> DataFrame:
    """One row per snapshot file: its path, modification time and decompressed JSON text.

    Snapshots are rewritten in place, so they are read as a batch and told apart by content hash.
    """
    files = (
        spark.read.option("recursiveFileLookup", "true")
        .option("pathGlobFilter", "{*.json,*.json.gz}")
        .text(snapshot_path, wholetext=True)
    )
    return files.select(
        F.col("_metadata.file_path").alias("snapshot_file"),
        F.col("_metadata.file_modification_time").alias("file_modified_at"),
        F.regexp_replace("value", "^\ufeff", "").alias("content"),
    )
