"""gold.sales_mrr: recurring run-rate plus the month's billed overage, and ChartMogul-style movements.

Prices: plan p Monthly 30, Annually 360 (30 a month); p/d 0.5 a unit. as_of 2024-04-15 12:00.
  s1  Monthly from Jan 10: 30 a month, plus billed overage: Feb 4 units (2), Mar 2 (1), Apr 10 (5).
  s2  Annually from Feb 5, deleted Mar 20: active at the February close, churned in March (its March
      overage does not count: it is not active at the March close).
  s3  Monthly from Mar 31: active on March's last day, so new in March.
  s4  Monthly from Feb 10 to Feb 20: never active at a close, never counted.
  s5  starts after as_of.
"""
from __future__ import annotations

from datetime import date, datetime as dt
from decimal import Decimal

from chispa import assert_df_equality

from billing_helpers import subscription, subscriptions_df
from gold_helpers import reconciled, reconciliation_df
from metering_analytics.billing.prices import parse_price_catalog
from metering_analytics.gold.mrr import SALES_MRR_SCHEMA, sales_mrr, subscription_mrr

AS_OF = dt(2024, 4, 15, 12)
PRICES = parse_price_catalog(
    {"currency": "USD", "store_fee_percent": 3,
     "plans": {"p": {"recurring_fee": {"Monthly": 30.0, "Annually": 360.0}, "unit_prices": {"d": 0.5}}}},
    "test",
)


def test_mrr_arr_and_movements(spark):
    subscriptions = subscriptions_df(spark, [
        subscription("s1", dt(2024, 1, 10, 8), "Monthly", plan="p"),
        subscription("s2", dt(2024, 2, 5), "Annually", plan="p", deleted_at=dt(2024, 3, 20, 10)),
        subscription("s3", dt(2024, 3, 31, 22), "Monthly", plan="p"),
        subscription("s4", dt(2024, 2, 10), "Monthly", plan="p", deleted_at=dt(2024, 2, 20)),
        subscription("s5", dt(2024, 4, 20), "Monthly", plan="p"),
    ])
    reconciliation = reconciliation_df(spark, [
        reconciled("s1", "d", dt(2024, 2, 10, 10), "matched", expected=4, billed=4, plan="p"),
        reconciled("s1", "d", dt(2024, 3, 5, 1), "billed_not_expected", billed=2, plan="p"),
        reconciled("s1", "d", dt(2024, 4, 2), "matched", expected=10, billed=10, plan="p"),
        reconciled("s1", "d", dt(2024, 4, 3), "pending", expected=8, plan="p"),  # not billed: no revenue
        reconciled("s2", "d", dt(2024, 3, 2), "matched", expected=6, billed=6, plan="p"),
        reconciled(None, "d", dt(2024, 3, 2), "billed_not_expected", billed=6, plan="p"),  # no subscription
    ])
    months = subscription_mrr(subscriptions, reconciliation, PRICES, AS_OF)

    def month(m, active, recurring, overage, new, expansion, contraction, churned):
        mrr = recurring + overage
        counts_amounts = []
        for n, amount in (new, expansion, contraction, churned):
            counts_amounts += [n, Decimal(amount)]
        net = sum(Decimal(amount) for _, amount in (new, expansion, contraction, churned))
        return (m, "p", "USD", active, Decimal(recurring), Decimal(overage), Decimal(mrr), Decimal(12 * mrr),
                *counts_amounts, net)

    expected = spark.createDataFrame([
        # month, active, recurring, overage, (n, new), (n, expansion), (n, contraction), (n, churned)
        month(date(2024, 1, 1), 1, 30, 0, (1, 30), (0, 0), (0, 0), (0, 0)),
        month(date(2024, 2, 1), 2, 60, 2, (1, 30), (1, 2), (0, 0), (0, 0)),
        month(date(2024, 3, 1), 2, 60, 1, (1, 30), (0, 0), (1, -1), (1, -30)),
        month(date(2024, 4, 1), 2, 60, 5, (0, 0), (1, 4), (0, 0), (0, 0)),  # month to date
    ], SALES_MRR_SCHEMA)
    assert_df_equality(sales_mrr(months, "USD"), expected, ignore_row_order=True, ignore_nullable=True)
