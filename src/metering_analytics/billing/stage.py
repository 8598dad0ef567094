"""The billing stage: silver facts -> the gold billing tables, recomputed in full on every run.

Billing is a function of a subscription's whole history (running totals per cycle), so the gold
tables are overwritten, each in one Delta commit. Prices are checked before any table changes.
"""
from __future__ import annotations

from datetime import datetime, timezone

from pyspark.sql import SparkSession

from metering_analytics.billing.balances import INCLUDED_BALANCE_SCHEMA, included_balance
from metering_analytics.billing.marketplace import MARKETPLACE_USAGE_SCHEMA, marketplace_usage
from metering_analytics.billing.overage import event_overage, usage_cycles
from metering_analytics.billing.prices import PriceCatalog, require_prices_for_silver
from metering_analytics.billing.reconciliation import RECONCILIATION_SCHEMA, billing_reconciliation
from metering_analytics.billing.revenue import REVENUE_DAILY_SCHEMA, revenue_daily
from metering_analytics.io.lakehouse import Lakehouse, with_columns_of
from metering_analytics.schemas import (
    SILVER_MARKETPLACE_SUBMISSIONS_SCHEMA,
    SILVER_PLAN_DIMENSIONS_SCHEMA,
    SILVER_SUBSCRIPTIONS_SCHEMA,
    SILVER_USAGE_EVENTS_SCHEMA,
)

MARKETPLACE_USAGE = "marketplace_usage"
INCLUDED_BALANCE = "included_balance"
BILLING_RECONCILIATION = "billing_reconciliation"
REVENUE_DAILY = "revenue_daily"
GOLD_BILLING_SCHEMAS = {
    MARKETPLACE_USAGE: MARKETPLACE_USAGE_SCHEMA,
    INCLUDED_BALANCE: INCLUDED_BALANCE_SCHEMA,
    BILLING_RECONCILIATION: RECONCILIATION_SCHEMA,
    REVENUE_DAILY: REVENUE_DAILY_SCHEMA,
}

_UTC_ZONES = {"UTC", "Etc/UTC", "GMT", "Etc/GMT", "Z", "+00:00", "UTC+0", "GMT+0", "Etc/UCT", "UCT", "Zulu"}


def require_utc_session(spark: SparkSession) -> None:
    """Cycles and hours are calendar arithmetic in the session time zone: it must be UTC."""
    zone = spark.conf.get("spark.sql.session.timeZone")
    if zone not in _UTC_ZONES:
        raise ValueError(f"billing needs spark.sql.session.timeZone=UTC, the session has {zone!r}")


def utc_naive(at: datetime | None) -> datetime:
    if at is None:
        return datetime.now(timezone.utc).replace(tzinfo=None)
    return at if at.tzinfo is None else at.astimezone(timezone.utc).replace(tzinfo=None)


def run_billing(spark: SparkSession, lakehouse: Lakehouse, prices: PriceCatalog,
                as_of: datetime | None = None) -> dict[str, int]:
    """Recompute the gold billing tables from silver; returns {"gold.<table>": row count}.

    `as_of` (default: now, UTC; naive means UTC) decides the current billing cycle in
    gold.included_balance and the last day of recognised recurring revenue.
    """
    require_utc_session(spark)
    as_of = utc_naive(as_of)
    subscriptions = lakehouse.read_or_empty(spark, "silver", "subscriptions", SILVER_SUBSCRIPTIONS_SCHEMA)
    plan_dimensions = lakehouse.read_or_empty(spark, "silver", "plan_dimensions", SILVER_PLAN_DIMENSIONS_SCHEMA)
    usage_events = lakehouse.read_or_empty(spark, "silver", "usage_events", SILVER_USAGE_EVENTS_SCHEMA)
    submissions = lakehouse.read_or_empty(spark, "silver", "marketplace_submissions",
                                          SILVER_MARKETPLACE_SUBMISSIONS_SCHEMA)
    require_prices_for_silver(prices, subscriptions, plan_dimensions, submissions)

    event_cycles = usage_cycles(usage_events, subscriptions)
    write = _writer(lakehouse)
    write(MARKETPLACE_USAGE, marketplace_usage(event_overage(event_cycles, plan_dimensions), subscriptions))
    write(INCLUDED_BALANCE, included_balance(event_cycles, subscriptions, plan_dimensions, as_of))
    # Later tables read the written ones back: each is computed once and all agree with each other.
    expected = lakehouse.read(spark, "gold", MARKETPLACE_USAGE)
    write(BILLING_RECONCILIATION, billing_reconciliation(expected, submissions, subscriptions))
    reconciliation = lakehouse.read(spark, "gold", BILLING_RECONCILIATION)
    write(REVENUE_DAILY, revenue_daily(subscriptions, reconciliation, prices, as_of))
    return {f"gold.{table}": lakehouse.read(spark, "gold", table).count() for table in GOLD_BILLING_SCHEMAS}


def _writer(lakehouse: Lakehouse):
    def write(table: str, df) -> None:
        lakehouse.overwrite(with_columns_of(df, GOLD_BILLING_SCHEMAS[table]), "gold", table)
    return write
