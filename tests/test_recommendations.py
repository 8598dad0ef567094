"""Plan recommendations on a hand-made case, costed with billing's rules and checked by hand."""
from __future__ import annotations

from datetime import datetime as dt
from decimal import Decimal

import pytest

from billing_helpers import meter, plan_dimensions_df, subscription, subscriptions_df, usage, usage_df
from metering_analytics.billing.balances import included_balance
from metering_analytics.billing.overage import usage_cycles
from metering_analytics.billing.prices import parse_price_catalog
from metering_analytics.billing.reference import SimpleDimension, WaterfallDimension
from metering_analytics.config import ConfigError
from metering_analytics.models.recommendations.costing import NO_COMPLETE_CYCLE
from metering_analytics.models.recommendations.settings import RecommendationSettings, parse_recommendation_settings
from metering_analytics.models.recommendations.stage import plan_recommendations

AS_OF = dt(2024, 4, 15, 12)
PRICES = parse_price_catalog({
    "currency": "USD", "store_fee_percent": 3.0,
    "plans": {
        "starter": {"recurring_fee": {"Monthly": 100.0}, "unit_prices": {"api_calls": 0.01}},
        "pro": {"recurring_fee": {"Monthly": 110.0},
                "unit_prices": {"api_calls": 0.005, "egress_t1": 0.1, "egress_t2": 0.05}},
        "mini": {"recurring_fee": {"Monthly": 20.0}, "unit_prices": {"api_calls": 0.02}},
        "yearly": {"recurring_fee": {"Annually": 900.0}, "unit_prices": {"api_calls": 0.0}},
        "compute": {"recurring_fee": {"Monthly": 10.0}, "unit_prices": {"compute_hours": 0.1}},
        "unsold": {"recurring_fee": {"Monthly": 1.0}, "unit_prices": {"api_calls": 0.0}},
    },
}, "test prices")


def _meters(key, plan):
    definitions = {
        "starter": {"api": SimpleDimension("api_calls", 1000.0)},
        "pro": {"api": SimpleDimension("api_calls", 10000.0),
                "egress": WaterfallDimension((("egress_t1", 100.0), ("egress_t2", 1000.0)))},
        "mini": {"api": SimpleDimension("api_calls", 0.0)},
        "yearly": {"api": SimpleDimension("api_calls", None)},
        "compute": {"compute": SimpleDimension("compute_hours", 5.0)},
    }[plan]
    return [meter(key, name, d, plan=plan) for name, d in definitions.items()]


@pytest.fixture(scope="module")
def table(spark):
    subs = [
        subscription("a", dt(2024, 1, 1), plan="starter"),
        subscription("b", dt(2024, 2, 1), plan="pro"),
        subscription("m", dt(2023, 6, 1), plan="mini"),  # defines "mini"
        subscription("y", dt(2023, 6, 1), "Annually", plan="yearly"),
        subscription("c", dt(2024, 1, 1), plan="compute"),
        subscription("gone", dt(2024, 1, 1), plan="starter", deleted_at=dt(2024, 4, 1)),
        subscription("new", dt(2024, 4, 2), plan="starter"),
    ]
    plan_dims = [m for s in subs for m in _meters(s["subscription_key"], s["plan_id"])]
    events = []
    seq = iter(range(1, 1000))
    # a: api 5,000, 6,000 and 4,000 in Jan, Feb, Mar; April (current cycle) is not evaluated.
    for month, total in ((1, 5000), (2, 6000), (3, 4000), (4, 90000)):
        events += [usage("a", "api", total / 2, dt(2024, month, 3, h), next(seq), plan="starter") for h in (1, 2)]
    # b: api 2,000 and egress 1,500 in Feb and Mar.
    for month in (2, 3):
        events.append(usage("b", "api", 2000, dt(2024, month, 5), next(seq), plan="pro"))
        events.append(usage("b", "egress", 1500, dt(2024, month, 6), next(seq), plan="pro"))
    subs_df, dims_df = subscriptions_df(spark, subs), plan_dimensions_df(spark, plan_dims)
    balance = included_balance(usage_cycles(usage_df(spark, events), subs_df), subs_df, dims_df, AS_OF)
    rows = plan_recommendations(subs_df, dims_df, balance, PRICES, AS_OF, RecommendationSettings()).collect()
    return {(r["subscription_key"], r["candidate_plan_id"]): r for r in rows}


def test_costs_under_every_plan_by_the_billing_rules(table):
    # a on starter, Jan-Mar: overage (5,000-1,000) + (6,000-1,000) + (4,000-1,000) = 12,000 x 0.01 = 120,
    # fees 3 x 100 = 300: 420.
    current = table[("a", "starter")]
    assert current["is_current_plan"] and current["cycles_evaluated"] == 3
    assert (current["first_cycle_start"], current["last_cycle_end"]) == (dt(2024, 1, 1), dt(2024, 4, 1))
    assert (current["recurring_cost"], current["overage_cost"], current["total_cost"]) == \
        (Decimal("300.000000"), Decimal("120.000000"), Decimal("420.000000"))
    # pro: 10,000 included covers every month: 3 x 110 = 330, saving 90.
    pro = table[("a", "pro")]
    assert (pro["overage_cost"], pro["total_cost"], pro["saving"]) == \
        (Decimal("0E-6"), Decimal("330.000000"), Decimal("90.000000"))
    # mini: nothing included, 15,000 x 0.02 = 300 + 3 x 20 = 360, saving 60 (not the cheapest).
    assert (table[("a", "mini")]["total_cost"], table[("a", "mini")]["saving"]) == \
        (Decimal("360.000000"), Decimal("60.000000"))


def test_cheapest_alternative_is_suggested_with_the_saving(table):
    pro = table[("a", "pro")]
    assert pro["is_cheapest_alternative"] and pro["recommendation"] == "upgrade"
    assert pro["persistent_overage_dimensions"] == ["api_calls"]
    assert pro["saving_percent"] == pytest.approx(21.43)
    assert pro["suggestion"] == ("Upgrade to pro: the last 3 billing cycles would have cost USD 330.00 instead of "
                                 "USD 420.00, saving USD 90.00; api_calls in overage in every one of those cycles")
    assert table[("a", "mini")]["suggestion"] is None and table[("a", "starter")]["suggestion"] is None


def test_plans_that_cannot_bill_the_usage_are_not_alternatives(table):
    assert table[("a", "compute")]["invalid_reason"] == "plan compute has no meter api"
    assert table[("a", "yearly")]["invalid_reason"] == "plan yearly has no Monthly price"
    assert table[("a", "unsold")]["invalid_reason"] == "no purchase of plan unsold shows its meters"
    assert table[("a", "compute")]["total_cost"] is None and not table[("a", "compute")]["is_valid"]
    # b uses egress, which only pro has.
    assert table[("b", "starter")]["invalid_reason"] == "plan starter has no meter egress"


def test_waterfall_tiers_and_no_saving_means_no_suggestion(table):
    # b on pro, Feb and Mar: egress 1,500 = 100 free, 1,000 in tier 1 (x 0.1 = 100), 400 in tier 2 (x 0.05 = 20);
    # api 2,000 within 10,000: 2 x (110 + 120) = 460.
    b = table[("b", "pro")]
    assert (b["overage_cost"], b["total_cost"]) == (Decimal("240.000000"), Decimal("460.000000"))
    assert b["persistent_overage_dimensions"] == ["egress_t1", "egress_t2"]
    assert all(r["recommendation"] is None for (k, _), r in table.items() if k == "b")


def test_only_active_subscriptions_with_a_complete_cycle_are_costed(table):
    assert not any(k == "gone" for k, _ in table)
    new = table[("new", "starter")]
    assert new["cycles_evaluated"] == 0 and new["invalid_reason"] == NO_COMPLETE_CYCLE and new["total_cost"] is None
    # The compute customer has no usage: its own plan costs the fees only, others are cheaper or invalid.
    assert table[("c", "compute")]["total_cost"] == Decimal("30.000000")


def test_settings():
    s = parse_recommendation_settings({"recommendations": {"cycles": 6, "min_saving": 5}}, "conf/churn.yml")
    assert (s.cycles, s.min_saving) == (6, Decimal("5.000000"))
    with pytest.raises(ConfigError, match="conf/churn.yml: recommendations.cycles: must be an integer"):
        parse_recommendation_settings({"recommendations": {"cycles": 0}}, "conf/churn.yml")
