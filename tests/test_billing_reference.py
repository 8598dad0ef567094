"""The reference accounting (plain Python) against hand-worked examples of the rules."""
from __future__ import annotations

from datetime import datetime as dt

import pytest

from metering_analytics.billing.reference import (
    SimpleDimension,
    SubscriptionAccountant,
    WaterfallDimension,
    cycle_index,
    cycle_start,
    hourly_overage,
)


def test_cycles_are_computed_from_the_start_date_and_cut_back_to_month_end():
    start = dt(2023, 1, 31, 17, 45)
    assert [cycle_start(start, 1, k) for k in range(5)] == [
        dt(2023, 1, 31), dt(2023, 2, 28), dt(2023, 3, 31), dt(2023, 4, 30), dt(2023, 5, 31)
    ]
    assert cycle_start(dt(2024, 1, 30), 1, 1) == dt(2024, 2, 29)
    assert [cycle_start(dt(2020, 2, 29, 8), 12, k) for k in range(5)] == [
        dt(2020, 2, 29), dt(2021, 2, 28), dt(2022, 2, 28), dt(2023, 2, 28), dt(2024, 2, 29)
    ]
    assert cycle_start(dt(2021, 8, 31), 24, 1) == dt(2023, 8, 31)
    assert cycle_start(dt(2021, 5, 29), 36, 1) == dt(2024, 5, 29)


def test_cycle_index_at_and_around_boundaries():
    start = dt(2023, 1, 31, 17, 45)
    assert cycle_index(start, 1, dt(2023, 1, 31, 0, 0)) == 0  # the start day counts from midnight
    assert cycle_index(start, 1, dt(2023, 2, 27, 23, 59, 59, 999999)) == 0
    assert cycle_index(start, 1, dt(2023, 2, 28)) == 1
    assert cycle_index(start, 1, dt(2023, 3, 30, 23)) == 1
    assert cycle_index(start, 1, dt(2023, 3, 31)) == 2
    assert cycle_index(start, 12, dt(2024, 1, 30)) == 0
    assert cycle_index(start, 12, dt(2024, 1, 31)) == 1
    assert cycle_index(start, 1, dt(2023, 1, 30)) == -1


def test_included_then_overage_then_refill():
    accountant = SubscriptionAccountant({"m": SimpleDimension("d", 10)}, 1, dt(2023, 1, 31, 9))
    assert accountant.consume(dt(2023, 1, 31, 10), "m", 4) == {}
    assert accountant.included_remaining("m", dt(2023, 2, 1)) == 6
    assert accountant.consume(dt(2023, 2, 27, 23), "m", 7.5) == {"d": 1.5}
    assert accountant.included_remaining("m", dt(2023, 2, 27, 23)) == 0
    # The next cycle starts Feb 28 (Jan 31 cut back) and refills.
    assert accountant.included_remaining("m", dt(2023, 2, 28)) == 10
    assert accountant.consume(dt(2023, 2, 28), "m", 10) == {}
    assert accountant.consume(dt(2023, 2, 28), "m", 0.25) == {"d": 0.25}


def test_infinite_never_overflows_and_zero_or_missing_included_bills_everything():
    meters = {"inf": SimpleDimension("i", None), "zero": SimpleDimension("z", 0), "missing": SimpleDimension("x")}
    accountant = SubscriptionAccountant(meters, 12, dt(2020, 2, 29))
    assert accountant.consume(dt(2020, 3, 1), "inf", 1e15) == {}
    assert accountant.included_remaining("inf", dt(2020, 3, 1)) is None
    assert accountant.consume(dt(2020, 3, 1), "zero", 0.1) == {"z": 0.1}
    assert accountant.consume(dt(2020, 3, 1), "missing", 3) == {"x": 3.0}


def test_one_event_crosses_several_waterfall_tiers():
    # C = 100, 1100, 1600: [0,100) free, [100,1100) t1, [1100,1600) t2, [1600, inf) t3
    meters = {"egress": WaterfallDimension((("t1", 100), ("t2", 1000), ("t3", 500)))}
    accountant = SubscriptionAccountant(meters, 1, dt(2024, 2, 29))
    assert accountant.consume(dt(2024, 3, 1), "egress", 50) == {}
    assert accountant.consume(dt(2024, 3, 1), "egress", 2000) == {"t1": 1000.0, "t2": 500.0, "t3": 450.0}
    assert accountant.included_remaining("egress", dt(2024, 3, 1)) == 0
    balances = accountant.cycle_balances()
    assert balances[("egress", 0)].overage == 1950.0
    assert balances[("egress", 0)].consumed_included == 100.0


def test_hourly_overage_sums_decimal_quantities_exactly():
    events = [(dt(2023, 5, 1, 10, m), "m", q) for m, q in ((0, 0.1), (10, 0.2), (20, 0.3))]
    assert hourly_overage({"m": SimpleDimension("d", 0)}, 1, dt(2023, 5, 1), events) == {
        ("d", dt(2023, 5, 1, 10)): 0.6
    }


def test_usage_before_the_start_or_out_of_order_is_refused():
    accountant = SubscriptionAccountant({"m": SimpleDimension("d", 1)}, 1, dt(2023, 5, 1, 12))
    with pytest.raises(ValueError, match="before the subscription start"):
        accountant.consume(dt(2023, 5, 1, 11), "m", 1)
    accountant.consume(dt(2023, 5, 2), "m", 1)
    with pytest.raises(ValueError, match="not in order"):
        accountant.consume(dt(2023, 5, 1, 13), "m", 1)
