"""Builders of gold billing rows for the persona-table tests (billing_helpers builds the silver rows)."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pyspark.sql import DataFrame, SparkSession

from billing_helpers import frame, usage
from metering_analytics.billing.balances import INCLUDED_BALANCE_SCHEMA
from metering_analytics.billing.marketplace import MARKETPLACE_USAGE_SCHEMA
from metering_analytics.billing.reconciliation import RECONCILIATION_SCHEMA
from metering_analytics.billing.revenue import REVENUE_DAILY_SCHEMA


def balance(key: str, meter_name: str, cycle_index: int, cycle_start: datetime, cycle_end: datetime, *,
            used: float, included: float | None, plan: str = "plan", renewal: str = "Monthly",
            dimension: str | None = "d", dimension_type: str = "simple", current: bool = False,
            last_usage: datetime | None = None, events: int = 1) -> dict:
    infinite = included is None and dimension_type == "simple"
    consumed = used if infinite else min(used, included)
    return dict(
        subscription_key=key, resource_id=key, resource_uri=None, plan_id=plan, renewal_interval=renewal,
        meter_name=meter_name, dimension_type=dimension_type, dimension=dimension, cycle_index=cycle_index,
        cycle_start=cycle_start, cycle_end=cycle_end, included_quantity=None if included is None else float(included),
        included_infinite=infinite,
        total_usage=float(used), consumed_included=float(consumed), overage_quantity=float(used - consumed),
        remaining_included=None if infinite else float(included - consumed), usage_events=events,
        last_usage_time=last_usage, is_current_cycle=current,
    )


def expected_usage(key: str, dimension: str, hour: datetime, quantity: float, *, plan: str = "plan") -> dict:
    return dict(subscription_key=key, resource_id=key, resource_uri=None, plan_id=plan, dimension=dimension,
                effective_start_time=hour, quantity=float(quantity))


def reconciled(key: str | None, dimension: str, hour: datetime, status: str, *, expected: float = 0.0,
               billed: float = 0.0, plan: str = "plan") -> dict:
    return dict(subscription_key=key, resource_id=key, resource_uri=None, plan_id=plan, dimension=dimension,
                effective_start_time=hour, expected_quantity=float(expected), billed_quantity=float(billed),
                difference=float(expected - billed), status=status, submission_count=0 if status == "pending" else 1)


def revenue(day, plan: str, dimension: str, *, recurring: str = "0", overage_quantity: float = 0.0,
            overage: str = "0", fee_percent: str = "3") -> dict:
    gross = Decimal(recurring) + Decimal(overage)
    fee = (gross * Decimal(fee_percent) / 100).quantize(Decimal("0.000001"))
    zero = Decimal(0)
    return dict(day=day, plan_id=plan, dimension=dimension, currency="USD", recurring_revenue=Decimal(recurring),
                overage_quantity=overage_quantity, overage_revenue=Decimal(overage), gross_revenue=gross,
                store_fee=fee, net_revenue=gross - fee, expired_quantity=0.0, expired_overage_value=zero,
                rejected_quantity=0.0, rejected_overage_value=zero)


def balances_df(spark: SparkSession, rows) -> DataFrame:
    return frame(spark, rows, INCLUDED_BALANCE_SCHEMA)


def marketplace_usage_df(spark: SparkSession, rows) -> DataFrame:
    return frame(spark, rows, MARKETPLACE_USAGE_SCHEMA)


def reconciliation_df(spark: SparkSession, rows) -> DataFrame:
    return frame(spark, rows, RECONCILIATION_SCHEMA)


def revenue_df(spark: SparkSession, rows) -> DataFrame:
    return frame(spark, rows, REVENUE_DAILY_SCHEMA)


def simple_usage(key: str, meter_name: str, dimension: str | None, quantity: float, enqueued: datetime,
                 sequence: int, *, plan: str = "plan", partition: str = "0") -> dict:
    return {**usage(key, meter_name, quantity, enqueued, sequence, plan=plan, partition=partition),
            "dimension": dimension}
