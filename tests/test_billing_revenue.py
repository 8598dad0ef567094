"""gold.revenue_daily: recurring fees spread over each cycle's days, billed overage, store fee, lost value.

Prices: plan p Monthly 10.00; plan q Annually 365.00; p/d 0.5 and p/t 0.0015 per unit; store fee 3 %.
  s1  p Monthly from 2024-01-29: cycle Jan 29 - Feb 29 (31 days: 0.322581 a day, the last day 0.32257),
      then Feb 29 - Mar 29 (29 days: 0.344828 a day).
  s2  p Monthly from 2024-02-10, deleted at midnight starting Feb 12: active Feb 10 and 11 only.
  s3  q Annually from 2023-03-01: a 366-day cycle (0.997268 a day, the last day 0.99718), then 1.00 a day.
as_of 2024-03-01 06:00: nothing is recognised after that day.
"""
from __future__ import annotations

from datetime import date, datetime as dt
from decimal import Decimal

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from billing_helpers import subscription, subscriptions_df
from metering_analytics.billing.prices import parse_price_catalog
from metering_analytics.billing.reconciliation import RECONCILIATION_SCHEMA
from metering_analytics.billing.revenue import REVENUE_DAILY_SCHEMA, revenue_daily

AS_OF = dt(2024, 3, 1, 6)
CATALOG = parse_price_catalog(
    {
        "currency": "EUR",
        "store_fee_percent": 3,
        "plans": {
            "p": {"recurring_fee": {"Monthly": 10.0}, "unit_prices": {"d": 0.5, "t": 0.0015}},
            "q": {"recurring_fee": {"Annually": 365.0}},
        },
    },
    "test",
)


def _reconciled(hour, dimension, status, expected, billed):
    return ("s1", "s1", None, "p", dimension, hour, expected, billed, expected - billed, status, None, 1, None, None,
            None, None)


@pytest.fixture(scope="module")
def revenue(spark):
    subscriptions = subscriptions_df(spark, [
        subscription("s1", dt(2024, 1, 29, 14), "Monthly", plan="p"),
        subscription("s2", dt(2024, 2, 10, 9), "Monthly", plan="p", deleted_at=dt(2024, 2, 12)),
        subscription("s3", dt(2023, 3, 1, 17), "Annually", plan="q"),
    ])
    reconciliation = spark.createDataFrame(
        [
            _reconciled(dt(2024, 2, 10, 10), "d", "matched", 3.0, 3.0),
            _reconciled(dt(2024, 2, 10, 11), "d", "billed_not_expected", 0.0, 1.0),
            _reconciled(dt(2024, 2, 11, 5), "t", "quantity_mismatch", 1000.0, 1000.5),
            _reconciled(dt(2024, 2, 12, 1), "d", "expired", 2.0, 0.0),
            _reconciled(dt(2024, 2, 12, 2), "d", "rejected", 4.0, 0.0),
            _reconciled(dt(2024, 2, 12, 3), "d", "pending", 3.0, 0.0),
        ],
        RECONCILIATION_SCHEMA,
    )
    return revenue_daily(subscriptions, reconciliation, CATALOG, AS_OF)


def test_revenue_rows(spark, revenue):
    d = Decimal
    zero = d(0)

    def q_day(day, amount, fee, net):
        return (day, "q", "(recurring)", "EUR", d(amount), 0.0, zero, d(amount), d(fee), d(net), 0.0, zero, 0.0, zero)

    rows = [
        q_day(date(2024, 2, 10), "0.997268", "0.029918", "0.96735"),
        q_day(date(2024, 2, 11), "0.997268", "0.029918", "0.96735"),
        q_day(date(2024, 2, 12), "0.997268", "0.029918", "0.96735"),
        q_day(date(2024, 2, 28), "0.997268", "0.029918", "0.96735"),
        # the last day of the 366-day cycle takes the remainder: 365 - 365 x 0.997268
        q_day(date(2024, 2, 29), "0.99718", "0.029915", "0.967265"),
        q_day(date(2024, 3, 1), "1", "0.03", "0.97"),
        # day, plan, dimension, currency, recurring, overage qty, overage revenue, gross, store fee, net,
        # expired qty, expired value, rejected qty, rejected value
        (date(2024, 2, 10), "p", "(recurring)", "EUR", d("0.667409"), 0.0, zero, d("0.667409"), d("0.020022"),
         d("0.647387"), 0.0, zero, 0.0, zero),
        (date(2024, 2, 10), "p", "d", "EUR", zero, 4.0, d("2"), d("2"), d("0.06"), d("1.94"), 0.0, zero, 0.0, zero),
        (date(2024, 2, 11), "p", "(recurring)", "EUR", d("0.667409"), 0.0, zero, d("0.667409"), d("0.020022"),
         d("0.647387"), 0.0, zero, 0.0, zero),
        (date(2024, 2, 11), "p", "t", "EUR", zero, 1000.5, d("1.50075"), d("1.50075"), d("0.045023"), d("1.455727"),
         0.0, zero, 0.0, zero),
        (date(2024, 2, 12), "p", "(recurring)", "EUR", d("0.322581"), 0.0, zero, d("0.322581"), d("0.009677"),
         d("0.312904"), 0.0, zero, 0.0, zero),
        # expired and rejected usage is lost revenue, not gross; pending is neither yet
        (date(2024, 2, 12), "p", "d", "EUR", zero, 0.0, zero, zero, zero, zero, 2.0, d("1"), 4.0, d("2")),
        (date(2024, 2, 28), "p", "(recurring)", "EUR", d("0.32257"), 0.0, zero, d("0.32257"), d("0.009677"),
         d("0.312893"), 0.0, zero, 0.0, zero),
        (date(2024, 2, 29), "p", "(recurring)", "EUR", d("0.344828"), 0.0, zero, d("0.344828"), d("0.010345"),
         d("0.334483"), 0.0, zero, 0.0, zero),
        (date(2024, 3, 1), "p", "(recurring)", "EUR", d("0.344828"), 0.0, zero, d("0.344828"), d("0.010345"),
         d("0.334483"), 0.0, zero, 0.0, zero),
    ]
    expected = spark.createDataFrame(rows, REVENUE_DAILY_SCHEMA)
    days = [date(2024, 2, 10), date(2024, 2, 11), date(2024, 2, 12), date(2024, 2, 28), date(2024, 2, 29),
            date(2024, 3, 1), date(2024, 3, 2)]
    assert_df_equality(revenue.where(F.col("day").isin(days)), expected, ignore_row_order=True,
                       ignore_nullable=True)


def test_a_full_cycle_recognises_exactly_its_fee(revenue):
    def total(plan, first, last):
        return revenue.where((F.col("plan_id") == plan) & F.col("day").between(first, last)) \
            .agg(F.sum("recurring_revenue")).first()[0]

    assert total("q", date(2023, 3, 1), date(2024, 2, 29)) == Decimal("365.000000")
    # s1's first cycle plus s2's two days
    assert total("p", date(2024, 1, 29), date(2024, 2, 28)) == Decimal("10.689656")
    assert revenue.where(F.col("day") > date(2024, 3, 1)).count() == 0
    assert revenue.where(F.col("day") < date(2023, 3, 1)).count() == 0
