"""Replacing a recomputed slice of a gold table: only the rows that differ change, and a MERGE bounded
by the table's time reads and rewrites only the files of the changed range."""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

from chispa import assert_df_equality
from pyspark.sql import functions as F

from metering_analytics.incremental.changes import replace_rows
from metering_analytics.io import lakehouse as lakehouse_module
from metering_analytics.io.lakehouse import Lakehouse

SCHEMA = "subscription_key string, effective_start_time timestamp, quantity double"
START = datetime(2026, 1, 1)


def _hour(i: int) -> datetime:
    return START + timedelta(hours=i)


def _sorted_table(spark, tmp_path, monkeypatch, rows):
    monkeypatch.setattr(lakehouse_module, "SORTED_FILE_ROWS", 10)
    lakehouse = Lakehouse(root=str(tmp_path / "lakehouse"))
    lakehouse.overwrite(spark.createDataFrame(rows, SCHEMA), "gold", "usage", sort_by="effective_start_time")
    lakehouse.enable_change_feed(spark, "gold", "usage")
    return lakehouse


def _last_merge_metrics(spark, lakehouse):
    history = lakehouse.delta_table(spark, "gold", "usage").history(1).first()
    assert history["operation"] == "MERGE"
    return {k: int(v) for k, v in history["operationMetrics"].items() if v.isdigit()}


def test_a_bounded_replace_changes_only_the_differing_rows_and_reads_only_their_files(spark, tmp_path, monkeypatch):
    rows = [("s1", _hour(i), float(i)) for i in range(40)]  # four files of ten hours each, in time order
    lakehouse = _sorted_table(spark, tmp_path, monkeypatch, rows)
    table = lakehouse.read(spark, "gold", "usage")
    old = table.where(F.col("effective_start_time") >= F.lit(_hour(37)))
    new = spark.createDataFrame([("s1", _hour(37), 37.0), ("s1", _hour(38), 99.0), ("s1", _hour(40), 40.0)], SCHEMA)
    # The files of hours 0-29 are gone from disk: reading any of them would fail the MERGE.
    earlier = table.groupBy(F.input_file_name().alias("file")).agg(F.max("effective_start_time").alias("last"))
    earlier_files = [r["file"] for r in earlier.where(F.col("last") < F.lit(_hour(30))).collect()]
    assert len(earlier_files) == 3
    hidden = {Path(urlparse(f).path): Path(urlparse(f).path).with_suffix(".hidden") for f in earlier_files}
    for file, moved in hidden.items():
        file.rename(moved)

    changes = replace_rows(lakehouse, "gold", "usage", old, new, bound="effective_start_time")

    for file, moved in hidden.items():
        moved.rename(file)

    expected_changes = spark.createDataFrame([
        ("s1", _hour(38), 38.0, "delete"), ("s1", _hour(39), 39.0, "delete"),
        ("s1", _hour(38), 99.0, "insert"), ("s1", _hour(40), 40.0, "insert"),
    ], f"{SCHEMA}, _op string")
    assert_df_equality(changes, expected_changes, ignore_row_order=True, ignore_nullable=True)
    expected = spark.createDataFrame(
        [r for r in rows if r[1] not in (_hour(38), _hour(39))] + [("s1", _hour(38), 99.0), ("s1", _hour(40), 40.0)],
        SCHEMA)
    assert_df_equality(lakehouse.read(spark, "gold", "usage"), expected, ignore_row_order=True, ignore_nullable=True)
    metrics = _last_merge_metrics(spark, lakehouse)
    assert metrics["numTargetFilesRemoved"] == 1  # only the file of hours 30-39 is rewritten
    assert metrics["numTargetRowsCopied"] == 8  # its rows that stay


def test_an_unbounded_change_still_replaces_exactly(spark, tmp_path, monkeypatch):
    """A changed row whose time is null cannot bound the MERGE: it reads the whole table instead."""
    rows = [("s1", _hour(i), float(i)) for i in range(20)] + [("s2", None, 1.0)]
    lakehouse = _sorted_table(spark, tmp_path, monkeypatch, rows)
    table = lakehouse.read(spark, "gold", "usage")
    old = table.where(F.col("effective_start_time").isNull() | (F.col("effective_start_time") == F.lit(_hour(0))))
    new = spark.createDataFrame([("s1", _hour(0), 0.0), ("s2", None, 2.0)], SCHEMA)

    replace_rows(lakehouse, "gold", "usage", old, new, bound="effective_start_time")

    expected = spark.createDataFrame(rows[:-1] + [("s2", None, 2.0)], SCHEMA)
    assert_df_equality(lakehouse.read(spark, "gold", "usage"), expected, ignore_row_order=True, ignore_nullable=True)
