"""Every stage end to end on generated data (the shared `pipeline_run`); a CLI re-run changes nothing."""
from __future__ import annotations

from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F
from pyspark.sql.types import MapType

from metering_analytics.cli import main

# Columns that record when a row was written, not what it says.
VOLATILE = {"ingested_at", "quarantined_at"}


@pytest.fixture(scope="module")
def demo(pipeline_run):
    return pipeline_run.source, pipeline_run.lakehouse


def test_cli_generate_writes_capture_files(tmp_path, capsys):
    assert main(["generate", "--out", str(tmp_path), "--subscriptions", "2", "--days", "1", "--seed", "3",
                 "--window-minutes", "720"]) == 0
    assert "events_total" in capsys.readouterr().out
    assert sorted(tmp_path.rglob("*.avro")) and (tmp_path / "snapshots").is_dir()


def _snapshot(spark, lakehouse: Path) -> dict:
    from metering_analytics.config import load_config

    lh = load_config().with_overrides(lakehouse_root=str(lakehouse)).lakehouse
    tables = {}
    for name in lh.register_all(spark):
        df = spark.table(name)
        df = df.drop(*[c for c in df.columns if c in VOLATILE])
        # Maps cannot be sorted or hashed: compare their entries in key order.
        df = df.select([F.to_json(F.array_sort(F.map_entries(f.name))).alias(f.name)
                        if isinstance(f.dataType, MapType) else F.col(f.name) for f in df.schema.fields])
        tables[name] = df.localCheckpoint()
    return tables


def test_every_stage_writes_its_tables(spark, demo, capsys):
    _, lakehouse = demo
    tables = _snapshot(spark, lakehouse)
    for name in ("bronze.events", "silver.usage_events", "silver.subscriptions", "silver.quarantine",
                 "silver.meter_snapshots", "gold.marketplace_usage", "gold.included_balance",
                 "gold.billing_reconciliation", "gold.revenue_daily"):
        assert tables[name].count() > 0, name
    bronze = tables["bronze.events"].count()
    placed = sum(tables[t].count() for t in (
        "silver.usage_events", "silver.marketplace_submissions", "silver.pings", "silver.maintenance",
        "silver.quarantine"))
    lifecycle_ok = tables["silver.subscription_lifecycle"].join(
        tables["silver.quarantine"], ["partition_id", "sequence_number"], "left_anti").count()
    assert placed + lifecycle_ok == bronze  # every record lands exactly once


def test_rerun_changes_nothing(spark, demo, capsys):
    data, lakehouse = demo
    before = _snapshot(spark, lakehouse)
    assert main(["run", "--source", str(data), "--lakehouse", str(lakehouse)]) == 0
    out = capsys.readouterr().out
    assert "[bronze] done" in out and "records=0" in out and "Rows per table" in out
    after = _snapshot(spark, lakehouse)
    assert before.keys() == after.keys()
    for name in before:
        assert_df_equality(before[name], after[name], ignore_row_order=True, ignore_nullable=True)


def test_tables_readable_by_another_delta_reader(demo):
    from deltalake import DeltaTable

    _, lakehouse = demo
    usage = DeltaTable(str(lakehouse / "silver" / "usage_events")).to_pandas()
    assert len(usage) > 0 and {"subscription_key", "quantity", "enqueued_time"} <= set(usage.columns)
    gold = DeltaTable(str(lakehouse / "gold" / "marketplace_usage")).to_pandas()
    assert (gold["quantity"] > 0).all()


def test_bad_configuration_stops_before_any_table_changes(tmp_path, demo, capsys):
    data, _ = demo
    bad = tmp_path / "conf"
    bad.mkdir()
    (bad / "pipeline.yml").write_text("source: [not, a, mapping\n")
    lakehouse = tmp_path / "lakehouse"
    assert main(["run", "--source", str(data), "--lakehouse", str(lakehouse),
                 "--config", str(bad / "pipeline.yml")]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    assert not lakehouse.exists()
