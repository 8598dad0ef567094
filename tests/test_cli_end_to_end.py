"""Every stage end to end on generated data (the shared `pipeline_run`); a CLI re-run changes nothing."""
from __future__ import annotations

import pytest
from chispa import assert_df_equality

from metering_analytics.cli import main
from pipeline_run import table_contents


@pytest.fixture(scope="module")
def demo(pipeline_run):
    return pipeline_run.source, pipeline_run.lakehouse, pipeline_run.config_file


def test_cli_generate_writes_capture_files(tmp_path, capsys):
    assert main(["generate", "--out", str(tmp_path), "--subscriptions", "2", "--days", "1", "--seed", "3",
                 "--window-minutes", "720"]) == 0
    assert "events_total" in capsys.readouterr().out
    assert sorted(tmp_path.rglob("*.avro")) and (tmp_path / "snapshots").is_dir()


def test_every_stage_writes_its_tables(spark, demo, capsys):
    _, lakehouse, _ = demo
    tables = table_contents(spark, lakehouse)
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
    data, lakehouse, config = demo
    before = table_contents(spark, lakehouse)
    # The ingestion stages: the incremental ones (the models rebuild from gold with a seeded fit).
    assert main(["run", "--source", str(data), "--lakehouse", str(lakehouse), "--config", str(config),
                 "--stages", "ingestion"]) == 0
    out = capsys.readouterr().out
    assert "[bronze] done" in out and "records=0" in out and "Rows per table" in out
    after = table_contents(spark, lakehouse)
    assert before.keys() == after.keys()
    for name in before:
        assert_df_equality(before[name], after[name], ignore_row_order=True, ignore_nullable=True)


def test_tables_readable_by_another_delta_reader(demo):
    from deltalake import DeltaTable

    _, lakehouse, _ = demo
    usage = DeltaTable(str(lakehouse / "silver" / "usage_events")).to_pandas()
    assert len(usage) > 0 and {"subscription_key", "quantity", "enqueued_time"} <= set(usage.columns)
    gold = DeltaTable(str(lakehouse / "gold" / "marketplace_usage")).to_pandas()
    assert (gold["quantity"] > 0).all()


def test_bad_configuration_stops_before_any_table_changes(tmp_path, demo, capsys):
    data, _, _ = demo
    bad = tmp_path / "conf"
    bad.mkdir()
    (bad / "pipeline.yml").write_text("source: [not, a, mapping\n")
    lakehouse = tmp_path / "lakehouse"
    assert main(["run", "--source", str(data), "--lakehouse", str(lakehouse),
                 "--config", str(bad / "pipeline.yml")]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    assert not lakehouse.exists()
