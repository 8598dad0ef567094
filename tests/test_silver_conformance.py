"""The accelerator's own sample messages, written into Capture files, land in the right silver tables."""
from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta

import pytest

from capture_files import flat_path, hive_path, sequence, write_capture
from pipeline_helpers import run_ingestion

SUB_URI = "/subscriptions/..../resourceGroups/.../providers/Microsoft.SaaS/resources/SaaS Accelerator Test Subscription"
T0 = datetime(2022, 9, 19, 13, 0, 0)


def _load(samples, name):
    return json.loads((samples / name).read_text(encoding="utf-8-sig"))


def _raw(samples, name) -> bytes:
    return (samples / name).read_bytes()


@pytest.fixture(scope="module")
def ingested(spark, samples_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("conformance")
    source, lakehouse = root / "capture", root / "lakehouse"
    im = "InternalMessages"
    # Partition 0 (flat layout): a purchase, usage by every identity form, pings, maintenance.
    partition0 = [
        _raw(samples_dir, f"{im}/SubscriptionPurchased.json"),  # raw bytes: BOM included
        _raw(samples_dir, f"{im}/UsageReported.json"),
        _raw(samples_dir, f"{im}/UsageReported only resourceUri.json"),
        _raw(samples_dir, f"{im}/UsageReported only resourceId.json"),
        _raw(samples_dir, f"{im}/Ping TopOfHour.json"),
        _raw(samples_dir, f"{im}/Ping ProcessingStarting.json"),
        _raw(samples_dir, f"{im}/RemoveUnprocessedMessages beforeIncluding.json"),
        _raw(samples_dir, f"{im}/RemoveUnprocessedMessages exactly.json"),
        _raw(samples_dir, f"{im}/RemoveUnprocessedMessages all.json"),
        *_load(samples_dir, f"{im}/AllInOne-InternalMessages.json"),
        *[{"type": "UsageSubmittedToAPI", "value": {"result": r}}
          for r in _load(samples_dir, "MarketplaceMessages/MarketplaceBatchResponseDTO.json")["result"]],
        *_load(samples_dir, f"{im}/AllInOne-SDK-Sent-Messages.json"),
        _raw(samples_dir, f"{im}/SubscriptionDeleted only resourceId.json"),
    ]
    write_capture(flat_path(source, 0, T0), sequence(T0, partition0, step=timedelta(minutes=1)))
    # Partition 3 (Hive layout): the unprocessable junk of the accelerator's clean-up scenario.
    cleanup = "BusinessLogic/CleanUpUnprocessableMessages"
    junk = sorted((samples_dir / cleanup).glob("00[123]--event--*"))
    write_capture(hive_path(source, 3, T0), sequence(T0, [p.read_bytes() for p in junk]))
    # The real Capture file, as Capture wrote it (partition 9, flat layout).
    real = samples_dir / "Capture" / "p9--2022-12-09--16-50-12.avro"
    shutil.copy(real, (source / "ns" / "hub" / real.name))
    config, bronze, silver = run_ingestion(spark, source, lakehouse)
    lh = config.lakehouse
    return {
        "n_records": len(partition0) + len(junk) + 1,
        "bronze": lh.read(spark, "bronze", "events"),
        **{t: lh.read(spark, "silver", t) for t in (
            "subscriptions", "plan_dimensions", "usage_events", "marketplace_submissions", "pings",
            "maintenance", "quarantine", "subscription_lifecycle")},
    }


def test_bronze_keeps_every_record(ingested):
    bronze = ingested["bronze"]
    assert bronze.count() == ingested["n_records"]
    partitions = {r["partition_id"] for r in bronze.select("partition_id").distinct().collect()}
    assert partitions == {"0", "3", "9"}
    real = bronze.where("partition_id = '9'").first()
    assert real["sequence_number"] == 1 and real["offset"] == "1456"
    assert real["enqueued_time"] == datetime(2022, 12, 9, 16, 51, 25, 193000)  # x-opt-enqueued-time ms
    assert real["enqueued_time_raw"] == "12/9/2022 4:51:25 PM"
    assert real["system_properties"]["x-opt-partition-key"] == "d8b14c3c-fcfa-4bf4-d034-be8c3f3ecab5"


def test_subscription_with_plan(ingested):
    subs = ingested["subscriptions"].collect()
    assert len(subs) == 1
    s = subs[0]
    assert (s.resource_id, s.resource_uri, s.plan_id) == ("fdc778a6-1281-40e4-cade-4a5fc11f5440", SUB_URI, "free_monthly_yearly")
    assert (s.renewal_interval, s.renewal_months, s.offer_type) == ("Monthly", 1, "saas")
    assert s.subscription_start == datetime(2021, 11, 4, 16, 12, 26)
    assert s.purchased_at == T0
    # Deleted by the SDK sample's SubscriptionDeleted (by URI), message 21 of partition 0.
    assert s.deleted_at == T0 + timedelta(minutes=21)


def test_plan_dimensions(ingested):
    dims = {r.meter_name: r for r in ingested["plan_dimensions"].collect()}
    assert set(dims) == {"nde", "cpu", "dta", "obj", "msg"}
    assert (dims["nde"].dimension, dims["nde"].included_quantity, dims["nde"].included_infinite) == ("nodecharge", 1000.0, False)
    assert (dims["cpu"].included_quantity, dims["cpu"].included_infinite) == (None, True)
    assert dims["dta"].included_quantity == 0.0  # missing included = everything is overage
    assert dims["obj"].included_quantity == 0.0
    assert dims["msg"].included_quantity == 10000.0  # "10000" as a string
    assert {d.dimension_type for d in dims.values()} == {"simple"}


def test_usage_resolved_by_identity_rules(ingested):
    usage = ingested["usage_events"].orderBy("sequence_number").collect()
    # UsageReported (id a791... + same URI) matches by URI; "only resourceUri" matches by URI.
    assert [(u.sequence_number, u.meter_name, u.quantity, u.dimension) for u in usage] == [
        (1, "cpu", 1.0, "cpucharge"), (2, "cpu", 1.1, "cpucharge")]
    assert all(u.subscription_key == SUB_URI and u.plan_id == "free_monthly_yearly" for u in usage)
    assert usage[0].event_timestamp == datetime(2022, 9, 19, 13, 26, 22)
    assert usage[0].enqueued_time == T0 + timedelta(minutes=1)


def test_marketplace_submissions(ingested):
    subs = {(r.sequence_number): r for r in ingested["marketplace_submissions"].collect()}
    statuses = sorted(r.status for r in subs.values())
    assert statuses == sorted(["Accepted", "Duplicate", "ResourceNotFound",
                               "Accepted", "Duplicate", "ResourceNotFound", "Expired", "InvalidDimension"])
    duplicate = next(r for r in subs.values() if r.status == "Duplicate")
    assert duplicate.quantity == 9.0 and duplicate.accepted_quantity == 5.0
    assert duplicate.accepted_usage_event_id == "f4d7af93-afb2-4b01-bda8-d192d3967767"
    assert duplicate.effective_start_time == datetime(2021, 12, 13, 20, 0)
    assert duplicate.error_code == "Conflict"
    accepted = next(r for r in subs.values() if r.status == "Accepted")
    assert accepted.request_id == "7469cbee-1a8a-471b-8fd3-619ef51bce17"
    assert accepted.message_time == datetime(2021, 12, 14, 20, 29, 42, 17766)
    expired = next(r for r in subs.values() if r.status == "Expired")
    assert expired.effective_start_time == datetime(2023, 5, 14, 6, 0) and expired.quantity == 30.2
    not_found = next(r for r in subs.values() if r.status == "ResourceNotFound")
    assert "cannot be found" in json.loads(not_found.error_details)[0]["message"]


def test_pings_and_maintenance(ingested):
    pings = ingested["pings"].collect()
    assert sorted(p.reason for p in pings) == ["newhour", "newhour", "starting", "starting"]
    maintenance = ingested["maintenance"].orderBy("sequence_number").collect()
    assert [(m.target_partition_id, m.before_including, m.exactly, m.all) for m in maintenance] == [
        ("3", 1000, None, None), ("0", None, 16, None), ("0", None, None, True),
        ("0", 1000, None, None), ("0", None, 16, None), ("0", None, None, True)]


def test_quarantine_reasons(ingested):
    q = {(r.partition_id, r.sequence_number): r for r in ingested["quarantine"].collect()}
    reasons = sorted((r.reason, r.message_type or "") for r in q.values())
    assert reasons == sorted([
        ("unknown_subscription", "UsageReported"),        # only resourceId a791..., no such subscription
        ("duplicate_purchase", "SubscriptionPurchased"),  # SDK sample: same resourceId
        ("duplicate_purchase", "SubscriptionPurchased"),  # SDK sample: same resourceUri
        ("unknown_subscription", "SubscriptionDeleted"),  # SDK sample: resourceId a791...
        ("unknown_subscription", "SubscriptionDeleted"),  # "only resourceId" sample
        ("after_deletion", "UsageReported"),              # SDK sample: usage by URI after the deletion
        ("unknown_subscription", "UsageReported"),        # SDK sample: usage by resourceId a791...
        ("not_json", ""),                                 # clean-up scenario: string junk
        # "002 binary junk" is valid UTF-8 (its gzip bytes were already replaced by U+FFFD): text, not JSON.
        ("not_json", ""),
        ("binary", ""),                                   # "003 binary junk": not UTF-8
        ("unknown_subscription", "UsageReported"),        # the real Capture file's usage
    ])
    from metering_analytics.schemas import QUARANTINE_REASONS

    assert {r.reason for r in q.values()} <= set(QUARANTINE_REASONS)  # docs/tables.md lists the same codes
    junk = q[("3", 0)]
    assert junk.body_text == "totally not JSON, doesn't belong here." and junk.source_file.endswith("/00.avro")
    assert q[("3", 2)].body is not None and q[("3", 2)].body_text is None


def test_every_record_has_exactly_one_outcome(ingested):
    facts = sum(ingested[t].count() for t in (
        "usage_events", "marketplace_submissions", "pings", "maintenance", "quarantine"))
    lifecycle_ok = ingested["subscription_lifecycle"].join(
        ingested["quarantine"], ["partition_id", "sequence_number"], "left_anti").count()
    assert facts + lifecycle_ok == ingested["n_records"]
