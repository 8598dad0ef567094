"""The sample-data generator: real Capture files, a realistic stream, exact overage, bounded memory."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tracemalloc
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import fastavro
import pytest
import yaml
from pyspark.sql import functions as F

from metering_analytics import schemas
from metering_analytics.billing.reference import RENEWAL_MONTHS, hourly_overage
from metering_analytics.generate import generate
from metering_analytics.generate import messages
from metering_analytics.generate.capture import (
    container_header,
    encode_map,
    encode_record,
    epoch_ms,
    format_enqueued_time,
    system_properties,
)
from metering_analytics.generate.customers import DAY_MS, HOUR_MS, UsageModel, build_population
from metering_analytics.generate.junk import KINDS
from metering_analytics.generate.plans import PLANS, accounting_meters, marketplace_dimensions

PROJECT = Path(__file__).resolve().parents[1]
REAL_CAPTURE_NAME = "p9--2022-12-09--16-50-12.avro"
PATTERNS = [re.compile(p) for p in
            yaml.safe_load((PROJECT / "conf" / "pipeline.yml").read_text())["source"]["capture_path_patterns"]]
SMALL = dict(subscriptions=30, days=12, seed=11, junk_rate=0.01)
START = datetime(2025, 1, 1)


@dataclass(frozen=True)
class Event:
    path: str
    partition: int
    sequence: int
    offset: int
    enqueued: datetime
    enqueued_text: str
    system: dict
    properties: dict
    body: bytes | None
    message: dict | None  # parsed body when it is a JSON object with a type


def _parse(body: bytes | None) -> dict | None:
    if body is None:
        return None
    try:
        message = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        return None
    return message if isinstance(message, dict) and "type" in message else None


def _files(capture: Path) -> list[Path]:
    return sorted(capture.rglob("*.avro"))


def _read(capture: Path) -> list[Event]:
    events = []
    for path in _files(capture):
        relative = path.relative_to(capture).as_posix()
        partition = next(int(m.group(2)) for m in (p.search(relative) for p in PATTERNS) if m)
        with path.open("rb") as f:
            for r in fastavro.reader(f):
                enqueued = datetime(1970, 1, 1) + timedelta(milliseconds=r["SystemProperties"]["x-opt-enqueued-time"])
                events.append(Event(relative, partition, r["SequenceNumber"], int(r["Offset"]), enqueued,
                                    r["EnqueuedTimeUtc"], r["SystemProperties"], r["Properties"], r["Body"],
                                    _parse(r["Body"])))
    events.sort(key=lambda e: (e.partition, e.sequence))
    return events


def _key(value: dict) -> str | None:
    return value.get("resourceUri") or value.get("resourceId")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("generated")
    summary = generate(out, **SMALL)
    return summary, _read(summary.capture_dir)


# -- plans --------------------------------------------------------------------------------------

def test_plans_are_those_of_the_price_catalog():
    prices = yaml.safe_load((PROJECT / "conf" / "prices.yml").read_text())["plans"]
    assert {p.plan_id for p in PLANS} == set(prices)
    for plan in PLANS:
        assert set(marketplace_dimensions(plan)) == set(prices[plan.plan_id]["unit_prices"])
        assert {i for i, _ in plan.renewal_intervals} <= set(prices[plan.plan_id]["recurring_fee"])
    starter = {p.plan_id: p for p in PLANS}["starter"].billing_dimensions()
    assert starter["api"]["included"] == 10000 and starter["storage"]["included"] == "2000"
    assert "included" not in {p.plan_id: p for p in PLANS}["professional"].billing_dimensions()["support"]
    assert accounting_meters({p.plan_id: p for p in PLANS}["enterprise"])["api"].included is None


# -- formats ------------------------------------------------------------------------------------

def test_enqueued_time_format_is_captures():
    assert format_enqueued_time(epoch_ms(datetime(2022, 12, 9, 16, 51, 25))) == "12/9/2022 4:51:25 PM"
    assert format_enqueued_time(epoch_ms(datetime(2025, 1, 1, 0, 5, 9, 999000))) == "1/1/2025 12:05:09 AM"
    assert format_enqueued_time(epoch_ms(datetime(2025, 11, 30, 12, 0, 0))) == "11/30/2025 12:00:00 PM"


def test_record_encoding_equals_fastavros():
    parsed = fastavro.parse_schema(schemas.CAPTURE_AVRO_SCHEMA_JSON)
    records = [
        (5, "1456", "12/9/2022 4:51:25 PM", "d8b14c3c-fcfa", 1670604685193, {}, b'{"type": "Ping"}'),
        (300_000_000_000, "0", "1/1/2025 12:00:00 AM", None, 1735689600000,
         {"region": "westeurope", "n": 7, "x": 1.5, "raw": b"\x00\x01", "none": None, "neg": -12}, None),
    ]
    for sequence, offset, text, key, at, props, body in records:
        expected = io.BytesIO()
        system = {"x-opt-partition-key": key, "x-opt-enqueued-time": at} if key else {"x-opt-enqueued-time": at}
        fastavro.schemaless_writer(expected, parsed, {
            "SequenceNumber": sequence, "Offset": offset, "EnqueuedTimeUtc": text, "SystemProperties": system,
            "Properties": props, "Body": body})
        assert encode_record(sequence, offset, text, system_properties(key, at), encode_map(props), body) == \
            expected.getvalue()


@pytest.fixture(scope="module")
def real_capture(samples_dir) -> Path:
    return samples_dir / "Capture" / REAL_CAPTURE_NAME


def test_header_is_byte_identical_to_the_real_capture_file(real_capture):
    real = real_capture.read_bytes()
    header = container_header("null", b"\0" * 16)
    assert real[: len(header) - 16] == header[:-16]


def test_bodies_are_json_dumps_indent_2(samples_dir):
    for path in sorted((samples_dir / "InternalMessages").glob("*.json")):
        value = json.loads(path.read_text(encoding="utf-8-sig"))
        assert messages.pretty_json(value) == json.dumps(value, indent=2), path.name
    population = build_population(40, epoch_ms(START), epoch_ms(START + timedelta(days=30)), 4, seed=5)
    for sub in population:
        for meter in sub.meters:
            for quantity_text, quantity in (("12", 12), ("0.125", 0.125), ('"1.5"', "1.5")):
                stamp = "2025-01-02T03:04:05.1234567Z"
                assert messages.UsageTemplate(sub, meter).render(stamp, quantity_text) == \
                    messages.usage_body_reference(sub, meter, stamp, quantity)
        hour = epoch_ms(datetime(2025, 1, 2, 3))
        request = messages.request_fields(sub, hour, "api_calls", 12.5)
        accepted = messages.accepted(request, "e1", "2025-01-02T04:15:00.1234567Z")
        assert messages.AcceptedTemplate(sub).render("r1", "c1", hour, sub.plan.plan_id, "api_calls", 12.5, "e1",
                                                     "2025-01-02T04:15:00.1234567Z") == \
            json.dumps({"type": "UsageSubmittedToAPI", "value": {
                "httpHeaders": {"xMsRequestId": "r1", "xMsCorrelationId": "c1"}, "result": accepted}},
                indent=2).encode()


# -- files --------------------------------------------------------------------------------------

def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    def digest(out: Path) -> dict[str, str]:
        return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(out.rglob("*")) if p.is_file()}

    args = dict(subscriptions=8, days=3, junk_rate=0.01)
    generate(tmp_path / "a", seed=3, **args)
    generate(tmp_path / "b", seed=3, **args)
    generate(tmp_path / "c", seed=4, **args)
    a, b, c = digest(tmp_path / "a"), digest(tmp_path / "b"), digest(tmp_path / "c")
    assert a == b and len(a) > 10
    assert a != c


def test_writer_schema_is_the_real_capture_schema(dataset, real_capture):
    summary, _ = dataset
    with real_capture.open("rb") as f:
        real = fastavro.reader(f)
        real_schema, real_codec, real_text = real.writer_schema, real.codec, real.metadata["avro.schema"]
    for path in _files(summary.capture_dir)[:5]:
        with path.open("rb") as f:
            reader = fastavro.reader(f)
            assert reader.writer_schema == real_schema
            assert reader.codec == real_codec == "null"
            assert reader.metadata["avro.schema"] == real_text


def test_both_path_layouts_match_the_configured_patterns(dataset):
    summary, _ = dataset
    paths = [p.relative_to(summary.capture_dir).as_posix() for p in _files(summary.capture_dir)]
    assert all(any(p.search(path) for p in PATTERNS) for path in paths)
    assert any(PATTERNS[0].search(path) for path in paths)
    assert any(PATTERNS[1].search(path) for path in paths)
    assert len(paths) == summary.files_written == SMALL["days"] * 24 * 4


def test_empty_files_are_valid_avro(dataset):
    summary, events = dataset
    with_records = {e.path for e in events}
    empty = [p for p in _files(summary.capture_dir)
             if p.relative_to(summary.capture_dir).as_posix() not in with_records]
    assert len(empty) == summary.empty_files > 0
    for path in empty:
        with path.open("rb") as f:
            assert list(fastavro.reader(f)) == []


def test_sequence_numbers_and_offsets_increase_per_partition(dataset):
    _, events = dataset
    by_partition = defaultdict(list)
    for e in events:
        by_partition[e.partition].append(e)
    assert sorted(by_partition) == [0, 1, 2, 3]
    for partition_events in by_partition.values():
        assert [e.sequence for e in partition_events] == list(range(len(partition_events)))
        assert all(a.offset < b.offset for a, b in zip(partition_events, partition_events[1:]))
        assert all(a.enqueued <= b.enqueued for a, b in zip(partition_events, partition_events[1:]))
    for e in events:  # a file holds its own window
        assert e.enqueued_text == format_enqueued_time(epoch_ms(e.enqueued))


def test_deflate_and_short_windows_hold_the_same_events(tmp_path, dataset):
    summary, events = dataset
    other = generate(tmp_path, codec="deflate", window_minutes=15, **SMALL)
    assert other.events_total == summary.events_total
    assert other.files_written == SMALL["days"] * 24 * 4 * 4
    again = _read(other.capture_dir)
    assert [(e.partition, e.sequence, e.body) for e in again] == [(e.partition, e.sequence, e.body) for e in events]
    with _files(other.capture_dir)[0].open("rb") as f:
        assert fastavro.reader(f).codec == "deflate"


# -- the stream ---------------------------------------------------------------------------------

def test_summary_counts_match_the_files(dataset):
    summary, events = dataset
    assert summary.events_total == len(events)
    valid = defaultdict(int)
    for e in events:
        if e.message is not None and e.message["type"] in schemas.MESSAGE_TYPES:
            valid[e.message["type"]] += 1
    junk_that_parses = sum(summary.junk_by_kind.get(k, 0) for k in (
        "invalid_quantity", "missing_field", "unknown_meter", "unknown_subscription", "after_deletion",
        "duplicate_purchase"))
    for message_type, count in summary.messages_by_type.items():
        assert valid[message_type] >= count
    assert sum(valid.values()) == sum(summary.messages_by_type.values()) + junk_that_parses
    assert set(summary.junk_by_kind) == {k for k, _ in KINDS} - ({"after_deletion"} if not summary.deleted_subscriptions
                                                                 else set())
    assert summary.first_enqueued >= START and summary.last_enqueued < START + timedelta(days=SMALL["days"])


def _purchases(events: list[Event]) -> dict[str, tuple[Event, dict]]:
    purchased = {}
    for e in events:
        if e.message and e.message["type"] == "SubscriptionPurchased":
            sub = e.message["value"]["subscription"]
            purchased.setdefault(_key(sub), (e, sub))
    return purchased


def test_identities_offer_types_and_partitions(dataset):
    _, events = dataset
    purchased = _purchases(events)
    styles = {("resourceId" in s, "resourceUri" in s) for _, s in purchased.values()}
    assert styles == {(True, False), (False, True), (True, True)}
    for event, sub in purchased.values():
        uri = sub.get("resourceUri")
        if uri is not None:
            provider = ("Microsoft.Solutions/applications/" if sub["plan"]["planId"] == "managed_basic"
                        else "Microsoft.SaaS/resources/")
            assert re.fullmatch(r"/subscriptions/[0-9a-f-]{36}/resourceGroups/[^/]+/providers/" + provider + "[^/]+",
                                uri)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", sub["subscriptionStart"])
        assert sub["renewalInterval"] in RENEWAL_MONTHS
        assert event.system["x-opt-partition-key"] == _key(sub)
    partition_of = {}
    for e in events:  # everything about a subscription goes to one partition
        if e.message and e.message["type"] in ("UsageReported", "SubscriptionDeleted", "SubscriptionPurchased"):
            value = e.message["value"].get("subscription", e.message["value"])
            key = _key(value)
            if key in purchased:
                assert partition_of.setdefault(key, e.partition) == e.partition


def test_usage_references_purchased_subscriptions_except_junk(dataset):
    summary, events = dataset
    purchased = _purchases(events)
    deleted_at = {_key(e.message["value"]): e.enqueued for e in events
                  if e.message and e.message["type"] == "SubscriptionDeleted"}
    unknown = after_deletion = 0
    for e in events:
        if not (e.message and e.message["type"] == "UsageReported"):
            continue
        value = e.message["value"]
        key = _key(value)
        if key not in purchased:
            unknown += 1
            continue
        assert purchased[key][0].enqueued < e.enqueued
        assert {k: v for k, v in value.items() if k in ("resourceId", "resourceUri")} == \
            {k: v for k, v in purchased[key][1].items() if k in ("resourceId", "resourceUri")}
        if key in deleted_at and e.enqueued > deleted_at[key]:
            after_deletion += 1
    assert unknown == summary.junk_by_kind.get("unknown_subscription", 0)
    assert after_deletion == summary.junk_by_kind.get("after_deletion", 0)


def test_pings_every_hour_on_every_partition(dataset):
    _, events = dataset
    pings = [e for e in events if e.message and e.message["type"] == "Ping"]
    hours = {(e.partition, e.enqueued.replace(minute=0, second=0, microsecond=0))
             for e in pings if e.message["value"]["reason"] == "newhour"}
    assert len(hours) >= 4 * (SMALL["days"] * 24 - 2)  # all but a maintenance window
    assert any(e.message["value"]["reason"] == "starting" for e in pings)
    assert all(e.message["value"]["partitionId"] == str(e.partition) for e in pings)


def _billable_usage(events: list[Event]) -> dict[str, list[tuple[datetime, str, float]]]:
    """Usage the rules bill, per subscription key, in enqueued order."""
    purchased = _purchases(events)
    deleted_at = {_key(e.message["value"]): e.enqueued for e in events
                  if e.message and e.message["type"] == "SubscriptionDeleted"}
    usage = defaultdict(list)
    for e in sorted(events, key=lambda e: (e.enqueued, e.partition, e.sequence)):
        if not (e.message and e.message["type"] == "UsageReported"):
            continue
        value = e.message["value"]
        key = _key(value)
        if key not in purchased or (key in deleted_at and e.enqueued > deleted_at[key]):
            continue
        if value.get("meterName") not in purchased[key][1]["plan"]["billingDimensions"]:
            continue
        try:
            quantity = float(value["quantity"])
        except (KeyError, ValueError):
            continue
        if quantity >= 0:
            usage[key].append((e.enqueued, value["meterName"], quantity))
    return usage


def _expected_overage(events: list[Event]) -> dict[tuple[str, str, datetime], float]:
    from metering_analytics.generate.plans import PLANS_BY_ID

    expected = {}
    purchased = _purchases(events)
    for key, usage in _billable_usage(events).items():
        sub = purchased[key][1]
        start = datetime.strptime(sub["subscriptionStart"], "%Y-%m-%dT%H:%M:%SZ")
        meters = accounting_meters(PLANS_BY_ID[sub["plan"]["planId"]])
        for (dimension, hour), quantity in hourly_overage(meters, RENEWAL_MONTHS[sub["renewalInterval"]], start,
                                                          usage).items():
            expected[(key, dimension, hour)] = quantity
    return expected


def test_submissions_carry_the_reference_overage(dataset):
    summary, events = dataset
    expected = _expected_overage(events)
    assert expected, "the small dataset should have some overage"
    submitted = {}
    statuses = defaultdict(int)
    for e in events:
        if not (e.message and e.message["type"] == "UsageSubmittedToAPI"):
            continue
        result = e.message["value"]["result"]
        statuses[result["status"]] += 1
        hour = datetime.strptime(result["effectiveStartTime"], "%Y-%m-%dT%H:%M:%S")
        k = (_key(result), result["dimension"], hour)
        assert k not in submitted
        submitted[k] = result
        # ~1h15m after the hour began; up to a few hours when a maintenance window delayed it
        assert hour + timedelta(hours=1) <= e.enqueued < hour + timedelta(hours=4)
        if result["status"] == "Duplicate":
            assert result["error"]["additionalInfo"]["acceptedMessage"]["quantity"] > 0
        if result["status"] == "Accepted":
            assert result["usageEventId"] and result["messageTime"].endswith("Z")
    assert statuses["Accepted"] > 0.9 * sum(statuses.values())
    end = START + timedelta(days=SMALL["days"])
    for k, quantity in expected.items():
        if k[2] >= end - timedelta(hours=3):
            assert k not in submitted  # still pending when the data ends
            continue
        assert k in submitted, k
        assert submitted[k]["quantity"] == pytest.approx(quantity, rel=1e-12, abs=1e-9)
    assert set(submitted) <= set(expected)


def test_snapshots_match_the_stream(dataset):
    summary, events = dataset
    expected = _expected_overage(events)
    end = START + timedelta(days=SMALL["days"])
    pending = {k: q for k, q in expected.items() if k[2] >= end - timedelta(hours=3)}
    last_sequence = defaultdict(int)
    for e in events:
        last_sequence[e.partition] = max(last_sequence[e.partition], e.sequence)
    reported = {}
    tracked = set()
    for path in summary.snapshot_files:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            snapshot = json.load(f)
        partition = int(path.parent.name)
        assert snapshot["lastProcessedMessage"]["sequenceNumber"] == str(last_sequence[partition])
        for meter in snapshot["meters"]:
            sub = meter["subscription"]
            tracked.add(_key(sub))
            for dimension in sub["plan"]["billingDimensions"].values():
                value = dimension["meter"]
                assert set(value) in ({"included"}, {"consumed"}, {"total", "consumption", "lastUpdate"})
            for item in meter["usageToBeReported"]:
                reported[(_key(item), item["dimension"],
                          datetime.strptime(item["effectiveStartTime"], "%Y-%m-%dT%H:%M:%SZ"))] = item["quantity"]
        for item in snapshot["unprocessable"]:
            assert item["event"]["type"] == "UnprocessableMessage"
    assert reported.keys() == pending.keys()
    assert all(reported[k] == pytest.approx(q, rel=1e-12) for k, q in pending.items())
    deleted = {_key(e.message["value"]) for e in events if e.message and e.message["type"] == "SubscriptionDeleted"}
    assert tracked == set(_purchases(events)) - deleted


def test_generation_does_not_hold_the_stream_in_memory(tmp_path):
    def peak(days: int) -> tuple[int, int]:
        tracemalloc.start()
        summary = generate(tmp_path / str(days), subscriptions=15, days=days, seed=2)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top, sum(p.stat().st_size for p in summary.capture_dir.rglob("*.avro"))

    short_peak, _ = peak(4)
    long_peak, long_bytes = peak(24)
    assert long_peak < long_bytes / 5
    assert long_peak < 2 * short_peak + 1_000_000


def test_usage_model_has_seasonality_churn_decline_and_a_mix_of_customers():
    start, days = epoch_ms(START), 365
    population = build_population(300, start, start + days * DAY_MS, 4, seed=9)
    model = UsageModel(population, start, 1.6, seed=9)
    churned = [s for s in population if s.deletion_ms is not None]
    assert 0.08 <= len(churned) / len(population) <= 0.16
    assert sum(s.purchase_ms < start + DAY_MS for s in population) >= 0.1 * len(population)
    assert {s.plan.plan_id for s in population} == {p.plan_id for p in PLANS}
    assert any(s.shift for s in population) and any(s.fill > 1.3 for s in population)
    assert any(s.fill < 0.4 for s in population)
    saturday = (datetime(2025, 7, 19) - START).days
    week = [model.expected(h).sum() for h in range(saturday * 24, (saturday + 7) * 24)]
    per_day = [sum(week[d * 24:(d + 1) * 24]) for d in range(7)]
    weekend, weekdays = per_day[0] + per_day[1], sum(per_day[2:])
    assert weekend / 2 < 0.75 * weekdays / 5
    fading = [s for s in churned if s.deletion_ms - s.purchase_ms > 40 * DAY_MS]
    assert fading
    for sub in fading:
        def mean_rate(end_ms: int, days_back: int) -> float:
            hours = range((end_ms - start) // HOUR_MS - days_back * 24, (end_ms - start) // HOUR_MS)
            return sum(model.expected(h)[sub.index].sum() for h in hours) / len(hours)
        assert mean_rate(sub.deletion_ms - HOUR_MS, 7) < 0.6 * mean_rate(sub.decline_from_ms, 14)


# -- Spark --------------------------------------------------------------------------------------

def test_spark_reads_the_files_with_the_capture_schema(spark, dataset):
    summary, _ = dataset
    df = (spark.read.format("avro").option("recursiveFileLookup", "true").option("pathGlobFilter", "*.avro")
          .load(str(summary.capture_dir)))
    assert [(f.name, f.dataType.simpleString()) for f in df.schema] == \
        [(f.name, f.dataType.simpleString()) for f in schemas.CAPTURE_SPARK_SCHEMA]
    parsed = df.select(
        F.to_timestamp("EnqueuedTimeUtc", "M/d/yyyy h:mm:ss a").alias("parsed"),
        F.timestamp_seconds(F.floor(F.col("SystemProperties")["x-opt-enqueued-time"]["member0"] / 1000)).alias("ms"),
    )
    row = parsed.agg(F.count("*").alias("n"), F.count("parsed").alias("ok"),
                     F.sum(F.when(F.col("parsed") == F.col("ms"), 1).otherwise(0)).alias("same")).first()
    assert row["n"] == row["ok"] == row["same"] == summary.events_total
