"""Hand-made usage histories for the churn tests: daily consumption rows, as gold.cs_consumption_daily holds."""
from __future__ import annotations

from datetime import date, datetime, timedelta

from pyspark.sql import DataFrame, SparkSession

from billing_helpers import frame, meter, plan_dimensions_df, subscription, subscriptions_df
from metering_analytics.billing.reconciliation import RECONCILIATION_SCHEMA
from metering_analytics.billing.reference import SimpleDimension
from metering_analytics.gold.customer_success import CONSUMPTION_DAILY_SCHEMA

START = datetime(2024, 1, 1)


def day_rows(key: str, meter_name: str, days: list[date], events_of, plan: str = "plan") -> list[dict]:
    """One consumption row per day with `events_of(day)` events (quantity = events); zero days are left out."""
    rows = []
    for d in days:
        n = int(events_of(d))
        if n > 0:
            rows.append(dict(day=d, subscription_key=key, plan_id=plan, meter_name=meter_name, dimension=meter_name,
                             events=n, quantity=float(n)))
    return rows


def days_between(first: date, last_exclusive: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last_exclusive - first).days)]


def consumption_df(spark: SparkSession, rows: list[dict]) -> DataFrame:
    return frame(spark, rows, CONSUMPTION_DAILY_SCHEMA)


def two_meter_plan(spark: SparkSession, keys: list[str]) -> DataFrame:
    """api (1,000 included per month) and storage (100 included) for every subscription."""
    rows = []
    for k in keys:
        rows.append(meter(k, "api", SimpleDimension("api", 1000.0)))
        rows.append(meter(k, "storage", SimpleDimension("storage", 100.0)))
    return plan_dimensions_df(spark, rows)


def monthly_subscriptions(spark: SparkSession, keys: list[str], deleted: dict[str, datetime] | None = None,
                          start: datetime = START) -> DataFrame:
    deleted = deleted or {}
    return subscriptions_df(spark, [subscription(k, start, deleted_at=deleted.get(k)) for k in keys])


def no_reconciliation(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame([], RECONCILIATION_SCHEMA)
