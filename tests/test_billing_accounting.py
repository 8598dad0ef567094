"""gold.marketplace_usage and gold.included_balance on small hand-made inputs, expected rows written out.

Subscriptions (as of 2026-04-10 00:00):
  A  Monthly from Jan 31 (cycles Jan 31, Feb 28, Mar 31, ...), 100 included; usage exactly at a boundary.
  B  Annually from Feb 29 2020, waterfall C = 100, 1100, 1600; one event crosses three tiers; deleted.
  C  2-years from Dec 30 2022, an Infinite meter and a meter with 0 included; identified by URI.
  D  3-years from Mar 29 2023; usage exactly at the 3-year boundary; a meter whose included is missing.
  E  starts after as_of: no rows.
  F  Monthly from Jan 15 2026, deleted at as_of, mid-cycle: no current cycle.
"""
from __future__ import annotations

from datetime import datetime as dt

import pytest
from chispa import assert_df_equality

from billing_helpers import meter, plan_dimensions_df, subscription, subscriptions_df, usage, usage_df
from metering_analytics.billing.balances import INCLUDED_BALANCE_SCHEMA, included_balance
from metering_analytics.billing.marketplace import MARKETPLACE_USAGE_SCHEMA, marketplace_usage
from metering_analytics.billing.overage import event_overage, usage_cycles
from metering_analytics.billing.reference import SimpleDimension, WaterfallDimension

AS_OF = dt(2026, 4, 10)


@pytest.fixture(scope="module")
def silver(spark):
    subs = [
        subscription("A", dt(2021, 1, 31, 10), "Monthly"),
        subscription("B", dt(2020, 2, 29, 5), "Annually", deleted_at=dt(2021, 6, 15, 12)),
        subscription("/subs/c", dt(2022, 12, 30, 23), "2-years", resource_id="c-id", resource_uri="/subs/c"),
        subscription("D", dt(2023, 3, 29, 16), "3-years"),
        subscription("E", dt(2026, 4, 20), "Monthly"),
        subscription("F", dt(2026, 1, 15, 8), "Monthly", deleted_at=AS_OF),
    ]
    missing_included = meter("D", "missing", SimpleDimension("x", 0.0))
    missing_included["included_quantity"] = None
    meters = [
        meter("A", "calls", SimpleDimension("api_calls", 100)),
        meter("B", "egress", WaterfallDimension((("t1", 100), ("t2", 1000), ("t3", 500)))),
        meter("/subs/c", "inf", SimpleDimension("unlimited", None)),
        meter("/subs/c", "zero", SimpleDimension("z", 0)),
        meter("D", "m", SimpleDimension("d", 10)),
        missing_included,
        meter("E", "m", SimpleDimension("e", 5)),
        meter("F", "m", SimpleDimension("f", 5)),
    ]
    events = [
        usage("A", "calls", 80, dt(2021, 1, 31, 10, 5), 1),
        usage("A", "calls", 30, dt(2021, 2, 27, 23, 30), 2),
        usage("A", "calls", 120, dt(2021, 2, 28), 3),
        usage("A", "calls", 5, dt(2021, 3, 30, 23, 59, 59), 4),
        usage("A", "calls", 100, dt(2021, 3, 31), 5),
        usage("B", "egress", 50, dt(2020, 3, 1, 1, 10), 6, partition="1"),
        usage("B", "egress", 2000, dt(2020, 3, 1, 1, 20), 7, partition="1"),
        usage("B", "egress", 0.1, dt(2021, 2, 27), 8, partition="1"),
        usage("B", "egress", 0.2, dt(2021, 2, 27), 9, partition="1"),
        usage("B", "egress", 150, dt(2021, 2, 28), 10, partition="1"),
        usage("/subs/c", "inf", 1e6, dt(2023, 1, 1), 11),
        usage("/subs/c", "zero", 0.1, dt(2023, 1, 1, 5, 10), 12),
        usage("/subs/c", "zero", 0.2, dt(2023, 1, 1, 5, 50), 13),
        usage("D", "m", 4, dt(2023, 3, 29, 16, 30), 14),
        usage("D", "m", 11, dt(2026, 3, 29), 15),
        usage("D", "missing", 2, dt(2026, 4, 1), 16),
        usage("F", "m", 7, dt(2026, 4, 5), 17),
    ]
    subscriptions = subscriptions_df(spark, subs)
    plan_dimensions = plan_dimensions_df(spark, meters)
    event_cycles = usage_cycles(usage_df(spark, events), subscriptions)
    return subscriptions, plan_dimensions, event_cycles


def test_marketplace_usage(spark, silver):
    subscriptions, plan_dimensions, event_cycles = silver
    actual = marketplace_usage(event_overage(event_cycles, plan_dimensions), subscriptions)
    expected = spark.createDataFrame(
        [
            ("A", "A", None, "plan", "api_calls", dt(2021, 2, 27, 23), 10.0),
            ("A", "A", None, "plan", "api_calls", dt(2021, 2, 28, 0), 20.0),  # new cycle at its first instant
            ("A", "A", None, "plan", "api_calls", dt(2021, 3, 30, 23), 5.0),
            # 50 free, then 2000 spans [50, 2050): 50 free, 1000 t1, 500 t2, 450 t3
            ("B", "B", None, "plan", "t1", dt(2020, 3, 1, 1), 1000.0),
            ("B", "B", None, "plan", "t2", dt(2020, 3, 1, 1), 500.0),
            ("B", "B", None, "plan", "t3", dt(2020, 3, 1, 1), 450.0),
            ("B", "B", None, "plan", "t3", dt(2021, 2, 27, 0), 0.3),
            ("B", "B", None, "plan", "t1", dt(2021, 2, 28, 0), 50.0),  # Feb 28 2021: cycle 1, totals reset
            ("/subs/c", "c-id", "/subs/c", "plan", "z", dt(2023, 1, 1, 5), 0.3),
            ("D", "D", None, "plan", "d", dt(2026, 3, 29, 0), 1.0),
            ("D", "D", None, "plan", "x", dt(2026, 4, 1, 0), 2.0),
            ("F", "F", None, "plan", "f", dt(2026, 4, 5, 0), 2.0),
        ],
        MARKETPLACE_USAGE_SCHEMA,
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_included_balance(spark, silver):
    subscriptions, plan_dimensions, event_cycles = silver
    actual = included_balance(event_cycles, subscriptions, plan_dimensions, AS_OF)
    a = ("A", "A", None, "plan", "Monthly", "calls", "simple", "api_calls")
    b = ("B", "B", None, "plan", "Annually", "egress", "waterfall", None)
    c_inf = ("/subs/c", "c-id", "/subs/c", "plan", "2-years", "inf", "simple", "unlimited")
    c_zero = ("/subs/c", "c-id", "/subs/c", "plan", "2-years", "zero", "simple", "z")
    d_m = ("D", "D", None, "plan", "3-years", "m", "simple", "d")
    d_missing = ("D", "D", None, "plan", "3-years", "missing", "simple", "x")
    f = ("F", "F", None, "plan", "Monthly", "m", "simple", "f")
    expected = spark.createDataFrame(
        [
            # key, k, cycle start, cycle end, included, infinite, total, consumed, overage, remaining, events,
            # last usage, current
            a + (0, dt(2021, 1, 31), dt(2021, 2, 28), 100.0, False, 110.0, 100.0, 10.0, 0.0, 2,
                 dt(2021, 2, 27, 23, 30), False),
            a + (1, dt(2021, 2, 28), dt(2021, 3, 31), 100.0, False, 125.0, 100.0, 25.0, 0.0, 2,
                 dt(2021, 3, 30, 23, 59, 59), False),
            a + (2, dt(2021, 3, 31), dt(2021, 4, 30), 100.0, False, 100.0, 100.0, 0.0, 0.0, 1, dt(2021, 3, 31), False),
            # no usage this cycle: still shown, with the full balance
            a + (62, dt(2026, 3, 31), dt(2026, 4, 30), 100.0, False, 0.0, 0.0, 0.0, 100.0, 0, None, True),
            # waterfall: the included quantity is the free band C_0; deleted, so no current cycle
            b + (0, dt(2020, 2, 29), dt(2021, 2, 28), 100.0, False, 2050.3, 100.0, 1950.3, 0.0, 4, dt(2021, 2, 27),
                 False),
            b + (1, dt(2021, 2, 28), dt(2022, 2, 28), 100.0, False, 150.0, 100.0, 50.0, 0.0, 1, dt(2021, 2, 28), False),
            c_inf + (0, dt(2022, 12, 30), dt(2024, 12, 30), None, True, 1e6, 1e6, 0.0, None, 1, dt(2023, 1, 1), False),
            c_inf + (1, dt(2024, 12, 30), dt(2026, 12, 30), None, True, 0.0, 0.0, 0.0, None, 0, None, True),
            c_zero + (0, dt(2022, 12, 30), dt(2024, 12, 30), 0.0, False, 0.3, 0.0, 0.3, 0.0, 2, dt(2023, 1, 1, 5, 50),
                      False),
            c_zero + (1, dt(2024, 12, 30), dt(2026, 12, 30), 0.0, False, 0.0, 0.0, 0.0, 0.0, 0, None, True),
            d_m + (0, dt(2023, 3, 29), dt(2026, 3, 29), 10.0, False, 4.0, 4.0, 0.0, 6.0, 1, dt(2023, 3, 29, 16, 30),
                   False),
            d_m + (1, dt(2026, 3, 29), dt(2029, 3, 29), 10.0, False, 11.0, 10.0, 1.0, 0.0, 1, dt(2026, 3, 29), True),
            d_missing + (1, dt(2026, 3, 29), dt(2029, 3, 29), 0.0, False, 2.0, 0.0, 2.0, 0.0, 1, dt(2026, 4, 1), True),
            # deleted exactly at as_of, mid-cycle: the cycle is there, but it is nobody's current cycle
            f + (2, dt(2026, 3, 15), dt(2026, 4, 15), 5.0, False, 7.0, 5.0, 2.0, 0.0, 1, dt(2026, 4, 5), False),
        ],
        INCLUDED_BALANCE_SCHEMA,
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
