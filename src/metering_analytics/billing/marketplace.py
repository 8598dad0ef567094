"""gold.marketplace_usage: what the rules say should be submitted to the Marketplace Metering API.

One row per (subscription, plan, dimension, hour of the enqueued time) with a positive quantity,
carrying the Metering API's own fields (resourceId/resourceUri as the subscription was purchased,
planId, dimension, effectiveStartTime, quantity).
"""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, StringType, StructField, StructType, TimestampType

from metering_analytics.billing.quantities import exact, reported

MARKETPLACE_USAGE_SCHEMA = StructType(
    [
        StructField("subscription_key", StringType(), False),
        StructField("resource_id", StringType(), True),
        StructField("resource_uri", StringType(), True),
        StructField("plan_id", StringType(), False),
        StructField("dimension", StringType(), False),
        StructField("effective_start_time", TimestampType(), False),
        StructField("quantity", DoubleType(), False),
    ]
)


def marketplace_usage(event_overage: DataFrame, subscriptions: DataFrame) -> DataFrame:
    """Hourly overage per subscription and dimension (MARKETPLACE_USAGE_SCHEMA), from `overage.event_overage`."""
    purchase = subscriptions.select("subscription_key", "resource_id", "resource_uri", "plan_id")
    hourly = (
        event_overage.withColumn("effective_start_time", F.date_trunc("hour", "enqueued_time"))
        .groupBy("subscription_key", "dimension", "effective_start_time")
        # The sum is exact; rounding happens once, here.
        .agg(reported(exact(F.sum("overage_quantity"))).alias("quantity"))
        .where(F.col("quantity") > 0)
    )
    return hourly.join(F.broadcast(purchase), "subscription_key").select(
        *[f.name for f in MARKETPLACE_USAGE_SCHEMA.fields]
    )
