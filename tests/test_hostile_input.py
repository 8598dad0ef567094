"""Hostile input mixed with good events: the run completes, nothing readable is lost, every unusable
record is quarantined with its reason, damaged files are named, and the money is what the good events
alone give.

The good events are the shared `pipeline_run` dataset; the hostile records are added in files of their
own partitions (so the good records keep their positions), enqueued inside the good data's time range
(so the report clock does not move), and the pipeline runs once more on the mix.
"""
from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from chispa import assert_df_equality

from capture_files import flat_path, hive_path, sequence, write_capture
from pipeline_run import bookkeeping_tables, comparable

HUB = "contoso-metering/metering"
UNKNOWN = "00000000-0000-0000-0000-00000000dead"
# The persona tables are pure functions of silver and billing (tested on their own): equal silver and
# billing tables give equal persona tables, so the hostile run stops after billing.
INGESTION = ["bronze", "silver", "billing"]
WHERE_FROM = ("source_file", "snapshot_file")


def _usage(identity: dict, meter: str, quantity, timestamp: str = "2025-01-01T10:00:00Z") -> dict:
    return {"type": "UsageReported", "value": {**identity, "meterName": meter, "quantity": quantity,
                                               "timestamp": timestamp}}


def _identity(row) -> dict:
    return {k: v for k, v in (("resourceId", row.resource_id), ("resourceUri", row.resource_uri)) if v}


@pytest.fixture(scope="module")
def hostile(spark, pipeline_run, tmp_path_factory):
    from metering_analytics.pipeline import run_pipeline
    from pyspark.sql import functions as F

    good = pipeline_run.tables
    bronze = good.read(spark, "bronze", "events").agg(F.min("enqueued_time"), F.max("enqueued_time")).first()
    first, last = bronze[0], bronze[1]
    middle = first + (last - first) / 2
    subscriptions = good.read(spark, "silver", "subscriptions").orderBy("subscription_key").collect()
    active = next(s for s in subscriptions if s.deleted_at is None and s.purchased_at > first)
    meter = good.read(spark, "silver", "plan_dimensions").where(
        F.col("subscription_key") == active.subscription_key).orderBy("meter_name").first().meter_name
    plan_json = good.read(spark, "silver", "subscription_lifecycle").where(
        (F.col("message_type") == "SubscriptionPurchased")
        & (F.coalesce("resource_uri", "resource_id") == active.subscription_key)).first().billing_dimensions_json
    deleted = next((s for s in subscriptions if s.deleted_at is not None and s.deleted_at < last), None)

    me = _identity(active)
    cases = [  # (enqueued, body, the reason it must be quarantined with)
        (middle, None, "null_body"),
        (middle, b"\x00\xff\xfe\x01", "binary"),
        (middle, '{"type": "UsageReported", "value": {"resourceId": "x", "quan', "not_json"),
        (middle, "\ufeff" + json.dumps(_usage({"resourceId": UNKNOWN}, meter, 1)), "unknown_subscription"),
        (middle, {"type": "Mystery", "value": {}}, "unknown_type"),
        (middle, {"value": {"resourceId": "x"}}, "missing_field"),
        (middle, {"type": "UsageReported", "value": {**me, "quantity": 1, "timestamp": "2025-01-01T10:00:00Z"}},
         "missing_field"),
        (middle, _usage(me, meter, {"not": "a number"}), "invalid_quantity"),
        (middle, _usage(me, meter, -5), "invalid_quantity"),
        (middle, _usage(me, meter, "NaN"), "invalid_quantity"),
        (middle, json.dumps(_usage(me, meter, 0)).replace('"quantity": 0', '"quantity": 1e400'), "invalid_quantity"),
        (middle, _usage(me, meter, "twelve"), "invalid_quantity"),
        (middle, _usage(me, meter, 1, timestamp="yesterday"), "invalid_timestamp"),
        (middle, _usage({"resourceId": UNKNOWN}, meter, 1, timestamp="2025-01-01T10:00:00+02:00"),
         "unknown_subscription"),
        (active.purchased_at - timedelta(minutes=30), _usage(me, meter, 1), "unknown_subscription"),
        (middle, _usage(me, "no_such_meter", 1), "unknown_meter"),
        (middle, {"type": "SubscriptionPurchased", "value": {"subscription": {
            **me, "subscriptionStart": "2025-01-01T00:00:00Z", "renewalInterval": "Monthly",
            "plan": {"planId": active.plan_id, "billingDimensions": json.loads(plan_json)}}}}, "duplicate_purchase"),
        (middle, {"type": "SubscriptionDeleted", "value": {"resourceId": UNKNOWN}}, "unknown_subscription"),
    ]
    if deleted is not None:
        cases.append((deleted.deleted_at + (last - deleted.deleted_at) / 2,
                      _usage(_identity(deleted), meter, 1), "after_deletion"))
    cases.sort(key=lambda case: case[0])  # enqueued order within the partition, as Event Hubs does

    root = tmp_path_factory.mktemp("hostile")
    shutil.copytree(pipeline_run.source, root / "data")
    capture = root / "data" / "capture"
    records = sequence(first, [(at, body) for at, body, _ in cases])
    write_capture(flat_path(capture, 7, middle, hub=HUB), records)
    write_capture(flat_path(capture, 7, middle + timedelta(hours=1), hub=HUB), records)  # the same file again
    write_capture(hive_path(capture, 7, middle + timedelta(hours=2), hub=HUB), [])  # an idle window
    cut = write_capture(flat_path(capture, 6, middle, hub=HUB),
                        sequence(middle, [_usage({"resourceId": UNKNOWN}, meter, i) for i in range(4)]),
                        block_bytes=1)
    cut.write_bytes(cut.read_bytes()[:-30])  # three intact blocks, the fourth cut short
    (capture / HUB / "p5--2025-01-01--00-00-00.avro").write_text("not avro")

    config = pipeline_run.config().with_overrides(capture_path=str(capture),
                                                  snapshot_path=str(root / "data" / "snapshots"),
                                                  lakehouse_root=str(root / "lakehouse"))
    lines = []
    report = run_pipeline(spark, config, progress=lines.append, stages=INGESTION)
    return cases, config.lakehouse, report, lines


def test_the_run_completes_and_names_the_damaged_files(hostile):
    _, _, report, lines = hostile
    prefix = "damaged Capture file "
    damaged = sorted(line[len(prefix):].split(".avro:")[0].rsplit("/", 1)[1] + ".avro"
                     for line in lines if line.startswith(prefix))
    assert damaged == ["p5--2025-01-01--00-00-00.avro", "p6--" + damaged[1][4:]]
    assert [s.name for s in report.stages] == INGESTION
    assert report.stages[0].details["damaged_files"] == 2


def test_bronze_holds_every_readable_record(spark, hostile, pipeline_run):
    cases, lakehouse, _, _ = hostile
    good = pipeline_run.tables.read(spark, "bronze", "events").count()
    assert lakehouse.read(spark, "bronze", "events").count() == good + len(cases) + 3


def test_every_hostile_record_is_quarantined_with_its_reason(spark, hostile):
    cases, lakehouse, report, _ = hostile
    quarantine = lakehouse.read(spark, "silver", "quarantine")
    got = {(r.partition_id, r.sequence_number): r.reason
           for r in quarantine.where("partition_id IN ('6', '7')").collect()}
    expected = {("7", i): reason for i, (_, _, reason) in enumerate(cases)}
    expected.update({("6", i): "unknown_subscription" for i in range(3)})
    assert got == expected
    assert sum(report.quarantined.values()) == quarantine.count()  # and every one is counted


def test_money_and_customer_tables_equal_what_the_good_events_give(spark, hostile, pipeline_run):
    _, lakehouse, _, _ = hostile
    names = [(layer, p.name) for layer in ("silver", "gold") for p in sorted(Path(lakehouse.root, layer).iterdir())
             if (p / "_delta_log").is_dir()]
    # What counts all records (operations' event totals, data quality, quarantine) must differ; the rest not.
    counted = {("silver", "quarantine"), ("silver", "pings"), ("silver", "maintenance"),
               ("silver", "subscription_lifecycle")}  # the log of every valid lifecycle message
    compared = [(layer, t) for layer, t in names if (layer, t) not in counted and not t.startswith("ops_")
                and f"{layer}.{t}" not in bookkeeping_tables()]
    assert {("gold", "marketplace_usage"), ("gold", "included_balance"), ("silver", "usage_events")} <= set(compared)
    for layer, table in compared:
        # The same files below another folder: compare what was read, not where from.
        expected = comparable(pipeline_run.tables.read(spark, layer, table)).drop(*WHERE_FROM)
        actual = comparable(lakehouse.read(spark, layer, table)).drop(*WHERE_FROM)
        # Column comments are not data (the good run's gold stage wrote them; this run stops before it).
        assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True, ignore_metadata=True,
                           underline_cells=True), f"{layer}.{table}"
