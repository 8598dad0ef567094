"""A tiny silver (and bronze) lakehouse written the way the silver stage writes it, in two parts: data A,
then data B (new usage, a late event in an older open cycle, a new subscription, a deletion, new
submissions and other messages), for the incremental billing and gold tests."""
from __future__ import annotations

from datetime import datetime as dt
from datetime import timedelta

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from billing_helpers import meter, submission, subscription
from metering_analytics.billing.prices import parse_price_catalog
from metering_analytics.billing.reference import SimpleDimension, WaterfallDimension
from metering_analytics.gold.settings import parse_gold_settings
from metering_analytics.io.lakehouse import Lakehouse
from metering_analytics.schemas import (
    BRONZE_EVENTS_SCHEMA,
    SILVER_MAINTENANCE_SCHEMA,
    SILVER_PINGS_SCHEMA,
    SILVER_QUARANTINE_SCHEMA,
    SILVER_SUBSCRIPTION_LIFECYCLE_SCHEMA,
)
from metering_analytics.silver.stage import KEY, SILVER_TABLES, ensure_silver_tables

PRICES = parse_price_catalog({"currency": "USD", "store_fee_percent": 3, "plans": {"p": {
    "recurring_fee": {"Monthly": 30.0, "Annually": 300.0},
    "unit_prices": {"d": 0.5, "t1": 0.1, "t2": 0.05}}}}, "test")
SETTINGS = parse_gold_settings({
    "overage_alerts": {"thresholds": {"p": {"d": {"units_per_day": 1, "percent_of_included_per_cycle": 50}}}},
    "usage_by_property": {"keys": ["region"], "top_values": 1},
    "heatmap": {"lookback_days": 30},
}, "test")

METERS = (("api", SimpleDimension("d", 10)), ("egress", WaterfallDimension((("t1", 5), ("t2", 5)))))


def usage_row(seq: int, key: str, meter_name: str, quantity: float, at: dt, region: str | None = None) -> dict:
    return dict(partition_id=str(seq % 2), sequence_number=seq, subscription_key=key, resource_id=key,
                resource_uri=None, plan_id="p", meter_name=meter_name, dimension="d" if meter_name == "api" else None,
                quantity=float(quantity), enqueued_time=at, event_timestamp=at,
                properties=None if region is None else {"region": region})


def part_a() -> dict:
    subs = [subscription("s1", dt(2024, 1, 15), plan="p"), subscription("s2", dt(2024, 2, 1), plan="p"),
            subscription("s3", dt(2024, 1, 1), "Annually", plan="p")]
    usage, seq = [], 100
    start = dt(2024, 1, 16, 3)
    for i in range(60):  # about every 26 h, Jan 16 .. Mar 20
        at = start + timedelta(hours=26 * i)
        for key in ("s1", "s2", "s3"):
            if key == "s2" and at < dt(2024, 2, 1):
                continue
            seq += 1
            usage.append(usage_row(seq, key, "api" if seq % 3 else "egress", 1 + seq % 4, at,
                                ("eu", "us", None)[seq % 3]))
    submissions = [
        submission(1, "Accepted", resource_id="s1", plan="p", dimension="d", hour=dt(2024, 2, 20, 9), quantity=2.0),
        submission(2, "Duplicate", resource_id="s2", plan="p", dimension="t1", hour=dt(2024, 3, 1, 3), quantity=9.0,
                   accepted={"resource_id": "s2", "plan_id": "p", "dimension": "t1",
                             "effective_start_time": dt(2024, 3, 1, 3), "quantity": 1.0}),
        submission(3, "Expired", resource_id="s3", plan="p", dimension="d", hour=dt(2024, 3, 2, 5), quantity=1.0),
        # for a subscription purchased only in part B
        submission(4, "Accepted", resource_id="s4", plan="p", dimension="d", hour=dt(2024, 3, 20, 10), quantity=1.0),
    ]
    return dict(subscriptions=subs, usage=usage, submissions=submissions,
                pings=[_ping(900, dt(2024, 3, 1, 1))], quarantine=[_quarantined(950, dt(2024, 2, 2, 2))])


def part_b(a: dict) -> dict:
    last = max(u["enqueued_time"] for u in a["usage"])
    subs = [s for s in a["subscriptions"] if s["subscription_key"] != "s3"] + [
        {**subscription("s3", dt(2024, 1, 1), "Annually", plan="p"), "deleted_at": last + timedelta(hours=2),
         "deleted_partition_id": "1", "deleted_sequence_number": 2001},
        subscription("s4", dt(2024, 3, 19, 8), plan="p"),
    ]
    usage = [
        usage_row(1001, "s1", "api", 7, last + timedelta(hours=1), "eu"),
        usage_row(1002, "s2", "egress", 6, last + timedelta(hours=1, minutes=5), "us"),
        usage_row(1003, "s4", "api", 12, last + timedelta(hours=3), "eu"),
        # late: enqueued in s1's previous cycle (Feb 15 - Mar 15), after other usage of that cycle
        usage_row(1004, "s1", "api", 9, dt(2024, 2, 16, 0, 30), "us"),
        usage_row(1005, "s3", "api", 2, last + timedelta(hours=1, minutes=30), None),
    ]
    submissions = [submission(5, "Accepted", resource_id="s1", plan="p", dimension="d",
                              hour=dt(2024, 2, 16, 0), quantity=5.0, enqueued=last + timedelta(hours=2))]
    return dict(subscriptions=subs, usage=usage, submissions=submissions,
                pings=[_ping(901, last + timedelta(hours=3))], quarantine=[_quarantined(951, last + timedelta(hours=2))])


def part_c(b: dict) -> dict:
    """One more usage event an hour after part B: changes no top-N value of usage_by_property (unlike
    part B), and neither quarantine nor submissions."""
    last = max(u["enqueued_time"] for u in b["usage"])
    return dict(subscriptions=b["subscriptions"], usage=[usage_row(1101, "s1", "api", 1, last + timedelta(hours=1), "eu")],
                submissions=[], pings=[], quarantine=[])


def _ping(seq: int, at: dt) -> dict:
    return dict(partition_id="0", sequence_number=seq, enqueued_time=at, reported_partition_id="0",
                local_time=at, reason="test", sender="s")


def _quarantined(seq: int, at: dt) -> dict:
    row = {f.name: None for f in SILVER_QUARANTINE_SCHEMA.fields}
    row.update(partition_id="1", sequence_number=seq, enqueued_time=at, enqueued_date=at.date(),
               message_type="UsageReported", reason="unknown_meter", source_file="f.avro", quarantined_at=at)
    return row


def _frame(spark: SparkSession, rows: list[dict], schema):
    return spark.createDataFrame([tuple(r.get(f.name) for f in schema.fields) for r in rows], schema)


def write_part(spark: SparkSession, lakehouse: Lakehouse, part: dict) -> None:
    """Append a part as silver does: MERGE of new records, subscriptions and plan dimensions re-derived
    (overwritten) whole; bronze gets one record per silver record and one never parsed."""
    ensure_silver_tables(spark, lakehouse)
    lakehouse.ensure_table(spark, "bronze", "events", BRONZE_EVENTS_SCHEMA)
    lakehouse.overwrite(_frame(spark, part["subscriptions"], SILVER_TABLES["subscriptions"]), "silver", "subscriptions")
    dims = [meter(s["subscription_key"], m, d, plan="p") for s in part["subscriptions"] for m, d in METERS]
    lakehouse.overwrite(_frame(spark, dims, SILVER_TABLES["plan_dimensions"]), "silver", "plan_dimensions")
    lifecycle = [dict(partition_id="0", sequence_number=s["sequence_number"] + i * 10 + 5000, enqueued_time=s["purchased_at"],
                      message_type="SubscriptionPurchased", resource_id=s["subscription_key"])
                 for i, s in enumerate(part["subscriptions"])]
    frames = {
        "usage_events": _frame(spark, part["usage"], SILVER_TABLES["usage_events"]),
        "marketplace_submissions": _frame(spark, part["submissions"], SILVER_TABLES["marketplace_submissions"]),
        "pings": _frame(spark, part["pings"], SILVER_PINGS_SCHEMA),
        "maintenance": _frame(spark, [], SILVER_MAINTENANCE_SCHEMA),
        "subscription_lifecycle": _frame(spark, lifecycle, SILVER_SUBSCRIPTION_LIFECYCLE_SCHEMA),
        "quarantine": _frame(spark, part["quarantine"], SILVER_QUARANTINE_SCHEMA),
    }
    records = []
    for table, df in frames.items():
        if not df.isEmpty():
            lakehouse.merge_insert_new(df, "silver", table, keys=KEY)
            records.append(df.select(*KEY, "enqueued_time"))
    bronze = records[0]
    for df in records[1:]:
        bronze = bronze.unionByName(df)
    bronze = bronze.unionByName(bronze.limit(1).withColumn("sequence_number", F.lit(-1).cast("long")))
    bronze = bronze.select(*[
        (F.col(f.name) if f.name in ("partition_id", "sequence_number", "enqueued_time") else F.lit(None))
        .cast(f.dataType).alias(f.name) for f in BRONZE_EVENTS_SCHEMA.fields
    ]).withColumn("source_file", F.lit("capture.avro")).withColumn("ingested_at", F.current_timestamp()) \
        .withColumn("event_hub", F.lit("hub")).withColumn("enqueued_date", F.to_date("enqueued_time"))
    lakehouse.merge_insert_new(bronze, "bronze", "events", keys=KEY)


def clock(part: dict) -> dt:
    return max(u["enqueued_time"] for u in part["usage"])
