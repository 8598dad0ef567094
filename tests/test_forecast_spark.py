"""Forecast stage on Spark: the applyInPandas paths (a failing group is dropped and counted, not a crashed
job), the capacity plan's first breach on a hand-made forecast, the cycle projection's known answer."""
from __future__ import annotations

from datetime import date, datetime as dt, timedelta
from decimal import Decimal

import pandas as pd
from chispa import assert_df_equality

from metering_analytics.billing.prices import parse_price_catalog, unit_price_frame
from metering_analytics.gold.operations import THROUGHPUT_SCHEMA
from metering_analytics.models.forecasting.capacity import capacity_plan
from metering_analytics.models.forecasting.projection import PROJECTION_INPUT_SCHEMA, priced, project
from metering_analytics.models.forecasting.series import SERIES_SCHEMA
from metering_analytics.models.forecasting.settings import (
    SEASONAL_MEAN_WEEKLY,
    SEASONAL_NAIVE_WEEKLY,
    ForecastSettings,
)
from metering_analytics.models.forecasting.stage import FORECAST_EVENT_TOTALS_SCHEMA, forecast_results

AS_OF = dt(2025, 3, 29)


def test_series_are_fitted_per_group_and_a_failing_group_is_dropped(spark):
    settings = ForecastSettings(every_series_models=(SEASONAL_NAIVE_WEEKLY, SEASONAL_MEAN_WEEKLY),
                                headline_models=(), min_train_days=14)
    days = pd.date_range("2025-01-01", AS_OF - timedelta(days=1), freq="D")
    rows = [(name, "daily", ts.to_pydatetime(), float(base + i % 7), False)
            for name, base in (("a", 10), ("b", 100)) for i, ts in enumerate(days)]
    rows.append(("broken", "weekly", dt(2025, 1, 1), 1.0, False))  # no such granularity: the group raises
    results = forecast_results(spark.createDataFrame(rows, SERIES_SCHEMA), settings, AS_OF)
    counts = {(r["series"], r["record"]): r["n"] for r in results.groupBy("series", "record").count()
              .withColumnRenamed("count", "n").collect()}
    assert counts[("a", "forecast")] == counts[("b", "forecast")] == 90
    assert {s for s, _ in counts} == {"a", "b"}  # the broken group returned an empty frame
    first = results.where("series = 'b' AND record = 'forecast'").orderBy("ts").first()
    assert first["ts"] == AS_OF and first["trained_at"] == AS_OF and first["model"] == SEASONAL_NAIVE_WEEKLY


def _forecast_row(granularity, ts, yhat, upper):
    return ("events", granularity, ts, float(yhat), float(yhat), float(upper), "m", AS_OF)


def test_capacity_plan_flags_the_first_day_below_the_margin(spark):
    day1, day2, day3 = dt(2025, 3, 29), dt(2025, 3, 30), dt(2025, 3, 31)
    rows = []
    for hour in range(24):
        # Day 1: 1 event/s at its peak hour (upper 4.5/s), day 2: 5/s.
        rows.append(_forecast_row("hourly", day1 + timedelta(hours=hour), 3600 if hour == 12 else 100,
                                  16200 if hour == 12 else 100))
        rows.append(_forecast_row("hourly", day2 + timedelta(hours=hour), 18000 if hour == 12 else 100, 18000))
    rows += [_forecast_row("daily", day, 86400, 86400) for day in (day1, day2, day3)]
    rows.append(("events/type=Ping", "hourly", day1, 1e9, 1e9, 1e9, "m", AS_OF))  # not the overall series
    forecasts = spark.createDataFrame(rows, FORECAST_EVENT_TOTALS_SCHEMA)
    # History: the busiest minute runs at 2x an hour's mean rate and 3x a day's.
    throughput = spark.createDataFrame(
        [("hour", dt(2025, 3, 28, 10), 3600, 120, 2.0, 5, 10, 80.0, 50.0),
         ("day", dt(2025, 3, 28), 86400, 180, 3.0, 5, 10, 70.0, 50.0)], THROUGHPUT_SCHEMA)

    def plan(plan_on):
        return capacity_plan(forecasts, throughput, capacity_events_per_second=10, margin_percent=20.0,
                             plan_on=plan_on, end=AS_OF, lookback_days=28, quantile=0.95, trained_at=AS_OF)

    point = plan("point").orderBy("day").collect()
    assert [(r["day"], r["source"], r["peak_factor"], r["peak_events_per_second"], r["headroom_percent"])
            for r in point] == [(date(2025, 3, 29), "hourly", 2.0, 2.0, 80.0),
                                (date(2025, 3, 30), "hourly", 2.0, 10.0, 0.0),
                                (date(2025, 3, 31), "daily", 3.0, 3.0, 70.0)]
    assert [r["below_margin"] for r in point] == [False, True, False]
    assert {r["first_breach_date"] for r in point} == {date(2025, 3, 30)}
    upper = plan("upper").orderBy("day").collect()
    assert upper[0]["headroom_percent_upper"] == 10.0 and upper[0]["below_margin"]
    assert {r["first_breach_date"] for r in upper} == {date(2025, 3, 29)}


def test_projection_to_cycle_end_per_subscription_with_a_failing_group(spark):
    start, end = dt(2025, 3, 1), dt(2025, 4, 1)
    history = [("sub-simple", "starter", "Monthly", "api", "simple", "api_calls", 1, start, end, 300.0, False,
                280.0, None, date(2025, 3, 1) + timedelta(days=i), 10.0) for i in range(28)]
    tiers = '[{"tier_index":0,"dimension":"egress_1","threshold":100},{"tier_index":1,"dimension":"egress_2",' \
            '"threshold":100}]'
    rows = history + [
        # Waterfall, no usage in the lookback: nothing more is projected; 150 used = 50 into tier egress_1.
        ("sub-waterfall", "pro", "Monthly", "egress", "waterfall", None, 0, start, end, 100.0, False, 150.0,
         tiers, None, None),
        ("sub-broken", "pro", "Monthly", "egress", "waterfall", None, 0, start, end, 100.0, False, 150.0,
         "not json", None, None),
    ]
    projections = project(spark.createDataFrame(rows, PROJECTION_INPUT_SCHEMA), AS_OF, lookback_days=28)
    catalog = parse_price_catalog({"currency": "USD", "store_fee_percent": 3, "plans": {
        "starter": {"recurring_fee": {"Monthly": 10}, "unit_prices": {"api_calls": 0.5}},
        "pro": {"recurring_fee": {"Monthly": 10}, "unit_prices": {"egress_1": 1, "egress_2": 2}}}})
    result = priced(projections, unit_price_frame(spark, catalog), "USD").select(
        "subscription_key", "dimension", "used_quantity", "projected_usage", "current_overage_quantity",
        "projected_overage_quantity", "projected_overage_value", "method", "history_days")
    expected = spark.createDataFrame(
        [("sub-simple", "api_calls", 280.0, 310.0, 0.0, 10.0, Decimal("5.000000"), "weekday_profile", 28),
         ("sub-waterfall", "egress_1", 150.0, 150.0, 50.0, 50.0, Decimal("50.000000"), "weekday_profile", 28),
         ("sub-waterfall", "egress_2", 150.0, 150.0, 0.0, 0.0, Decimal("0.000000"), "weekday_profile", 28)],
        result.schema)
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)
