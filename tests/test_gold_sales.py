"""Sales tables: revenue and usage by product, top customers, heatmap, trends, plan fit."""
from __future__ import annotations

from datetime import date, datetime as dt
from decimal import Decimal

from chispa import assert_df_equality

from billing_helpers import meter, plan_dimensions_df, subscription, subscriptions_df, usage_df
from gold_helpers import balance, balances_df, expected_usage, marketplace_usage_df, revenue, revenue_df, simple_usage
from metering_analytics.billing.reference import SimpleDimension, WaterfallDimension
from metering_analytics.gold.customer_success import CONSUMPTION_DAILY_SCHEMA, CONSUMPTION_HOURLY_SCHEMA
from metering_analytics.gold.mrr import SUBSCRIPTION_MRR_SCHEMA
from metering_analytics.gold.sales import (
    HEATMAP_SCHEMA,
    PLAN_FIT_SCHEMA,
    REVENUE_BY_PRODUCT_DAILY_SCHEMA,
    REVENUE_BY_PRODUCT_MONTHLY_SCHEMA,
    TOP_CUSTOMERS_SCHEMA,
    TRENDS_SCHEMA,
    USAGE_BY_PRODUCT_DAILY_SCHEMA,
    USAGE_BY_PRODUCT_HOURLY_SCHEMA,
    plan_fit,
    revenue_by_product_daily,
    revenue_by_product_monthly,
    top_customers,
    trends,
    usage_by_product_daily,
    usage_by_product_hourly,
    usage_heatmap,
)

D = Decimal


def _equal(actual, expected):
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_revenue_by_product_per_day_and_month(spark):
    daily = revenue_df(spark, [
        revenue(date(2024, 2, 28), "p", "(recurring)", recurring="10"),
        revenue(date(2024, 2, 28), "p", "d", overage_quantity=4.0, overage="2"),
        revenue(date(2024, 2, 29), "p", "(recurring)", recurring="10.5"),
        revenue(date(2024, 3, 1), "p", "d", overage_quantity=1.5, overage="0.75"),
    ])
    z = D(0)
    _equal(revenue_by_product_daily(daily), spark.createDataFrame([
        (date(2024, 2, 28), "p", "(recurring)", "USD", D(10), 0.0, z, D(10), D("0.3"), D("9.7")),
        (date(2024, 2, 28), "p", "d", "USD", z, 4.0, D(2), D(2), D("0.06"), D("1.94")),
        (date(2024, 2, 29), "p", "(recurring)", "USD", D("10.5"), 0.0, z, D("10.5"), D("0.315"), D("10.185")),
        (date(2024, 3, 1), "p", "d", "USD", z, 1.5, D("0.75"), D("0.75"), D("0.0225"), D("0.7275")),
    ], REVENUE_BY_PRODUCT_DAILY_SCHEMA))
    _equal(revenue_by_product_monthly(daily), spark.createDataFrame([
        (date(2024, 2, 1), "p", "(recurring)", "USD", D("20.5"), 0.0, z, D("20.5"), D("0.615"), D("19.885")),
        (date(2024, 2, 1), "p", "d", "USD", z, 4.0, D(2), D(2), D("0.06"), D("1.94")),
        (date(2024, 3, 1), "p", "d", "USD", z, 1.5, D("0.75"), D("0.75"), D("0.0225"), D("0.7275")),
    ], REVENUE_BY_PRODUCT_MONTHLY_SCHEMA))


def test_usage_by_product_splits_waterfall_overage_into_tiers(spark):
    api, egress = SimpleDimension("api_calls", 100), WaterfallDimension((("t1", 10), ("t2", 20)))
    dimensions = plan_dimensions_df(spark, [
        meter("s1", "api", api), meter("s1", "egress", egress), meter("s2", "api", api), meter("s2", "egress", egress),
    ])
    h10, h11 = dt(2024, 3, 1, 10), dt(2024, 3, 1, 11)
    hourly = spark.createDataFrame([
        (h10, "s1", "plan", "api", "api_calls", 3, 150.0),
        (h10, "s1", "plan", "egress", None, 2, 40.0),  # [0, 10) free, [10, 30) t1, [30, 40) t2
        (h10, "s2", "plan", "api", "api_calls", 1, 20.0),
        (h11, "s1", "plan", "api", "api_calls", 1, 5.0),
    ], CONSUMPTION_HOURLY_SCHEMA)
    overage = marketplace_usage_df(spark, [
        expected_usage("s1", "api_calls", h10, 50), expected_usage("s1", "t1", h10, 20),
        expected_usage("s1", "t2", h10, 10), expected_usage("s1", "api_calls", h11, 5),
    ])
    by_hour = usage_by_product_hourly(hourly, overage, dimensions)
    # hour/day, plan, meter, dimension, events, quantity, included consumed, overage: every column adds up
    _equal(by_hour, spark.createDataFrame([
        (h10, "plan", "api", "api_calls", 4, 170.0, 120.0, 50.0),
        (h10, "plan", "egress", None, 2, 40.0, 10.0, 0.0),
        (h10, "plan", "egress", "t1", 0, 0.0, 0.0, 20.0),
        (h10, "plan", "egress", "t2", 0, 0.0, 0.0, 10.0),
        (h11, "plan", "api", "api_calls", 1, 5.0, 0.0, 5.0),
    ], USAGE_BY_PRODUCT_HOURLY_SCHEMA))
    day = date(2024, 3, 1)
    _equal(usage_by_product_daily(by_hour), spark.createDataFrame([
        (day, "plan", "api", "api_calls", 5, 175.0, 120.0, 55.0),
        (day, "plan", "egress", None, 2, 40.0, 10.0, 0.0),
        (day, "plan", "egress", "t1", 0, 0.0, 0.0, 20.0),
        (day, "plan", "egress", "t2", 0, 0.0, 0.0, 10.0),
    ], USAGE_BY_PRODUCT_DAILY_SCHEMA))


def test_top_customers_by_revenue_and_by_usage_of_each_meter(spark):
    march, feb = date(2024, 3, 1), date(2024, 2, 1)

    def mrr(key, active, amount):
        return (march, key, "plan", active, D(amount), D(0), D(amount), True, D(amount))

    months = spark.createDataFrame([
        mrr("s1", True, 100), mrr("s2", True, 300), mrr("s3", True, 200), mrr("s4", False, 0),
    ], SUBSCRIPTION_MRR_SCHEMA)
    daily = spark.createDataFrame([
        (date(2024, 3, 1), "s1", "plan", "api", "d", 1, 10.0),
        (date(2024, 3, 2), "s1", "plan", "api", "d", 1, 5.0),
        (date(2024, 3, 1), "s2", "plan", "api", "d", 1, 15.0),  # ties with s1: the smaller key first
        (date(2024, 3, 1), "s3", "plan", "api", "d", 1, 1.0),  # third: beyond the top 2
        (date(2024, 3, 1), "s1", "plan", "egress", None, 1, 0.0),  # nothing used is not ranked
        (date(2024, 3, 1), "s2", "plan", "egress", None, 1, 7.0),
        (date(2024, 2, 9), "s3", "plan", "api", "d", 1, 3.0),
    ], CONSUMPTION_DAILY_SCHEMA)
    _equal(top_customers(months, daily, 2), spark.createDataFrame([
        (march, "revenue", None, 1, "s2", "plan", 300.0),
        (march, "revenue", None, 2, "s3", "plan", 200.0),
        (march, "usage", "api", 1, "s1", "plan", 15.0),
        (march, "usage", "api", 2, "s2", "plan", 15.0),
        (march, "usage", "egress", 1, "s2", "plan", 7.0),
        (feb, "usage", "api", 1, "s3", "plan", 3.0),
    ], TOP_CUSTOMERS_SCHEMA))


def test_heatmap_in_a_half_hour_time_zone(spark):
    as_of = dt(2024, 3, 11)
    events = usage_df(spark, [
        simple_usage("s1", "api", "d", 1, dt(2024, 3, 10, 20), 1),  # Sunday 20:00 UTC = Monday 01:30 IST
        simple_usage("s1", "api", "d", 1, dt(2024, 3, 10, 20, 45), 2),  # Monday 02:15 IST
        simple_usage("s1", "api", "d", 1, dt(2024, 3, 4), 3),  # exactly 7 days back: outside the window
        simple_usage("s1", "api", "d", 1, dt(2024, 3, 4, 0, 0, 1), 4),  # Monday 05:30:01 IST
        simple_usage("s1", "api", "d", 1.5, dt(2024, 3, 9, 12), 5),  # Saturday 17:30 IST
        simple_usage("s2", "api", "d", 2.5, dt(2024, 3, 9, 12, 10), 6),
        simple_usage("s1", "api", "d", 1, dt(2024, 3, 11, 0, 0, 1), 7),  # after as_of
    ])
    start = dt(2024, 3, 4)
    _equal(usage_heatmap(events, "Asia/Kolkata", 7, as_of), spark.createDataFrame([
        ("plan", "api", "d", 1, 1, 1, 1.0, "Asia/Kolkata", start, as_of),
        ("plan", "api", "d", 1, 2, 1, 1.0, "Asia/Kolkata", start, as_of),
        ("plan", "api", "d", 1, 5, 1, 1.0, "Asia/Kolkata", start, as_of),
        ("plan", "api", "d", 6, 17, 2, 4.0, "Asia/Kolkata", start, as_of),
    ], HEATMAP_SCHEMA))


def test_trends_over_complete_weeks_and_months(spark):
    as_of = dt(2024, 3, 13, 9)  # a Wednesday: the last complete week began Monday March 4, the month is February
    daily = spark.createDataFrame([
        (date(2024, 1, 31), "s1", "p", "api", "d", 1, 4.0),
        (date(2024, 2, 26), "s1", "p", "api", "d", 1, 10.0),
        (date(2024, 3, 3), "s1", "p", "api", "d", 1, 5.0),  # Sunday: still the week of Feb 26, but March
        (date(2024, 3, 5), "s1", "p", "api", "d", 1, 30.0),
        (date(2024, 3, 12), "s1", "p", "api", "d", 1, 100.0),  # incomplete week and month
    ], CONSUMPTION_DAILY_SCHEMA)
    revenues = revenue_df(spark, [
        revenue(date(2024, 2, 26), "p", "(recurring)", recurring="10"),
        revenue(date(2024, 3, 5), "p", "(recurring)", recurring="15"),
    ])

    def usage_row(period_type, start, value, previous, growth):
        return (period_type, start, "usage_quantity", "p", "api", "d", value, previous, value - previous, growth)

    def revenue_row(period_type, start, value, previous, growth):
        return (period_type, start, "gross_revenue", "p", None, "(recurring)", value, previous, value - previous,
                growth)

    _equal(trends(daily, revenues, as_of), spark.createDataFrame([
        usage_row("week", date(2024, 1, 29), 4.0, 0.0, None),
        usage_row("week", date(2024, 2, 5), 0.0, 4.0, -100.0),
        usage_row("week", date(2024, 2, 12), 0.0, 0.0, None),
        usage_row("week", date(2024, 2, 19), 0.0, 0.0, None),
        usage_row("week", date(2024, 2, 26), 15.0, 0.0, None),
        usage_row("week", date(2024, 3, 4), 30.0, 15.0, 100.0),
        usage_row("month", date(2024, 1, 1), 4.0, 0.0, None),
        usage_row("month", date(2024, 2, 1), 10.0, 4.0, 150.0),
        revenue_row("week", date(2024, 2, 26), 10.0, 0.0, None),
        revenue_row("week", date(2024, 3, 4), 15.0, 10.0, 50.0),
        revenue_row("month", date(2024, 2, 1), 10.0, 0.0, None),
    ], TRENDS_SCHEMA))


def test_plan_fit_counts_completed_cycles_including_those_without_usage(spark):
    as_of = dt(2024, 4, 10)
    subscriptions = subscriptions_df(spark, [
        subscription("s1", dt(2024, 1, 1, 9), "Monthly"),  # cycles of Jan, Feb, Mar completed
        subscription("s2", dt(2024, 1, 15), "Monthly", deleted_at=dt(2024, 3, 1)),  # only Jan 15 - Feb 15
        subscription("s3", dt(2024, 1, 1), "Annually"),  # none completed yet
    ])
    api, unlimited = SimpleDimension("d", 100), SimpleDimension("u", None)
    dimensions = plan_dimensions_df(spark, [
        meter("s1", "api", api), meter("s2", "api", api), meter("s3", "api", api),
        meter("s1", "unlimited", unlimited),  # Infinite: no fit to measure
        meter("s1", "egress", WaterfallDimension((("t1", 50), ("t2", 100)))),  # free band 50
    ])
    jan, feb, mar = dt(2024, 1, 1), dt(2024, 2, 1), dt(2024, 3, 1)
    balances = balances_df(spark, [
        balance("s1", "api", 0, jan, feb, used=10, included=100),  # 10 %
        balance("s1", "api", 1, feb, mar, used=25, included=100),  # exactly 25 %
        balance("s1", "api", 2, mar, dt(2024, 4, 1), used=101, included=100),
        balance("s2", "api", 0, dt(2024, 1, 15), dt(2024, 2, 15), used=100, included=100),  # exactly 100 %
        balance("s1", "egress", 1, feb, mar, used=60, included=50, dimension=None, dimension_type="waterfall"),
        balance("s1", "unlimited", 0, jan, feb, used=5, included=None, dimension="u"),
    ])

    def fit(meter_name, dimension, month, n, under, within, over):
        return ("plan", "Monthly", meter_name, dimension, month, n, under, within, over,
                round(under / n, 4), round(within / n, 4), round(over / n, 4))

    _equal(plan_fit(subscriptions, dimensions, balances, as_of), spark.createDataFrame([
        fit("api", "d", date(2024, 1, 1), 2, 1, 1, 0),
        fit("api", "d", date(2024, 2, 1), 1, 0, 1, 0),
        fit("api", "d", date(2024, 3, 1), 1, 0, 0, 1),
        fit("egress", None, date(2024, 1, 1), 1, 1, 0, 0),  # no usage at all: under 25 %
        fit("egress", None, date(2024, 2, 1), 1, 0, 0, 1),
        fit("egress", None, date(2024, 3, 1), 1, 1, 0, 0),
    ], PLAN_FIT_SCHEMA))
