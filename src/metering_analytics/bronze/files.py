"""bronze.capture_files: every Capture file seen, whether it is intact, and what was read from it.

Spark's Avro reader skips what it cannot read (`ignoreCorruptFiles`), so a damaged file never stops a
run; this table says which file it was and how much was lost. Two writers fill it, each with its own
columns, both MERGE on `source_file` so a replayed batch changes nothing:
- the bronze stream records `records_read`, the records the reader returned per file;
- a second stream over the same folder (binaryFile) walks each new file's Avro framing
  (`sources.avro_container`) and records the status, the problem and the records the intact blocks hold.
  Where the files are on a local or FUSE-mounted file system (a folder here, a Unity Catalog volume on
  Databricks) the walk opens the file and seeks from block header to block header, and the stream does
  not read the contents at all; elsewhere (an abfss:// URI) the stream hands it each file's bytes.
A file is damaged when its framing is broken or the reader returned fewer records than the blocks hold.
"""
from __future__ import annotations

import os
import re

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType

from metering_analytics.io.lakehouse import Lakehouse
from metering_analytics.schemas import BRONZE_CAPTURE_FILES_SCHEMA
from metering_analytics.sources.avro_container import CORRUPT, ContainerScan, scan_avro_container, scan_avro_file

CAPTURE_FILES = ("bronze", "capture_files")

_SCAN_SCHEMA = StructType([
    StructField("status", StringType()),
    StructField("problem", StringType()),
    StructField("blocks", LongType()),
    StructField("records", LongType()),
])
READ_COLUMNS = ("records_read", "partition_id", "min_sequence_number", "max_sequence_number")
AUDIT_COLUMNS = ("file_size", "file_modified_at", "container_status", "container_problem", "avro_blocks",
                  "avro_records", "audited_at")


def local_file(path: str) -> str | None:
    """The POSIX path of a Spark file path on a local or FUSE-mounted file system, else None."""
    if path.startswith("file:"):
        return "/" + path.removeprefix("file:").lstrip("/")
    if path.startswith("dbfs:/Volumes/"):
        return path.removeprefix("dbfs:")
    if path.startswith("/"):
        return path
    return None


def mounted_folder(path: str) -> bool:
    """True when `path` (as given to Spark) is a folder this process can open itself."""
    has_scheme = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", path) is not None
    local = local_file(path) if has_scheme else os.path.abspath(path)
    return local is not None and os.path.isdir(local)


def _scan_one(path: str, content: bytes | None) -> ContainerScan:
    if content is not None:
        return scan_avro_container(bytes(content))
    local = local_file(path)
    if local is None:
        raise ValueError(f"{path} is not on a mounted file system: read the audit stream with contents")
    return scan_avro_file(local)


@F.pandas_udf(_SCAN_SCHEMA)
def _scan(paths: pd.Series, contents: pd.Series) -> pd.DataFrame:
    scans = [_scan_one(p, c) for p, c in zip(paths, contents)]
    return pd.DataFrame({
        "status": [s.status for s in scans],
        "problem": [s.problem for s in scans],
        "blocks": [s.blocks for s in scans],
        "records": [s.records for s in scans],
    })


def audit_files(files: DataFrame) -> DataFrame:
    """binaryFile rows (path, modificationTime, length, content) -> the audit columns of capture_files.

    A null `content` (not read) means: open the file at `path` (local_file)."""
    scanned = files.select("path", "modificationTime", "length", _scan(F.col("path"), F.col("content")).alias("scan"))
    return scanned.select(
        F.col("path").alias("source_file"),
        F.col("length").alias("file_size"),
        F.col("modificationTime").alias("file_modified_at"),
        F.col("scan.status").alias("container_status"),
        F.col("scan.problem").alias("container_problem"),
        F.col("scan.blocks").alias("avro_blocks"),
        F.col("scan.records").alias("avro_records"),
        F.current_timestamp().alias("audited_at"),
    )


def merge_file_columns(rows: DataFrame, lakehouse: Lakehouse, columns: tuple[str, ...]) -> None:
    """Set `columns` of each file's row (inserting the row if new), leaving the other writer's columns alone.

    Files that have no row yet (the usual case for the bronze stream, which reads a file before the
    framing check does) are appended, which costs one write instead of a MERGE's joins."""
    spark = rows.sparkSession
    types = {f.name: f.dataType for f in BRONZE_CAPTURE_FILES_SCHEMA.fields}
    shaped = rows.select([F.col(c).cast(types[c]).alias(c) for c in ("source_file", *columns)])
    table = lakehouse.read(spark, *CAPTURE_FILES)
    if table.join(F.broadcast(shaped.select("source_file")), "source_file", "left_semi").isEmpty():
        lakehouse.append(shaped.select([
            F.col(f.name) if f.name in shaped.columns else F.lit(None).cast(f.dataType).alias(f.name)
            for f in BRONZE_CAPTURE_FILES_SCHEMA.fields
        ]), *CAPTURE_FILES)
        return
    (
        lakehouse.delta_table(spark, *CAPTURE_FILES).alias("t")
        .merge(shaped.alias("s"), "t.source_file = s.source_file")
        .whenMatchedUpdate(set={c: f"s.`{c}`" for c in columns})
        .whenNotMatchedInsert(values={c: f"s.`{c}`" for c in ("source_file", *columns)})
        .execute()
    )


def damaged_files(capture_files: DataFrame) -> DataFrame:
    """Files whose framing is broken, or from which the reader got fewer records than the intact blocks hold."""
    unreadable = F.greatest(F.col("avro_records") - F.coalesce(F.col("records_read"), F.lit(0)), F.lit(0))
    return capture_files.where(
        (F.col("container_status") == CORRUPT) | (unreadable > 0)
    ).select(
        "source_file", "container_status",
        F.coalesce(
            F.col("container_problem"),
            F.format_string("%d of the %d records in intact blocks could not be decoded", unreadable,
                            F.col("avro_records")),
        ).alias("problem"),
        F.coalesce(F.col("records_read"), F.lit(0)).alias("records_kept"),
    )


def read_damaged_files(spark: SparkSession, lakehouse: Lakehouse) -> list[dict]:
    if not lakehouse.exists(spark, *CAPTURE_FILES):
        return []
    rows = damaged_files(lakehouse.read(spark, *CAPTURE_FILES)).orderBy("source_file").collect()
    return [row.asDict() for row in rows]

