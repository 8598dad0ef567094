"""run_gold end to end on a tiny lakehouse: every persona table written and registered (the one test that writes)."""
from __future__ import annotations

from datetime import datetime as dt
from decimal import Decimal

import pytest

from billing_helpers import (
    meter,
    plan_dimensions_df,
    subscription,
    subscriptions_df,
    usage_df,
)
from gold_helpers import expected_usage, marketplace_usage_df, simple_usage
from metering_analytics.billing.prices import parse_price_catalog
from metering_analytics.billing.reference import SimpleDimension, WaterfallDimension
from metering_analytics.gold.alerts import OverageAlertError
from metering_analytics.gold.settings import parse_gold_settings
from metering_analytics.gold.stage import GOLD_PERSONA_SCHEMAS, report_overage_alerts, run_gold
from metering_analytics.io.lakehouse import Lakehouse

AS_OF = dt(2024, 3, 10, 12)
PRICES = parse_price_catalog({"currency": "USD", "store_fee_percent": 3, "plans": {"p": {
    "recurring_fee": {"Monthly": 30.0}, "unit_prices": {"d": 0.5, "t1": 0.1, "t2": 0.05}}}}, "test")
SETTINGS = parse_gold_settings({"overage_alerts": {"thresholds": {"p": {"d": {"units_per_day": 1}}}}}, "test")


def test_run_gold_writes_every_persona_table(spark, tmp_path):
    lakehouse = Lakehouse(root=str(tmp_path / "lakehouse"))
    tables = {
        ("silver", "subscriptions"): subscriptions_df(spark, [subscription("s1", dt(2024, 2, 1), plan="p"),
                                                              subscription("s2", dt(2024, 2, 15), plan="p")]),
        ("silver", "plan_dimensions"): plan_dimensions_df(spark, [
            meter(k, m, d, plan="p") for k in ("s1", "s2")
            for m, d in (("api", SimpleDimension("d", 10)), ("egress", WaterfallDimension((("t1", 5), ("t2", 5)))))
        ]),
        ("silver", "usage_events"): usage_df(spark, [
            simple_usage("s1", "api", "d", 8, dt(2024, 3, 9, 10), 1, plan="p"),
            simple_usage("s1", "api", "d", 4, dt(2024, 3, 10, 11), 2, plan="p"),
            simple_usage("s2", "egress", None, 7, dt(2024, 3, 10, 9), 3, plan="p"),
        ]),
        # what billing derives from the above (its own tests cover that); the other tables are missing
        # and read as empty, as on a first run
        ("gold", "marketplace_usage"): marketplace_usage_df(spark, [
            expected_usage("s1", "d", dt(2024, 3, 10, 11), 2, plan="p"),
            expected_usage("s2", "t1", dt(2024, 3, 10, 9), 2, plan="p"),
        ]),
    }
    for (layer, table), df in tables.items():
        lakehouse.overwrite(df, layer, table)

    counts = run_gold(spark, lakehouse, SETTINGS, AS_OF, PRICES)

    assert set(counts) == {f"gold.{t}" for t in GOLD_PERSONA_SCHEMAS}
    assert counts["gold.cs_consumption_hourly"] == 3
    assert counts["gold.sales_usage_by_product_hourly"] == 4  # api; egress usage, its tier t1 overage
    assert counts["gold.ops_throughput"] == 0  # no bronze in this lakehouse
    # every table is registered for SQL, as on Databricks
    mrr = spark.sql("SELECT month, active_subscriptions, mrr FROM gold.sales_mrr WHERE month = '2024-03-01'")
    assert [tuple(r) for r in mrr.collect()] == [(dt(2024, 3, 1).date(), 2, Decimal(60))]

    lines = []
    report_overage_alerts(spark, lakehouse, SETTINGS, lines.append)
    assert lines == ["overage alert: p/d units_per_day 2024-03-10: 2 > 1, breaching since 2024-03-10 (1 consecutive)"]
    failing = parse_gold_settings({"overage_alerts": {"fail_on_alert": True,
                                                      "thresholds": {"p": {"d": {"units_per_day": 1}}}}}, "test")
    with pytest.raises(OverageAlertError, match="p/d units_per_day 2024-03-10"):
        report_overage_alerts(spark, lakehouse, failing, lambda line: None)
