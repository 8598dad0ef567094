"""Incremental reader of Event Hubs Capture files.

One code path, two readers: Auto Loader (`cloudFiles`) on Databricks, Spark's file stream source
locally. Both yield the Capture record plus the file it came from; everything after is shared.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import DataStreamReader
from pyspark.sql.types import BinaryType, LongType, StringType, StructField, StructType, TimestampType

from metering_analytics.schemas import CAPTURE_SPARK_SCHEMA
from metering_analytics.spark import on_databricks

# Spark's fixed binaryFile schema (a stream must be told it).
BINARY_FILE_SCHEMA = StructType([
    StructField("path", StringType(), False),
    StructField("modificationTime", TimestampType(), False),
    StructField("length", LongType(), False),
    StructField("content", BinaryType(), True),
])


def _capture_files_stream(spark: SparkSession, file_format: str, schema: StructType, *, max_files_per_trigger: int,
                          use_auto_loader: bool | None) -> DataStreamReader:
    """A stream over every new `*.avro` file below the Capture root, read as `file_format`."""
    use_auto_loader = on_databricks() if use_auto_loader is None else use_auto_loader
    if use_auto_loader:
        reader = (
            spark.readStream.format("cloudFiles")
            .option("cloudFiles.format", file_format)
            .option("cloudFiles.maxFilesPerTrigger", str(max_files_per_trigger))
            .option("cloudFiles.includeExistingFiles", "true")
        )
    else:
        reader = (
            spark.readStream.format(file_format)
            .option("maxFilesPerTrigger", str(max_files_per_trigger))
            # The partition id is parsed from the path ourselves: Hive-style folders must not
            # become columns, and the flat layout has none.
            .option("recursiveFileLookup", "true")
        )
    return reader.schema(schema).option("pathGlobFilter", "*.avro")


def read_capture_stream(spark: SparkSession, capture_path: str, *, max_files_per_trigger: int = 1000,
                        use_auto_loader: bool | None = None) -> DataFrame:
    """Stream every `*.avro` file below `capture_path` (any depth, both Capture path layouts)."""
    raw = (
        _capture_files_stream(spark, "avro", CAPTURE_SPARK_SCHEMA, max_files_per_trigger=max_files_per_trigger,
                              use_auto_loader=use_auto_loader)
        # A damaged file must not stop the run: the reader keeps the records before the damage and
        # skips the rest; bronze.capture_files (read_capture_file_stream) reports the file by name.
        .option("ignoreCorruptFiles", "true")
        .load(capture_path)
    )
    return raw.select("*", F.col("_metadata.file_path").alias("source_file"))


def read_capture_file_stream(spark: SparkSession, capture_path: str, *, max_files_per_trigger: int = 1000,
                             use_auto_loader: bool | None = None, with_content: bool = True) -> DataFrame:
    """Stream the same `*.avro` files as whole files (path, modificationTime, length, content).

    with_content=False leaves `content` null and unread (binaryFile reads a file's bytes only when the
    query uses them): for readers that open the files themselves."""
    files = _capture_files_stream(spark, "binaryFile", BINARY_FILE_SCHEMA, max_files_per_trigger=max_files_per_trigger,
                                  use_auto_loader=use_auto_loader).load(capture_path)
    content = F.col("content") if with_content else F.lit(None).cast("binary").alias("content")
    # The Avro reader names a file by its `_metadata.file_path`; binaryFile's `path` may be spelled
    # differently (file:/ vs file:///), so both use the metadata column.
    return files.select(F.col("_metadata.file_path").alias("path"), "modificationTime", "length", content)
