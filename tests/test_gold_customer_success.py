"""Customer success tables: consumption per hour and day, the current cycle's run-rate, the summary."""
from __future__ import annotations

from datetime import date, datetime as dt

from chispa import assert_df_equality

from billing_helpers import subscription, subscriptions_df, usage_df
from gold_helpers import balance, balances_df, simple_usage
from metering_analytics.gold.customer_success import (
    CONSUMPTION_DAILY_SCHEMA,
    CONSUMPTION_HOURLY_SCHEMA,
    CURRENT_CYCLE_SCHEMA,
    SUBSCRIPTION_SUMMARY_SCHEMA,
    consumption_daily,
    consumption_hourly,
    current_cycle,
    subscription_summary,
)

AS_OF = dt(2024, 3, 11)


def _equal(actual, expected):
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_consumption_per_hour_and_day(spark):
    events = usage_df(spark, [
        simple_usage("s1", "api", "api_calls", 1.1, dt(2024, 3, 1, 10, 5), 1),
        simple_usage("s1", "api", "api_calls", 2.2, dt(2024, 3, 1, 10, 40), 2),
        simple_usage("s1", "api", "api_calls", 5, dt(2024, 3, 1, 11), 3),
        simple_usage("s1", "egress", None, 7, dt(2024, 3, 1, 10, 10), 4),  # waterfall: no dimension yet
        simple_usage("s2", "api", "api_calls", 1, dt(2024, 3, 2, 23, 59, 59), 5),
    ])
    hourly = consumption_hourly(events)
    _equal(hourly, spark.createDataFrame([
        # the sum is exact: 1.1 + 2.2 is 3.3, not 3.3000000000000003
        (dt(2024, 3, 1, 10), "s1", "plan", "api", "api_calls", 2, 3.3),
        (dt(2024, 3, 1, 11), "s1", "plan", "api", "api_calls", 1, 5.0),
        (dt(2024, 3, 1, 10), "s1", "plan", "egress", None, 1, 7.0),
        (dt(2024, 3, 2, 23), "s2", "plan", "api", "api_calls", 1, 1.0),
    ], CONSUMPTION_HOURLY_SCHEMA))
    _equal(consumption_daily(hourly), spark.createDataFrame([
        (date(2024, 3, 1), "s1", "plan", "api", "api_calls", 3, 8.3),
        (date(2024, 3, 1), "s1", "plan", "egress", None, 1, 7.0),
        (date(2024, 3, 2), "s2", "plan", "api", "api_calls", 1, 1.0),
    ], CONSUMPTION_DAILY_SCHEMA))


def test_current_cycle_run_rate_projection(spark):
    start, end = dt(2024, 3, 1), dt(2024, 4, 1)  # 31 days; as_of is 10 days in
    last = dt(2024, 3, 10, 12)
    balances = balances_df(spark, [
        # 50 a day: 1,550 by the end, the 1,000 included run out on day 20
        balance("a", "api", 2, start, end, used=500, included=1000, current=True, last_usage=last),
        # Infinite: never runs out, never overage
        balance("b", "api", 2, start, end, used=300, included=None, current=True, last_usage=last),
        # waterfall free band of 100: 31 projected, it lasts the cycle
        balance("c", "egress", 2, start, end, used=10, included=100, dimension=None, dimension_type="waterfall",
                current=True, last_usage=last),
        # already exhausted: the run-rate says it ran out on day 2.5
        balance("d", "api", 2, start, end, used=400, included=100, current=True, last_usage=last),
        # a cycle that starts at as_of: no time elapsed, no projection
        balance("e", "api", 0, AS_OF, dt(2024, 4, 11), used=0, included=100, current=True),
        balance("a", "api", 1, dt(2024, 2, 1), start, used=900, included=1000),  # not current
    ])

    def row(key, meter, dim_type, dim, index, start_, end_, included, infinite, used, remaining, overage, days,
            elapsed, left, projected, projected_overage, run_out, last_usage):
        return (key, "plan", "Monthly", meter, dim_type, dim, index, start_, end_, included, infinite, used,
                remaining, overage, days, elapsed, left, projected, projected_overage, run_out, last_usage, AS_OF)

    expected = spark.createDataFrame([
        row("a", "api", "simple", "d", 2, start, end, 1000.0, False, 500.0, 500.0, 0.0, 31.0, 10.0, 21.0,
            1550.0, 550.0, date(2024, 3, 21), last),
        row("b", "api", "simple", "d", 2, start, end, None, True, 300.0, None, 0.0, 31.0, 10.0, 21.0,
            930.0, 0.0, None, last),
        row("c", "egress", "waterfall", None, 2, start, end, 100.0, False, 10.0, 90.0, 0.0, 31.0, 10.0, 21.0,
            31.0, 0.0, None, last),
        row("d", "api", "simple", "d", 2, start, end, 100.0, False, 400.0, 0.0, 300.0, 31.0, 10.0, 21.0,
            1240.0, 1140.0, date(2024, 3, 3), last),
        row("e", "api", "simple", "d", 0, AS_OF, dt(2024, 4, 11), 100.0, False, 0.0, 100.0, 0.0, 31.0, 0.0, 31.0,
            None, None, None, None),
    ], CURRENT_CYCLE_SCHEMA)
    _equal(current_cycle(balances, AS_OF), expected)


def test_subscription_summary(spark):
    subscriptions = subscriptions_df(spark, [
        subscription("s1", dt(2024, 1, 15, 10), "Monthly"),
        subscription("s2", dt(2023, 6, 1), "Annually", deleted_at=dt(2024, 2, 20, 12)),
    ])
    balances = balances_df(spark, [
        balance("s1", "api", 0, dt(2024, 1, 15), dt(2024, 2, 15), used=5, included=10,
                last_usage=dt(2024, 2, 11, 23, 30)),
        balance("s1", "api", 1, dt(2024, 2, 15), dt(2024, 3, 15), used=5, included=10, current=True,
                last_usage=dt(2024, 3, 10, 23, 50)),
    ])
    hourly = spark.createDataFrame([
        (dt(2024, 3, 11), "s1", "plan", "api", "d", 50, 1.0),  # at as_of: not before it
        (dt(2024, 3, 10, 23), "s1", "plan", "api", "d", 3, 1.0),  # last 4 weeks: from Feb 12 00:00
        (dt(2024, 2, 12), "s1", "plan", "api", "d", 5, 1.0),
        (dt(2024, 2, 11, 23), "s1", "plan", "api", "d", 4, 1.0),  # the 4 weeks before: from Jan 15 00:00
        (dt(2024, 1, 15), "s1", "plan", "api", "d", 1, 1.0),
        (dt(2024, 1, 14, 23), "s1", "plan", "api", "d", 100, 1.0),  # neither
    ], CONSUMPTION_HOURLY_SCHEMA)
    expected = spark.createDataFrame([
        ("s1", "s1", None, "plan", "Monthly", "saas", "active", dt(2024, 1, 15, 10), None, 56, date(2024, 3, 15),
         dt(2024, 3, 10, 23, 50), 8, 5, 60.0, AS_OF),
        ("s2", "s2", None, "plan", "Annually", "saas", "deleted", dt(2023, 6, 1), dt(2024, 2, 20, 12), 264, None,
         None, 0, 0, None, AS_OF),
    ], SUBSCRIPTION_SUMMARY_SCHEMA)
    _equal(subscription_summary(subscriptions, balances, hourly, AS_OF), expected)
