"""Property-based: the Spark accounting agrees with the reference on random histories.

Each example is one Spark job over many subscriptions at once: random starts (often on the 29th-31st
or Feb 29), every renewal interval, Infinite / 0 / fractional included quantities, waterfalls whose
tiers one event can cross, several meters sharing a dimension, and usage placed exactly on cycle
boundaries (and a microsecond either side) as well as at random times.
"""
from __future__ import annotations

import calendar
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from billing_helpers import meter, plan_dimensions_df, subscription, subscriptions_df, usage, usage_df
from metering_analytics.billing.balances import included_balance
from metering_analytics.billing.marketplace import marketplace_usage
from metering_analytics.billing.overage import event_overage, usage_cycles
from metering_analytics.billing.reference import (
    RENEWAL_MONTHS,
    SimpleDimension,
    SubscriptionAccountant,
    WaterfallDimension,
    cycle_start,
    hour_of,
)

TOLERANCE = 1e-6
AS_OF = datetime(2031, 6, 15, 12)
MICROSECOND = timedelta(microseconds=1)


@st.composite
def starts(draw):
    year = draw(st.sampled_from([2020, 2021, 2023, 2024]))
    month = draw(st.integers(1, 12))
    day = draw(st.sampled_from([1, 15, 28, 29, 30, 31]))
    day = min(day, calendar.monthrange(year, month)[1])
    seconds = draw(st.sampled_from([0, 1, 43_200, 86_399]) | st.integers(0, 86_399))
    return datetime(year, month, day) + timedelta(seconds=seconds)


quantities = st.one_of(
    st.sampled_from([0.0, 0.1, 0.2, 0.3, 1.0, 2.5, 10.0, 33.3, 100.0, 1000.25]),
    st.integers(0, 200_000).map(lambda n: n / 1000),
)
thresholds = st.sampled_from([0.0, 0.5, 1.0, 2.5, 10.0, 40.0, 100.0, 333.3])
simple_meters = st.builds(
    SimpleDimension,
    dimension=st.sampled_from(["d1", "d2"]),
    included=st.sampled_from([None, 0.0, 0.5, 1.0, 10.0, 50.0, 125.75, 1000.0]),
)
waterfall_meters = st.builds(
    lambda tiers: WaterfallDimension(tuple(tiers)),
    st.lists(st.tuples(st.sampled_from(["t1", "t2", "t3", "d1"]), thresholds), min_size=1, max_size=4),
)


@st.composite
def histories(draw):
    start = draw(starts())
    renewal = draw(st.sampled_from(list(RENEWAL_MONTHS)))
    months = RENEWAL_MONTHS[renewal]
    meters = {f"m{i}": m for i, m in enumerate(draw(st.lists(simple_meters | waterfall_meters, min_size=1,
                                                             max_size=3)))}
    horizon = cycle_start(start, months, 3) - start

    def event_time():
        if draw(st.booleans()):
            boundary = cycle_start(start, months, draw(st.integers(1, 3)))
            return boundary + draw(st.sampled_from([-MICROSECOND, timedelta(0), timedelta(0), MICROSECOND]))
        return start + timedelta(seconds=draw(st.integers(0, int(horizon.total_seconds()))))

    events = [(event_time(), draw(st.sampled_from(sorted(meters))), draw(quantities))
              for _ in range(draw(st.integers(0, 12)))]
    # Bursts in one hour, so hourly sums and ties in enqueued time are exercised.
    if events and draw(st.booleans()):
        at, name, _ = events[0]
        events += [(at, name, draw(quantities)) for _ in range(draw(st.integers(1, 4)))]
    return start, renewal, meters, sorted(events, key=lambda e: e[0])


def _expected(history, key):
    start, renewal, meters, events = history
    accountant = SubscriptionAccountant(meters, RENEWAL_MONTHS[renewal], start)
    hourly = {}
    for at, name, quantity in events:
        for dimension, part in accountant.consume(at, name, quantity).items():
            hourly[(key, dimension, hour_of(at))] = hourly.get((key, dimension, hour_of(at)), 0.0) + part
    balances = {(key, name, k): b for (name, k), b in accountant.cycle_balances().items()}
    remaining_now = {(key, name): accountant.included_remaining(name, AS_OF) for name in meters}
    return {k: v for k, v in hourly.items() if v > TOLERANCE}, balances, remaining_now


def _close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= TOLERANCE


# Few examples of many subscriptions each: the cost is per Spark job, not per subscription.
@settings(max_examples=10, deadline=None)
@given(st.lists(histories(), min_size=1, max_size=20))
def test_spark_accounting_matches_the_reference(spark, many):
    subs, meter_rows, usage_rows = [], [], []
    expected_hourly, expected_balances, expected_now = {}, {}, {}
    sequence = 0
    for i, history in enumerate(many):
        key = f"sub-{i}"
        start, renewal, meters, events = history
        subs.append(subscription(key, start, renewal))
        meter_rows += [meter(key, name, definition) for name, definition in meters.items()]
        for at, name, quantity in events:
            sequence += 1
            # Alternate partitions: order within a subscription must come from the time, then sequence.
            usage_rows.append(usage(key, name, quantity, at, sequence, partition=str(i % 2)))
        hourly, balances, now = _expected(history, key)
        expected_hourly.update(hourly)
        expected_balances.update(balances)
        expected_now.update(now)

    subscriptions = subscriptions_df(spark, subs)
    plan_dimensions = plan_dimensions_df(spark, meter_rows)
    event_cycles = usage_cycles(usage_df(spark, usage_rows), subscriptions).cache()
    try:
        hourly_rows = marketplace_usage(event_overage(event_cycles, plan_dimensions), subscriptions).collect()
        balance_rows = included_balance(event_cycles, subscriptions, plan_dimensions, AS_OF).collect()
    finally:
        event_cycles.unpersist()

    actual_hourly = {(r.subscription_key, r.dimension, r.effective_start_time): r.quantity for r in hourly_rows}
    assert set(actual_hourly) == set(expected_hourly)
    for k, quantity in expected_hourly.items():
        assert abs(actual_hourly[k] - quantity) <= TOLERANCE, (k, actual_hourly[k], quantity)

    with_usage = {(r.subscription_key, r.meter_name, r.cycle_index): r for r in balance_rows if r.usage_events > 0}
    assert set(with_usage) == set(expected_balances)
    for k, balance in expected_balances.items():
        row = with_usage[k]
        assert _close(row.included_quantity, balance.included), k
        assert _close(row.total_usage, balance.total_usage), k
        assert _close(row.consumed_included, balance.consumed_included), k
        assert _close(row.overage_quantity, balance.overage), k
        assert _close(row.remaining_included, balance.remaining_included), k

    current = {(r.subscription_key, r.meter_name): r for r in balance_rows if r.is_current_cycle}
    assert set(current) == set(expected_now)  # every meter of every (undeleted) subscription
    for k, remaining in expected_now.items():
        assert _close(current[k].remaining_included, remaining), k
    assert all(r.is_current_cycle for r in balance_rows if r.usage_events == 0)
