"""Churn features, risk components, heuristic score and drivers on four hand-made customers:
a steady one, a declining one, one that stops, and one that moves its usage to another meter."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from pyspark.sql import functions as F

from billing_helpers import frame
from churn_helpers import (
    consumption_df,
    day_rows,
    days_between,
    monthly_subscriptions,
    no_reconciliation,
    two_meter_plan,
)
from metering_analytics.billing.reconciliation import RECONCILIATION_SCHEMA
from metering_analytics.models.churn.drivers import (
    MIN_HEURISTIC_CONTRIBUTION,
    NO_DRIVERS,
    drivers_summary,
    top_drivers,
)
from metering_analytics.models.churn.features import as_of_dates, churn_features
from metering_analytics.models.churn.heuristic import (
    DEFAULT_WEIGHTS,
    heuristic_contributions,
    heuristic_score,
    with_components,
)
from metering_analytics.models.churn.settings import ChurnSettings
from metering_analytics.models.churn.stage import risk_band

T = date(2024, 6, 1)  # the as-of date: features see [T - 56 days, T)
HISTORY = days_between(date(2024, 3, 1), T)
KEYS = ["steady", "declining", "stops", "shifts"]


def _declining(d: date) -> int:
    # 10 a day until 4 weeks before T, then down by a third of an event a day, to 1 a day.
    return 10 if d < T - timedelta(days=28) else max(1, round(10 - (d - (T - timedelta(days=28))).days / 3))


def _history(spark):
    rows = []
    rows += day_rows("steady", "api", HISTORY, lambda d: 10)
    rows += day_rows("steady", "storage", HISTORY, lambda d: 1)
    rows += day_rows("declining", "api", HISTORY, _declining)
    rows += day_rows("declining", "storage", HISTORY, lambda d: 1)
    rows += day_rows("stops", "api", HISTORY, lambda d: 10 if d < T - timedelta(days=20) else 0)
    rows += day_rows("stops", "storage", HISTORY, lambda d: 1 if d < T - timedelta(days=20) else 0)
    # Moves all its work from api to storage four weeks before T: as much usage, another meter.
    rows += day_rows("shifts", "api", HISTORY, lambda d: 11 if d < T - timedelta(days=28) else 0)
    rows += day_rows("shifts", "storage", HISTORY, lambda d: 0 if d < T - timedelta(days=28) else 11)
    return consumption_df(spark, rows)


@pytest.fixture(scope="module")
def scored(spark):
    rejected = frame(spark, [dict(subscription_key="declining", plan_id="plan", dimension="api", status="rejected",
                                  effective_start_time=datetime(2024, 5, 20, h), submitted_at=datetime(2024, 5, 20, h),
                                  expected_quantity=1.0, billed_quantity=0.0, difference=1.0, submission_count=1)
                             for h in range(2)], RECONCILIATION_SCHEMA)
    features = churn_features(monthly_subscriptions(spark, KEYS), two_meter_plan(spark, KEYS), _history(spark),
                              rejected, [T])
    weights = DEFAULT_WEIGHTS
    drivers = top_drivers(heuristic_contributions(weights), MIN_HEURISTIC_CONTRIBUTION, 3)
    rows = (
        with_components(features)
        .withColumn("score", heuristic_score(weights))
        .withColumn("band", risk_band(F.col("score"), ChurnSettings()))
        .withColumn("drivers", drivers)
        .withColumn("summary", drivers_summary(F.col("drivers")))
        .collect()
    )
    return {r["subscription_key"]: r for r in rows}


def test_steady_customer_features(scored):
    s = scored["steady"]
    assert (s["events_7d"], s["events_28d"], s["events_prev_28d"]) == (77, 308, 308)
    assert s["usage_trend_7d"] == 0.0 and s["usage_trend_28d"] == 0.0
    assert s["days_without_usage"] == 0 and s["active_day_share_28d"] == 1.0
    assert (s["meters_used_28d"], s["meters_used_prev_28d"]) == (2, 2)
    # api: 280 of 1,000 x 28 / 30.436875 = 919.9 allowed per 28 days; storage 28 of 92.0: 0.3044 both.
    assert s["included_use_28d"] == pytest.approx(280 / (1000 * 28 / (365.2425 / 12)), abs=1e-6)
    assert s["tenure_days"] == 152  # 2024-01-01 to 2024-06-01
    assert s["rejected_submissions_28d"] == 0
    assert s["band"] == "low"


def test_cycle_start_as_of_renews_in_a_full_cycle(scored):
    # As of midnight June 1 the June cycle has just begun: the next renewal is July 1.
    assert scored["steady"]["days_to_renewal"] == 30


def test_declining_customer(scored):
    d = scored["declining"]
    assert d["usage_trend_7d"] < -0.5 and d["usage_trend_28d"] < -0.3
    assert d["days_without_usage"] == 0
    assert d["rejected_submissions_28d"] == 2
    assert scored["steady"]["score"] < d["score"] < scored["stops"]["score"]
    assert d["band"] in ("medium", "high")
    assert d["drivers"][0].startswith("Usage in the last 7 days is")


def test_customer_that_stops(scored):
    s = scored["stops"]
    assert s["days_without_usage"] == 20
    assert s["active_day_share_28d"] == pytest.approx(8 / 28, abs=1e-6)
    assert s["band"] == "high"
    assert s["drivers"] == [
        "No usage for 20 days",
        "Usage in the last 7 days is 100% below its level 5 to 8 weeks ago",
        "Usage in the last 4 weeks is 71% below the 4 weeks before",  # 8 of 28 days used: 1 - 8/28
    ]


def test_customer_moving_usage_to_another_meter_is_not_at_risk(scored):
    s = scored["shifts"]
    assert s["usage_trend_28d"] == 0.0 and s["days_without_usage"] == 0
    assert (s["meters_used_28d"], s["meters_used_prev_28d"]) == (1, 1)
    assert s["band"] == "low"
    assert s["score"] < scored["declining"]["score"]


def test_steady_customer_has_no_drivers(scored):
    assert scored["steady"]["drivers"] == []
    assert scored["steady"]["summary"] == NO_DRIVERS


def test_grid_ends_on_the_clock_day():
    dates = as_of_dates(date(2024, 1, 1), datetime(2024, 3, 1, 17, 30), grid_days=7, min_history_days=28)
    assert dates[-1] == date(2024, 3, 1)
    assert dates[0] >= date(2024, 1, 29) and all((b - a).days == 7 for a, b in zip(dates, dates[1:]))
    assert as_of_dates(None, datetime(2024, 3, 1), 7, 28) == []


def test_features_never_look_at_the_as_of_day_or_later(spark):
    # A burst on T itself and after T changes nothing as of T.
    base = day_rows("steady", "api", HISTORY, lambda d: 10)
    later = day_rows("steady", "api", days_between(T, T + timedelta(days=10)), lambda d: 500)
    subs, plan = monthly_subscriptions(spark, ["steady"]), two_meter_plan(spark, ["steady"])
    grid = [T]
    cols = ["events_7d", "events_28d", "days_without_usage", "included_use_28d"]
    without = churn_features(subs, plan, consumption_df(spark, base), no_reconciliation(spark), grid)
    with_future = churn_features(subs, plan, consumption_df(spark, base + later), no_reconciliation(spark), grid)
    assert without.select(cols).collect() == with_future.select(cols).collect()
