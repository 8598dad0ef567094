"""gold.overage_alerts: breaches of configured thresholds, runs of consecutive periods, CLI lines and the check."""
from __future__ import annotations

from datetime import datetime as dt

import pytest
from chispa import assert_df_equality

from billing_helpers import meter, plan_dimensions_df
from gold_helpers import balance, balances_df, expected_usage, marketplace_usage_df
from metering_analytics.billing.reference import SimpleDimension, WaterfallDimension
from metering_analytics.gold.alerts import (
    OVERAGE_ALERTS_SCHEMA,
    OverageAlertError,
    assert_no_overage_alerts,
    format_alerts,
    overage_alerts,
)
from metering_analytics.gold.settings import parse_gold_settings, thresholds_frame

AS_OF = dt(2024, 3, 3, 6)
SETTINGS = parse_gold_settings({"overage_alerts": {"thresholds": {
    "p": {
        "d": {"units_per_day": 10, "units_per_month": 25, "percent_of_included_per_cycle": 50},
        "t1": {"percent_of_included_per_cycle": 100},  # a waterfall meter, under its first tier
    },
}}}, "test")


@pytest.fixture(scope="module")
def alerts(spark):
    usage = marketplace_usage_df(spark, [
        expected_usage("s1", "d", dt(2024, 2, 28, 10), 11, plan="p"),  # breach
        expected_usage("s1", "d", dt(2024, 3, 1, 10), 6, plan="p"),  # with s2: 12, a breach
        expected_usage("s2", "d", dt(2024, 3, 1, 23), 6, plan="p"),
        expected_usage("s1", "d", dt(2024, 3, 2, 10), 10, plan="p"),  # equal is not above
        expected_usage("s1", "d", dt(2024, 3, 3, 1), 10.5, plan="p"),  # breach, today
        expected_usage("s1", "t1", dt(2024, 3, 3, 1), 10.5, plan="p"),  # no threshold for units of t1
    ])
    dimensions = plan_dimensions_df(spark, [
        meter("s1", "api", SimpleDimension("d", 100), plan="p"),
        meter("s1", "egress", WaterfallDimension((("t1", 10), ("t2", 20))), plan="p"),
        meter("s2", "api", SimpleDimension("d", 0), plan="p"),
    ])
    jan, feb, mar, apr = dt(2024, 1, 1), dt(2024, 2, 1), dt(2024, 3, 1), dt(2024, 4, 1)
    balances = balances_df(spark, [
        balance("s1", "api", 0, jan, feb, used=160, included=100, plan="p"),  # 60 %
        balance("s1", "api", 1, feb, mar, used=151, included=100, plan="p"),  # 51 %
        balance("s1", "api", 2, mar, apr, used=137.5, included=100, plan="p", current=True),  # 37.5 %: fine
        balance("s1", "egress", 2, mar, apr, used=31, included=10, plan="p", dimension=None,
                dimension_type="waterfall", current=True),  # 210 % of the free band
        balance("s2", "api", 2, mar, apr, used=12, included=0, plan="p", current=True),  # no allowance
    ])
    # several tests read it: computed once
    return overage_alerts(usage, balances, dimensions, thresholds_frame(spark, SETTINGS), AS_OF).cache()


def test_breaches_and_their_runs(spark, alerts):
    def day(d, value, since, n, current=False):
        return ("units_per_day", "p", "d", None, None, dt(2024, *d), dt(2024, d[0], d[1] + 1), value, 10.0,
                dt(2024, *since), n, current)

    expected = spark.createDataFrame([
        day((2, 28), 11.0, (2, 28), 1),
        day((3, 1), 12.0, (3, 1), 1),  # Feb 29 had no breach: a new run
        day((3, 3), 10.5, (3, 3), 1, current=True),
        ("units_per_month", "p", "d", None, None, dt(2024, 3, 1), dt(2024, 4, 1), 32.5, 25.0, dt(2024, 3, 1), 1, True),
        ("percent_of_included_per_cycle", "p", "d", "api", "s1", dt(2024, 1, 1), dt(2024, 2, 1), 60.0, 50.0,
         dt(2024, 1, 1), 1, False),
        ("percent_of_included_per_cycle", "p", "d", "api", "s1", dt(2024, 2, 1), dt(2024, 3, 1), 51.0, 50.0,
         dt(2024, 1, 1), 2, False),
        ("percent_of_included_per_cycle", "p", "t1", "egress", "s1", dt(2024, 3, 1), dt(2024, 4, 1), 210.0, 100.0,
         dt(2024, 3, 1), 1, True),
    ], OVERAGE_ALERTS_SCHEMA)
    assert_df_equality(alerts, expected, ignore_row_order=True, ignore_nullable=True)


def test_current_alerts_are_printed_and_fail_the_check(alerts):
    lines = [
        "overage alert: p/d units_per_day 2024-03-03: 10.5 > 10, breaching since 2024-03-03 (1 consecutive)",
        "overage alert: p/d units_per_month 2024-03: 32.5 > 25, breaching since 2024-03-01 (1 consecutive)",
        "overage alert: p/t1 s1 percent_of_included_per_cycle cycle 2024-03-01..2024-04-01: 210% > 100%, "
        "breaching since 2024-03-01 (1 consecutive)",
    ]
    assert format_alerts(alerts) == lines
    assert format_alerts(alerts, limit=1) == lines[:1] + [
        "... and 2 more current overage alerts (see gold.overage_alerts)"]
    with pytest.raises(OverageAlertError, match="units_per_month 2024-03: 32.5 > 25"):
        assert_no_overage_alerts(alerts)
    assert_no_overage_alerts(alerts.where("not is_current"))  # past breaches do not fail a run
