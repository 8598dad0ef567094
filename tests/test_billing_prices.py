"""The price catalog: loading, validation errors that name the bad entry, and coverage of silver."""
from __future__ import annotations

from datetime import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from billing_helpers import (
    meter,
    plan_dimensions_df,
    submission,
    submissions_df,
    subscription,
    subscriptions_df,
)
from metering_analytics.billing.prices import (
    PriceCatalogError,
    load_price_catalog,
    parse_price_catalog,
    require_prices,
    require_prices_for_silver,
)
from metering_analytics.billing.reference import SimpleDimension, WaterfallDimension

PROJECT_CATALOG = Path(__file__).resolve().parents[1] / "conf" / "prices.yml"


def _catalog(**plan_overrides):
    plan = {"recurring_fee": {"Monthly": 10}, "unit_prices": {"api_calls": 0.5}}
    plan.update(plan_overrides)
    return {"currency": "USD", "store_fee_percent": 3, "plans": {"pro": plan}}


def test_the_project_catalog_loads():
    catalog = load_price_catalog(PROJECT_CATALOG)
    assert catalog.currency == "USD"
    assert catalog.store_fee_percent == Decimal("3.0")
    assert catalog.recurring_fee("enterprise", "2-years") == Decimal("45000.0")
    assert catalog.unit_price("professional", "api_calls") == Decimal("0.0015")
    assert catalog.unit_price("professional", "nope") is None


@pytest.mark.parametrize(
    "raw, message",
    [
        (_catalog(unit_prices={"api_calls": "abc"}),
         "conf/prices.yml: plans.pro.unit_prices.api_calls: price must be a non-negative number, got 'abc'"),
        (_catalog(unit_prices={"api_calls": -0.1}),
         "conf/prices.yml: plans.pro.unit_prices.api_calls: price must be a non-negative number, got -0.1"),
        (_catalog(unit_prices={"api_calls": 0.000000001}),
         "conf/prices.yml: plans.pro.unit_prices.api_calls: price must have at most 8 decimal places, got 1e-09"),
        (_catalog(recurring_fee={"Weekly": 3}),
         "conf/prices.yml: plans.pro.recurring_fee.Weekly: unknown renewal interval, expected one of Monthly, "
         "Annually, 2-years, 3-years"),
        (_catalog(recurring_fee={"Monthly": -5}),
         "conf/prices.yml: plans.pro.recurring_fee.Monthly: fee must be a non-negative number, got -5"),
        (_catalog(recurring_fee={"Monthly": True}),
         "conf/prices.yml: plans.pro.recurring_fee.Monthly: fee must be a non-negative number, got True"),
        (_catalog(unit_price={"api_calls": 1}),
         "conf/prices.yml: plans.pro: unknown entries unit_price; expected recurring_fee, unit_prices"),
        ({**_catalog(), "store_fee_percent": 120},
         "conf/prices.yml: store_fee_percent: must be between 0 and 100, got 120"),
        ({**_catalog(), "store_fee_percent": -1},
         "conf/prices.yml: store_fee_percent: store fee percent must be a non-negative number, got -1"),
        ({**_catalog(), "currency": ""}, "conf/prices.yml: currency: must be a currency code such as USD, got ''"),
        ({**_catalog(), "plans": {}}, "conf/prices.yml: plans: must be a non-empty mapping of plan id to prices"),
    ],
)
def test_validation_names_the_bad_entry(raw, message):
    with pytest.raises(PriceCatalogError) as error:
        parse_price_catalog(raw, "conf/prices.yml")
    assert str(error.value) == message


def test_a_file_error_names_the_file(tmp_path):
    path = tmp_path / "prices.yml"
    path.write_text("currency: USD\nstore_fee_percent: 3\nplans:\n  pro:\n    unit_prices: {api_calls: abc}\n")
    with pytest.raises(PriceCatalogError, match=r"prices.yml: plans.pro.unit_prices.api_calls: price must be"):
        load_price_catalog(path)
    with pytest.raises(PriceCatalogError, match="price catalog not found"):
        load_price_catalog(tmp_path / "missing.yml")


def test_missing_prices_are_all_named():
    catalog = parse_price_catalog(_catalog(), "conf/prices.yml")
    require_prices(catalog, [("pro", "api_calls")], [("pro", "Monthly")])
    with pytest.raises(PriceCatalogError) as error:
        require_prices(catalog, [("pro", "api_calls"), ("pro", "gpu_hours"), ("basic", "api_calls")],
                       [("pro", "Monthly"), ("pro", "3-years")])
    assert str(error.value) == (
        "conf/prices.yml: no price for plans.basic.unit_prices.api_calls, plans.pro.recurring_fee.3-years, "
        "plans.pro.unit_prices.gpu_hours"
    )


def test_silver_coverage_includes_tiers_intervals_and_accepted_submissions(spark):
    catalog = parse_price_catalog(_catalog(), "conf/prices.yml")
    subscriptions = subscriptions_df(spark, [subscription("s1", dt(2024, 1, 1), "Annually", plan="pro")])
    plan_dimensions = plan_dimensions_df(spark, [
        meter("s1", "calls", SimpleDimension("api_calls", 10), plan="pro"),
        meter("s1", "egress", WaterfallDimension((("egress_1", 10), ("egress_2", 5))), plan="pro"),
    ])
    submissions = submissions_df(spark, [
        submission(1, "Accepted", resource_id="s1", plan="pro", dimension="legacy_dim", hour=dt(2024, 1, 2),
                   quantity=1.0),
        # rejected usage is not revenue: it needs no price
        submission(2, "ResourceNotFound", resource_id="x", plan="ghost", dimension="d", hour=dt(2024, 1, 2),
                   quantity=1.0),
    ])
    with pytest.raises(PriceCatalogError) as error:
        require_prices_for_silver(catalog, subscriptions, plan_dimensions, submissions)
    assert str(error.value) == (
        "conf/prices.yml: no price for plans.pro.recurring_fee.Annually, plans.pro.unit_prices.egress_1, "
        "plans.pro.unit_prices.egress_2, plans.pro.unit_prices.legacy_dim"
    )
