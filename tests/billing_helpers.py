"""Builders of silver rows for the billing tests (the silver schemas have many columns)."""
from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame, SparkSession

from metering_analytics.billing.reference import RENEWAL_MONTHS, SimpleDimension, WaterfallDimension
from metering_analytics.schemas import (
    SILVER_MARKETPLACE_SUBMISSIONS_SCHEMA,
    SILVER_PLAN_DIMENSIONS_SCHEMA,
    SILVER_SUBSCRIPTIONS_SCHEMA,
    SILVER_USAGE_EVENTS_SCHEMA,
)

PLAN = "plan"


def subscription(key: str, start: datetime, renewal: str = "Monthly", *, plan: str = PLAN,
                 resource_id: str | None = None, resource_uri: str | None = None,
                 deleted_at: datetime | None = None) -> dict:
    if resource_id is None and resource_uri is None:
        resource_id = key
    return dict(
        subscription_key=key, resource_id=resource_id, resource_uri=resource_uri, plan_id=plan,
        renewal_interval=renewal, renewal_months=RENEWAL_MONTHS[renewal], subscription_start=start,
        purchased_at=start, deleted_at=deleted_at, offer_type="saas", partition_id="0", sequence_number=0,
    )


def meter(key: str, meter_name: str, definition: SimpleDimension | WaterfallDimension, *, plan: str = PLAN) -> dict:
    if isinstance(definition, SimpleDimension):
        return dict(
            subscription_key=key, plan_id=plan, meter_name=meter_name, dimension_type="simple",
            dimension=definition.dimension,
            included_quantity=None if definition.included is None else float(definition.included),
            included_infinite=definition.included is None, tiers=None,
        )
    return dict(
        subscription_key=key, plan_id=plan, meter_name=meter_name, dimension_type="waterfall", dimension=None,
        included_quantity=None, included_infinite=False,
        tiers=[dict(tier_index=i, dimension=d, threshold=float(t)) for i, (d, t) in enumerate(definition.tiers)],
    )


def usage(key: str, meter_name: str, quantity: float, enqueued: datetime, sequence: int, *,
          plan: str = PLAN, partition: str = "0") -> dict:
    return dict(
        partition_id=partition, sequence_number=sequence, subscription_key=key, resource_id=key, resource_uri=None,
        plan_id=plan, meter_name=meter_name, dimension=None, quantity=float(quantity), enqueued_time=enqueued,
        event_timestamp=enqueued, properties=None,
    )


def submission(sequence: int, status: str, *, resource_id: str | None = None, plan: str, dimension: str,
               hour: datetime, quantity: float, enqueued: datetime | None = None, resource_uri: str | None = None,
               error_code: str | None = None, accepted: dict | None = None) -> dict:
    row = {f.name: None for f in SILVER_MARKETPLACE_SUBMISSIONS_SCHEMA.fields}
    row.update(
        partition_id="0", sequence_number=sequence, enqueued_time=enqueued or hour, status=status,
        resource_id=resource_id, resource_uri=resource_uri, plan_id=plan, dimension=dimension,
        effective_start_time=hour, quantity=quantity, usage_event_id=f"event-{sequence}", error_code=error_code,
    )
    for name, value in (accepted or {}).items():
        row[f"accepted_{name}"] = value
    return row


def frame(spark: SparkSession, rows: list[dict], schema) -> DataFrame:
    """Rows as a DataFrame of `schema`; columns a row does not name are null (billing ignores them)."""
    return spark.createDataFrame([tuple(r.get(f.name) for f in schema.fields) for r in rows], schema)


def subscriptions_df(spark, rows):
    return frame(spark, rows, SILVER_SUBSCRIPTIONS_SCHEMA)


def plan_dimensions_df(spark, rows):
    return frame(spark, rows, SILVER_PLAN_DIMENSIONS_SCHEMA)


def usage_df(spark, rows):
    return frame(spark, rows, SILVER_USAGE_EVENTS_SCHEMA)


def submissions_df(spark, rows):
    return frame(spark, rows, SILVER_MARKETPLACE_SUBMISSIONS_SCHEMA)
