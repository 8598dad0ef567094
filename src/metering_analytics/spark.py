"""The one way to get a SparkSession: Databricks' active session, or a local Delta + Avro session."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from pyspark.sql import SparkSession

SPARK_VERSION = "4.1.1"
DELTA_VERSION = "4.1.0"
SCALA_BINARY = "2.13"
CONNECTOR_PACKAGES = (
    f"io.delta:delta-spark_{SCALA_BINARY}:{DELTA_VERSION}",
    f"org.apache.spark:spark-avro_{SCALA_BINARY}:{SPARK_VERSION}",
)

_LOGGING_JARS = (
    "org.apache.logging.log4j:log4j-core",
    "org.apache.logging.log4j:log4j-api",
    "org.apache.logging.log4j:log4j-slf4j2-impl",
    "org.slf4j:slf4j-api",
)

_PROJECT_ROOT = Path(__file__).resolve().parents[2]


def on_databricks() -> bool:
    return "DATABRICKS_RUNTIME_VERSION" in os.environ


def _ivy_settings() -> Path | None:
    for candidate in (_PROJECT_ROOT / "conf" / "ivysettings.xml", Path.cwd() / "conf" / "ivysettings.xml"):
        if candidate.exists():
            return candidate
    return None


def jar_cache_dir() -> Path:
    """Where the connector jars are cached between runs (resolved once from Maven Central)."""
    return Path(os.environ.get("METERING_JAR_CACHE", _PROJECT_ROOT / ".cache" / "ivy")).resolve()


def get_spark(app_name: str = "metering-analytics", *, shuffle_partitions: int = 4,
              warehouse_dir: str | Path | None = None) -> SparkSession:
    """Return the active Databricks session, or build a quiet local session with Delta and Avro."""
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if on_databricks():
        return SparkSession.builder.getOrCreate()

    # Python workers (applyInPandas) must run this interpreter, with its pandas and models installed,
    # not whichever `python3` is first on the PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(os.environ.get("METERING_SPARK_MASTER", "local[*]"))
        .appName(app_name)
        .config("spark.jars.packages", ",".join(CONNECTOR_PACKAGES))
        .config("spark.jars.ivy", str(jar_cache_dir()))
        # Delta's Unity Catalog client drags in its own logging jars; Spark already ships them.
        .config("spark.jars.excludes", ",".join(_LOGGING_JARS))
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.default.parallelism", str(max(2, shuffle_partitions)))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", os.environ.get("METERING_DRIVER_MEMORY", "4g"))
        # Delta's log replay defaults to 50 partitions: far too many for a laptop-sized table.
        .config("spark.databricks.delta.snapshotPartitions", "2")
        .config("spark.databricks.delta.schema.autoMerge.enabled", "false")
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
        .config("spark.driver.extraJavaOptions", "-Dlog4j2.level=WARN")
    )
    settings = _ivy_settings()
    if settings is not None:
        builder = builder.config("spark.jars.ivySettings", str(settings))
    if warehouse_dir is not None:
        builder = builder.config("spark.sql.warehouse.dir", str(Path(warehouse_dir).resolve()))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
