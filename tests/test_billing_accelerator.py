"""The accelerator's own BusinessLogic scenarios, end to end through `run_billing`.

Silver rows are built from the sample JSON files (enqueued times from their file names) and written to
a throw-away lakehouse; the gold tables are read back.

RefreshIncludedQuantities (2-years from 2021-11-04): 1000 included; usage 1, 500, 498 leaves 999, 499, 1;
usage 2 on 2023-11-03 (still cycle 0, which ends 2023-11-04) uses the last 1 and bills 1 unit of
overage for hour 2023-11-03T00:00; the accelerator submitted exactly that and Marketplace accepted it.

RefreshIncludedQuantitiesMonthly (Monthly from 2021-11-04): by the rules the usage of 2022-12-01 falls
in the cycle 2022-11-04 .. 2022-12-04, which starts with a full 1000, so 500 + 498 + 2 = 1000 is all
included and nothing is overage. The accelerator did not refill (its state after step 002 shows 499
left, design brief rule 6), billed 1 unit for hour 2022-12-03T00:00, and Marketplace accepted it (step
006). The rules expect no usage at all for that key, so gold.marketplace_usage has no row and the
reconciliation reports the accepted unit as `billed_not_expected` (expected 0, billed 1, difference -1)
rather than `quantity_mismatch`, which needs an expected row.
"""
from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from billing_helpers import (
    meter,
    plan_dimensions_df,
    submission,
    submissions_df,
    subscription,
    subscriptions_df,
    usage,
    usage_df,
)
from metering_analytics.billing.marketplace import MARKETPLACE_USAGE_SCHEMA
from metering_analytics.billing.overage import usage_cycles, with_running_totals
from metering_analytics.billing.prices import parse_price_catalog
from metering_analytics.billing.reference import SimpleDimension
from metering_analytics.billing.stage import run_billing
from metering_analytics.io.lakehouse import Lakehouse

RESOURCE_ID = "fdc778a6-1281-40e4-cade-4a5fc11f5440"
DIMENSION = "someDimensionAsAzureMarketplaceCallsIt"
METER = "dimAsWeCallItAppInternally"
PRICES = parse_price_catalog(
    {
        "currency": "USD",
        "store_fee_percent": 3,
        "plans": {"mySaaSPlan": {"recurring_fee": {"Monthly": 30, "2-years": 720},
                                 "unit_prices": {DIMENSION: 0.25}}},
    },
    "test prices",
)


def _messages(folder: Path):
    """(sequence number, enqueued time, message) for every event file, in order."""
    for path in sorted(folder.glob("*--event--*.json")):
        sequence, _, stamp = path.name.split("--", 2)
        enqueued = datetime.strptime(stamp[: len("2021-11-04--16-12-26")], "%Y-%m-%d--%H-%M-%S")
        yield int(sequence), enqueued, json.loads(path.read_text(encoding="utf-8-sig"))


def _timestamp(text: str) -> datetime:
    whole, _, fraction = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(whole + ("." + fraction[:6] if fraction else ""))


def _silver(spark, folder: Path):
    subs, meters, events, submissions = [], [], [], []
    for sequence, enqueued, message in _messages(folder):
        value = message["value"]
        if message["type"] == "SubscriptionPurchased":
            s = value["subscription"]
            subs.append(subscription(s["resourceId"], _timestamp(s["subscriptionStart"]), s["renewalInterval"],
                                     plan=s["plan"]["planId"]))
            for name, d in s["plan"]["billingDimensions"].items():
                meters.append(meter(s["resourceId"], name, SimpleDimension(d["dimension"], float(d["included"])),
                                    plan=s["plan"]["planId"]))
        elif message["type"] == "UsageReported":
            events.append(usage(value["resourceId"], value["meterName"], value["quantity"], enqueued, sequence,
                                plan="mySaaSPlan"))
        elif message["type"] == "UsageSubmittedToAPI":
            r = value["result"]
            row = submission(sequence, r["status"], resource_id=r["resourceId"], resource_uri=r["resourceUri"],
                             plan=r["planId"], dimension=r["dimension"], hour=_timestamp(r["effectiveStartTime"]),
                             quantity=float(r["quantity"]), enqueued=enqueued)
            row.update(usage_event_id=r["usageEventId"], message_time=_timestamp(r["messageTime"]))
            submissions.append(row)
    return (subscriptions_df(spark, subs), plan_dimensions_df(spark, meters), usage_df(spark, events),
            submissions_df(spark, submissions))


@pytest.fixture
def lakehouse(spark, tmp_path, request):
    name = request.node.name.replace("[", "_").replace("]", "").replace("-", "_")
    schemas = {layer: f"billing_{name}_{layer}" for layer in ("bronze", "silver", "gold")}
    yield Lakehouse(root=str(tmp_path / "lakehouse"), schemas=schemas)
    # The tables were registered in the session catalog under names of their own: leave nothing behind.
    for schema in schemas.values():
        spark.sql(f"DROP DATABASE IF EXISTS `{schema}` CASCADE")


def _run(spark, lakehouse, folder, as_of):
    subscriptions, plan_dimensions, usage_events, submissions = _silver(spark, folder)
    for table, df in (("subscriptions", subscriptions), ("plan_dimensions", plan_dimensions),
                      ("usage_events", usage_events), ("marketplace_submissions", submissions)):
        lakehouse.overwrite(df, "silver", table)
    counts = run_billing(spark, lakehouse, PRICES, as_of=as_of)
    return counts, {t: lakehouse.read(spark, "gold", t) for t in
                    ("marketplace_usage", "included_balance", "billing_reconciliation", "revenue_daily")}


def _remaining_after_each_event(spark, folder):
    subscriptions, _, usage_events, _ = _silver(spark, folder)
    totals = with_running_totals(usage_cycles(usage_events, subscriptions)).orderBy("sequence_number")
    return [(r.sequence_number, float(max(Decimal(1000) - r.usage_after, Decimal(0)))) for r in totals.collect()]


def test_refresh_included_quantities(spark, samples_dir, lakehouse):
    folder = samples_dir / "BusinessLogic" / "RefreshIncludedQuantities"
    assert _remaining_after_each_event(spark, folder) == [(1, 999.0), (2, 499.0), (3, 1.0), (4, 0.0)]

    # as of step 007, the first ping of the new cycle: the included quantity is back to 1000
    counts, gold = _run(spark, lakehouse, folder, as_of=datetime(2023, 11, 5, 16, 15))
    assert_df_equality(
        gold["marketplace_usage"],
        spark.createDataFrame([(RESOURCE_ID, RESOURCE_ID, None, "mySaaSPlan", DIMENSION, datetime(2023, 11, 3), 1.0)],
                              MARKETPLACE_USAGE_SCHEMA),
        ignore_nullable=True,
    )
    balances = gold["included_balance"].orderBy("cycle_index").select(
        "cycle_index", "cycle_start", "cycle_end", "total_usage", "consumed_included", "overage_quantity",
        "remaining_included", "is_current_cycle").collect()
    assert [tuple(r) for r in balances] == [
        (0, datetime(2021, 11, 4), datetime(2023, 11, 4), 1001.0, 1000.0, 1.0, 0.0, False),
        (1, datetime(2023, 11, 4), datetime(2025, 11, 4), 0.0, 0.0, 0.0, 1000.0, True),
    ]
    reconciliation = gold["billing_reconciliation"].select(
        "effective_start_time", "expected_quantity", "billed_quantity", "status").collect()
    assert [tuple(r) for r in reconciliation] == [(datetime(2023, 11, 3), 1.0, 1.0, "matched")]
    overage = gold["revenue_daily"].where(F.col("dimension") == DIMENSION).select(
        "day", "overage_quantity", "overage_revenue").collect()
    assert [tuple(r) for r in overage] == [(datetime(2023, 11, 3).date(), 1.0, Decimal("0.250000"))]
    assert counts["gold.marketplace_usage"] == 1
    assert counts["gold.included_balance"] == 2
    assert counts["gold.billing_reconciliation"] == 1


def test_refresh_included_quantities_monthly(spark, samples_dir, lakehouse):
    folder = samples_dir / "BusinessLogic" / "RefreshIncludedQuantitiesMonthly"
    # The rules refill on 2022-11-04: 500 left after 2022-12-01, where the accelerator had 499.
    assert _remaining_after_each_event(spark, folder) == [(1, 999.0), (2, 500.0), (3, 2.0), (4, 0.0)]

    counts, gold = _run(spark, lakehouse, folder, as_of=datetime(2022, 12, 4, 0, 0, 5))
    assert gold["marketplace_usage"].count() == 0
    reconciliation = gold["billing_reconciliation"].select(
        "subscription_key", "plan_id", "dimension", "effective_start_time", "expected_quantity", "billed_quantity",
        "difference", "status", "submission_status").collect()
    assert [tuple(r) for r in reconciliation] == [
        (RESOURCE_ID, "mySaaSPlan", DIMENSION, datetime(2022, 12, 3), 0.0, 1.0, -1.0, "billed_not_expected",
         "Accepted"),
    ]
    balances = gold["included_balance"].orderBy("cycle_index").select(
        "cycle_index", "cycle_start", "total_usage", "overage_quantity", "remaining_included",
        "is_current_cycle").collect()
    assert [tuple(r) for r in balances] == [
        (0, datetime(2021, 11, 4), 1.0, 0.0, 999.0, False),
        (12, datetime(2022, 11, 4), 1000.0, 0.0, 0.0, False),
        # step 008: the first ping of the cycle starting 2022-12-04 sees a full balance
        (13, datetime(2022, 12, 4), 0.0, 0.0, 1000.0, True),
    ]
    # What Marketplace accepted is billed revenue even where the rules disagree.
    overage = gold["revenue_daily"].where(F.col("dimension") == DIMENSION).select(
        "day", "overage_quantity", "overage_revenue").collect()
    assert [tuple(r) for r in overage] == [(datetime(2022, 12, 3).date(), 1.0, Decimal("0.250000"))]
    assert counts["gold.billing_reconciliation"] == 1
