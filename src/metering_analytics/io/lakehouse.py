"""Delta tables addressed by (layer, table): a local folder here, Unity Catalog names on Databricks.

Locally every table is `<root>/<layer>/<table>/` and is registered in the session catalog as
`<layer>.<table>`, so the same `SELECT ... FROM gold.<table>` runs unchanged on both sides.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

LAYERS = ("bronze", "silver", "gold")
CHANGE_FEED = "delta.enableChangeDataFeed"
# Rows per file of a table written in time order: a small time slice then touches few, small files.
SORTED_FILE_ROWS = 100_000
# (Spark application, table name) -> folder it is registered on, locally.
_REGISTERED: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Lakehouse:
    root: str | None = None  # local folder; None means Unity Catalog (Databricks)
    catalog: str | None = None
    schemas: dict[str, str] = field(default_factory=lambda: {layer: layer for layer in LAYERS})

    @property
    def is_local(self) -> bool:
        return self.root is not None

    def schema(self, layer: str) -> str:
        return self.schemas.get(layer, layer)

    def table_name(self, layer: str, table: str) -> str:
        qualified = f"{self.schema(layer)}.{table}"
        return f"{self.catalog}.{qualified}" if self.catalog else qualified

    def path(self, layer: str, table: str) -> str:
        if self.root is None:
            raise ValueError("a Unity Catalog lakehouse has no table paths")
        return str(Path(self.root, layer, table).resolve())

    def checkpoint(self, name: str) -> str:
        if self.root is None:
            raise ValueError("set the checkpoint location explicitly on Databricks")
        return str(Path(self.root, "_checkpoints", name).resolve())

    # -- reading ---------------------------------------------------------------------------------
    def exists(self, spark: SparkSession, layer: str, table: str) -> bool:
        if self.is_local:
            return DeltaTable.isDeltaTable(spark, self.path(layer, table))
        return spark.catalog.tableExists(self.table_name(layer, table))

    def read(self, spark: SparkSession, layer: str, table: str, version: int | None = None) -> DataFrame:
        """The table as it is now, or as it was at Delta `version` (time travel)."""
        reader = spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", str(version))
        if self.is_local:
            return reader.load(self.path(layer, table))
        return reader.table(self.table_name(layer, table))

    def read_changes(self, spark: SparkSession, layer: str, table: str, first_version: int,
                     last_version: int) -> DataFrame:
        """The Change Data Feed of commits first_version..last_version (inclusive): every inserted,
        deleted and updated row with `_change_type`. Needs delta.enableChangeDataFeed over that range."""
        reader = (spark.read.format("delta").option("readChangeFeed", "true")
                  .option("startingVersion", str(first_version)).option("endingVersion", str(last_version)))
        if self.is_local:
            return reader.load(self.path(layer, table))
        return reader.table(self.table_name(layer, table))

    def version(self, spark: SparkSession, layer: str, table: str) -> int | None:
        """The table's latest Delta version; None when it does not exist."""
        if not self.exists(spark, layer, table):
            return None
        return self.delta_table(spark, layer, table).history(1).select("version").first()[0]

    def read_stream(self, spark: SparkSession, layer: str, table: str, max_files_per_trigger: int = 1000) -> DataFrame:
        """The table's new rows as a stream (Delta source: each commit's added files)."""
        reader = spark.readStream.format("delta").option("maxFilesPerTrigger", str(max_files_per_trigger))
        if self.is_local:
            return reader.load(self.path(layer, table))
        return reader.table(self.table_name(layer, table))

    def read_or_empty(self, spark: SparkSession, layer: str, table: str, schema: StructType) -> DataFrame:
        if self.exists(spark, layer, table):
            return self.read(spark, layer, table)
        return spark.createDataFrame([], schema)

    def delta_table(self, spark: SparkSession, layer: str, table: str) -> DeltaTable:
        if self.is_local:
            return DeltaTable.forPath(spark, self.path(layer, table))
        return DeltaTable.forName(spark, self.table_name(layer, table))

    # -- writing ---------------------------------------------------------------------------------
    def ensure_table(self, spark: SparkSession, layer: str, table: str, schema: StructType,
                     partition_by: Sequence[str] = (), change_feed: bool = False) -> None:
        """Create an empty Delta table with the given schema if it does not exist yet.

        change_feed: record the table's row changes (Delta Change Data Feed), for incremental readers;
        also switched on for an existing table that was created without it.
        """
        # A metadata-only commit: no Spark job, no data files.
        builder = DeltaTable.createIfNotExists(spark).addColumns(schema)
        if partition_by:
            builder = builder.partitionedBy(*partition_by)
        if change_feed:
            builder = builder.property(CHANGE_FEED, "true")
        if self.is_local:
            builder.location(self.path(layer, table)).execute()
        else:
            builder.tableName(self.table_name(layer, table)).execute()
        self.register(spark, layer, table)
        if change_feed:
            self.enable_change_feed(spark, layer, table)

    def enable_change_feed(self, spark: SparkSession, layer: str, table: str) -> None:
        """Switch on the table's Change Data Feed if it is off (one metadata commit, once)."""
        properties = self.delta_table(spark, layer, table).detail().select("properties").first()[0] or {}
        if properties.get(CHANGE_FEED) == "true":
            return
        target = f"delta.`{self.path(layer, table)}`" if self.is_local else self.table_name(layer, table)
        spark.sql(f"ALTER TABLE {target} SET TBLPROPERTIES ('{CHANGE_FEED}' = 'true')")

    def overwrite(self, df: DataFrame, layer: str, table: str, partition_by: Sequence[str] = (),
                  sort_by: str | None = None) -> None:
        """Replace a table's content atomically (one Delta commit); schema changes are allowed.

        `sort_by`: write the rows in that column's order, SORTED_FILE_ROWS per file, so a filter on a
        range of it (an incremental refresh of recent hours) reads and rewrites only the files of that
        range (Delta's per-file min/max statistics)."""
        if sort_by is not None:
            df = df.repartitionByRange(F.col(sort_by)).sortWithinPartitions(sort_by)
        writer = df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
        if sort_by is not None:
            writer = writer.option("maxRecordsPerFile", SORTED_FILE_ROWS)
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        self._save(writer, layer, table)
        self.register(df.sparkSession, layer, table)

    def replace_if_changed(self, df: DataFrame, layer: str, table: str) -> bool:
        """overwrite, unless the table already holds exactly these rows; returns whether it wrote."""
        df = df.localCheckpoint()  # compared, then maybe written: computed once
        if self.exists(df.sparkSession, layer, table) and same_rows(self.read(df.sparkSession, layer, table), df):
            return False
        self.overwrite(df, layer, table)
        return True

    def append(self, df: DataFrame, layer: str, table: str) -> None:
        """Add rows (one Delta commit). Only for rows known to be new: see io.key_ranges."""
        self._save(df.write.format("delta").mode("append"), layer, table)

    def merge_insert_new(self, df: DataFrame, layer: str, table: str, keys: Iterable[str],
                         extra_condition: str | None = None) -> None:
        """Insert the rows whose key is not in the table yet: replaying the same input adds nothing."""
        spark = df.sparkSession
        condition = " AND ".join(f"t.`{k}` = s.`{k}`" for k in keys)
        if extra_condition:
            condition = f"{condition} AND {extra_condition}"
        (
            self.delta_table(spark, layer, table).alias("t")
            .merge(df.alias("s"), condition)
            .whenNotMatchedInsertAll()
            .execute()
        )

    def _save(self, writer, layer: str, table: str) -> None:
        if self.is_local:
            writer.save(self.path(layer, table))
        else:
            writer.saveAsTable(self.table_name(layer, table))

    # -- catalog ---------------------------------------------------------------------------------
    def register(self, spark: SparkSession, layer: str, table: str) -> None:
        """Make `<layer>.<table>` resolvable in SQL (locally: an external table on the folder)."""
        if not self.is_local:
            return
        name, path = self.table_name(layer, table), self.path(layer, table)
        key = (spark.sparkContext.applicationId, name)
        if _REGISTERED.get(key) == path and spark.catalog.tableExists(name):
            return
        spark.sql(f"CREATE DATABASE IF NOT EXISTS `{self.schema(layer)}`")
        # Another lakehouse in this session may hold the name: the latest one registered wins.
        spark.sql(f"DROP TABLE IF EXISTS {name}")  # external table: the data stays
        spark.sql(f"CREATE TABLE {name} USING DELTA LOCATION '{path}'")
        _REGISTERED[key] = path

    def register_all(self, spark: SparkSession) -> list[str]:
        """Register every Delta table found under the local root; returns their names."""
        if not self.is_local:
            return []
        names = []
        for layer in LAYERS:
            layer_dir = Path(self.root, layer)
            if not layer_dir.is_dir():
                continue
            for table_dir in sorted(p for p in layer_dir.iterdir() if (p / "_delta_log").is_dir()):
                self.register(spark, layer, table_dir.name)
                names.append(self.table_name(layer, table_dir.name))
        return names

    def row_counts(self, spark: SparkSession) -> dict[str, int]:
        counts = {}
        for name in self.register_all(spark):
            counts[name] = spark.table(name).count()
        return counts


def with_columns_of(df: DataFrame, schema: StructType) -> DataFrame:
    """Select and cast `df` to exactly the columns of `schema`, in order."""
    return df.select([F.col(f.name).cast(f.dataType).alias(f.name) for f in schema.fields])


def same_rows(a: DataFrame, b: DataFrame) -> bool:
    """The same multiset of rows (columns matched by name; no map columns)."""
    b = b.select(*a.columns)
    return a.exceptAll(b).isEmpty() and b.exceptAll(a).isEmpty()
