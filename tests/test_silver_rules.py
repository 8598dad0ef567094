"""Silver parsing and resolution rules on hand-made records."""
from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta

from chispa import assert_df_equality

from capture_files import flat_path, sequence, write_capture
from pipeline_helpers import local_config, run_ingestion
from metering_analytics.schemas import BRONZE_EVENTS_SCHEMA

T0 = datetime(2025, 3, 1, 10, 0, 0)
URI = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.SaaS/resources/acme"
PLAN = {"planId": "starter", "billingDimensions": {
    "api": {"type": "simple", "dimension": "api_calls", "included": 100},
    "egress": {"type": "waterfall", "tiers": [{"dimension": "egress_tier_1", "threshold": 10},
                                              {"dimension": "egress_tier_2", "threshold": "100"}]}}}


def purchase(resource_id=None, resource_uri=None, start="2025-03-01T00:00:00Z", plan=PLAN, interval="Monthly"):
    sub = {"subscriptionStart": start, "renewalInterval": interval, "plan": plan}
    if resource_id:
        sub["resourceId"] = resource_id
    if resource_uri:
        sub["resourceUri"] = resource_uri
    return {"type": "SubscriptionPurchased", "value": {"subscription": sub}}


def usage(resource_id=None, resource_uri=None, meter="api", quantity=1, timestamp="2025-03-01T10:00:00Z"):
    value = {"meterName": meter, "quantity": quantity, "timestamp": timestamp}
    if resource_id:
        value["resourceId"] = resource_id
    if resource_uri:
        value["resourceUri"] = resource_uri
    return {"type": "UsageReported", "value": value}


def deletion(resource_id=None, resource_uri=None):
    value = {}
    if resource_id:
        value["resourceId"] = resource_id
    if resource_uri:
        value["resourceUri"] = resource_uri
    return {"type": "SubscriptionDeleted", "value": value}


def bronze_rows(spark, bodies):
    rows = []
    for i, b in enumerate(bodies):
        raw = b if isinstance(b, (bytes, type(None))) else (b if isinstance(b, str) else json.dumps(b)).encode()
        t = T0 + timedelta(minutes=i)
        rows.append(("0", i, str(i), t, "x", t.date(), {}, {}, raw, "ns/hub", "f.avro", t))
    return spark.createDataFrame(rows, BRONZE_EVENTS_SCHEMA)


def test_every_unusable_record_gets_a_reason(spark):
    from metering_analytics.silver.messages import decode_messages

    bodies = [
        None,
        b"\x1f\x8b\x08\x00binary",
        "totally not JSON",
        "\ufeff" + json.dumps(usage("r1")),  # BOM: fine
        {"type": "Mystery", "value": {}},
        {"value": {}},
        usage("r1", quantity=-1),
        usage("r1", quantity="abc"),
        usage("r1", quantity="NaN"),
        usage("r1", quantity="1.5"),
        usage("r1", quantity=1e400),
        usage("r1", timestamp="yesterday"),
        usage("r1", timestamp="2025-03-01T10:00:00+02:00"),
        {"type": "UsageReported", "value": {"resourceId": "r1", "quantity": 1, "timestamp": "2025-03-01T10:00:00"}},
        {"type": "UsageReported", "value": {"meterName": "api", "quantity": 1, "timestamp": "2025-03-01T10:00:00"}},
        purchase("r1", interval="Weekly"),
        purchase("r1", plan={"planId": "p", "billingDimensions": {"x": {"type": "simple", "dimension": "d", "included": "lots"}}}),
        purchase("r1", start="not a date"),
        deletion(),
        {"type": "Ping", "value": {"partitionId": "0", "localTime": "2025-03-01T10:00:00Z", "reason": "newhour"}},
    ]
    decoded = decode_messages(bronze_rows(spark, bodies)).select("sequence_number", "message_type", "reason")
    expected = spark.createDataFrame([
        (0, None, "null_body"), (1, None, "binary"), (2, None, "not_json"),
        (3, "UsageReported", None), (4, "Mystery", "unknown_type"), (5, None, "missing_field"),
        (6, "UsageReported", "invalid_quantity"), (7, "UsageReported", "invalid_quantity"),
        (8, "UsageReported", "invalid_quantity"), (9, "UsageReported", None),
        (10, "UsageReported", "invalid_quantity"), (11, "UsageReported", "invalid_timestamp"),
        (12, "UsageReported", None), (13, "UsageReported", "missing_field"),
        (14, "UsageReported", "missing_field"), (15, "SubscriptionPurchased", "invalid_plan"),
        (16, "SubscriptionPurchased", "invalid_plan"), (17, "SubscriptionPurchased", "invalid_timestamp"),
        (18, "SubscriptionDeleted", "missing_field"), (19, "Ping", None),
    ], "sequence_number long, message_type string, reason string")
    assert_df_equality(decoded, expected, ignore_nullable=True, ignore_row_order=True)


def test_usage_resolution_by_identity_rules(spark):
    from metering_analytics.silver import facts
    from metering_analytics.silver.messages import decode_messages
    from metering_analytics.silver.subscriptions import derive_subscriptions
    from metering_analytics.silver.usage import resolve_usage

    bodies = [
        purchase("id-a", URI),             # 0: tracked, key = URI
        purchase("id-b"),                  # 1: tracked, key = id-b
        purchase("id-a"),                  # 2: duplicate (ids match, only one side has a URI)
        usage("id-a"),                     # 3: by id -> URI subscription
        usage(resource_uri=URI),           # 4: by URI
        usage("id-zzz", URI),              # 5: URIs decide: same URI, other id -> matches
        usage("id-a", URI + "-other"),     # 6: both sides have URIs and they differ -> unknown
        usage("id-b", meter="nope"),       # 7: unknown meter
        usage("id-c"),                     # 8: never purchased
        deletion("id-b"),                  # 9
        usage("id-b"),                     # 10: after deletion
        usage("id-a", meter="egress", quantity=50),  # 11: waterfall meter: dimension decided by billing
    ]
    decoded = decode_messages(bronze_rows(spark, bodies))
    subs, dims, rejected_lifecycle = derive_subscriptions(facts.subscription_lifecycle(decoded))
    assert_df_equality(
        rejected_lifecycle.select("sequence_number", "reason"),
        spark.createDataFrame([(2, "duplicate_purchase")], "sequence_number long, reason string"),
        ignore_nullable=True)
    assert_df_equality(
        subs.select("subscription_key", "deleted_at"),
        spark.createDataFrame([(URI, None), ("id-b", T0 + timedelta(minutes=9))],
                              "subscription_key string, deleted_at timestamp"),
        ignore_nullable=True, ignore_row_order=True)
    valid, rejected = resolve_usage(facts.usage_candidates(decoded), subs, dims)
    assert_df_equality(
        valid.select("sequence_number", "subscription_key", "meter_name", "dimension", "quantity"),
        spark.createDataFrame([(3, URI, "api", "api_calls", 1.0), (4, URI, "api", "api_calls", 1.0),
                               (5, URI, "api", "api_calls", 1.0), (11, URI, "egress", None, 50.0)],
                              "sequence_number long, subscription_key string, meter_name string, dimension string, quantity double"),
        ignore_nullable=True, ignore_row_order=True)
    assert_df_equality(
        rejected.select("sequence_number", "reason"),
        spark.createDataFrame([(6, "unknown_subscription"), (7, "unknown_meter"), (8, "unknown_subscription"),
                               (10, "after_deletion")], "sequence_number long, reason string"),
        ignore_nullable=True, ignore_row_order=True)


def test_usage_before_subscription_start_is_not_billed(spark):
    from metering_analytics.silver import facts
    from metering_analytics.silver.messages import decode_messages
    from metering_analytics.silver.subscriptions import derive_subscriptions
    from metering_analytics.silver.usage import resolve_usage

    decoded = decode_messages(bronze_rows(spark, [purchase("id-a", start="2025-03-02T00:00:00Z"), usage("id-a")]))
    subs, dims, _ = derive_subscriptions(facts.subscription_lifecycle(decoded))
    _, rejected = resolve_usage(facts.usage_candidates(decoded), subs, dims)
    assert [r.reason for r in rejected.collect()] == ["before_subscription_start"]


def test_plan_dimensions_with_waterfall_tiers(spark):
    from metering_analytics.silver import facts
    from metering_analytics.silver.messages import decode_messages
    from metering_analytics.silver.subscriptions import derive_subscriptions

    decoded = decode_messages(bronze_rows(spark, [purchase("id-a")]))
    _, dims, _ = derive_subscriptions(facts.subscription_lifecycle(decoded))
    egress = dims.where("meter_name = 'egress'").first()
    assert egress.dimension_type == "waterfall" and egress.dimension is None and egress.included_quantity is None
    assert [(t.tier_index, t.dimension, t.threshold) for t in egress.tiers] == [
        (0, "egress_tier_1", 10.0), (1, "egress_tier_2", 100.0)]


def test_late_files_are_reconciled(spark, tmp_path):
    """Files arriving out of order end in the same tables as files arriving in order."""
    source, lakehouse = tmp_path / "capture", tmp_path / "lakehouse"
    # Usage (partition 1) arrives first; its purchase (partition 0, enqueued earlier) comes next run.
    write_capture(flat_path(source, 1, T0), sequence(T0 + timedelta(minutes=5), [usage("id-a"), usage("id-a")],
                                                         step=timedelta(minutes=1)))
    config, _, _ = run_ingestion(spark, source, lakehouse)
    lh = config.lakehouse
    assert lh.read(spark, "silver", "quarantine").where("reason = 'unknown_subscription'").count() == 2

    write_capture(flat_path(source, 0, T0), sequence(T0, [purchase("id-a")]))
    run_ingestion(spark, source, lakehouse)
    assert lh.read(spark, "silver", "usage_events").count() == 2
    assert lh.read(spark, "silver", "quarantine").count() == 0

    # A deletion enqueued before the second usage event, delivered late: that usage stops counting.
    write_capture(flat_path(source, 0, T0 + timedelta(hours=1)),
                  sequence(T0 + timedelta(minutes=5, seconds=30), [deletion("id-a")], first_seq=1))
    run_ingestion(spark, source, lakehouse)
    assert lh.read(spark, "silver", "usage_events").count() == 1
    q = lh.read(spark, "silver", "quarantine").collect()
    assert [(r.reason, r.partition_id, r.sequence_number) for r in q] == [("after_deletion", "1", 1)]
    assert json.loads(q[0].body_text)["type"] == "UsageReported"


def test_accelerator_snapshots(spark, samples_dir, tmp_path):
    from metering_analytics.bronze.snapshots import run_snapshots

    snapshots = tmp_path / "snapshots"
    (snapshots / "0").mkdir(parents=True)
    state = samples_dir / "BusinessLogic" / "RefreshIncludedQuantities" / "004--state.json"
    (snapshots / "0" / "latest.json.gz").write_bytes(gzip.compress(state.read_bytes()))
    (snapshots / "3").mkdir()
    (snapshots / "3" / "latest.json").write_bytes((samples_dir / "InternalDataStructures" / "MeterCollection.json").read_bytes())
    config = local_config(tmp_path / "capture", tmp_path / "lakehouse").with_overrides(snapshot_path=str(snapshots))
    counts = run_snapshots(spark, config)
    assert counts["snapshots"] == 2
    again = run_snapshots(spark, config)
    assert again["snapshots"] == 2  # the same content is kept once
    meters = config.lakehouse.read(spark, "silver", "meter_snapshots")
    m = meters.where("snapshot_partition_id = '0'").first()
    assert (m.meter_name, m.overage_total, m.overage_current_hour, m.included_remaining) == (
        "dimAsWeCallItAppInternally", 1.0, 1.0, None)
    assert m.snapshot_time == datetime(2023, 11, 3, 0, 0, 2)
    egress = meters.where("meter_name = 'gigabyte_egress'").first()
    assert egress.waterfall_total == 100000.0 and egress.waterfall_consumption == {"egress_tier_1": 5000.0}
    unreported = config.lakehouse.read(spark, "silver", "snapshot_usage_to_be_reported").collect()
    assert [(u.dimension, u.quantity) for u in unreported] == [("nodecharge", 5.0)]


def test_a_new_batch_is_appended_and_a_replayed_one_changes_nothing(spark, tmp_path):
    """Positions never seen are appended; a reset checkpoint replays every batch, which is merged."""
    import shutil

    from delta.tables import DeltaTable
    from metering_analytics.silver.stage import SILVER_TABLES, run_silver

    source, lakehouse = tmp_path / "capture", tmp_path / "lakehouse"
    write_capture(flat_path(source, 0, T0), sequence(T0, [purchase("id-a"), usage("id-a"), usage("id-b"),
                                                          b"not json"], step=timedelta(minutes=1)))
    config, _, _ = run_ingestion(spark, source, lakehouse)
    lh = config.lakehouse
    usage_history = DeltaTable.forPath(spark, lh.path("silver", "usage_events")).history()
    assert [r.operation for r in usage_history.orderBy("version").collect()][-1] == "WRITE"
    before = {t: sorted(map(str, lh.read(spark, "silver", t).drop("quarantined_at").collect())) for t in SILVER_TABLES}

    shutil.rmtree(lakehouse / "_checkpoints" / "silver")
    run_silver(spark, config)
    after = {t: sorted(map(str, lh.read(spark, "silver", t).drop("quarantined_at").collect())) for t in SILVER_TABLES}
    assert after == before
    assert sum(len(rows) for rows in after.values()) > 0
