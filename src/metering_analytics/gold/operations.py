"""Operations: event totals, throughput against Event Hubs capacity, submission health, data quality
and freshness.

Every Capture record in bronze ends in exactly one silver place (a fact table or the quarantine), so
the message type of a record comes from silver. A record that cannot be read as one of the six
message types (no body, binary, not JSON, unknown type, a required field missing, an unreadable path
or enqueued time) counts as UNPROCESSABLE; a readable message that was quarantined for its content
(invalid quantity, unknown subscription, ...) keeps its type and counts as quarantined.
"""
from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DateType,
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from metering_analytics.billing.prices import MONEY, MONEY_DECIMALS
from metering_analytics.billing.quantities import exact, reported
from metering_analytics.billing.reconciliation import attribute_to_subscriptions
from metering_analytics.gold.periods import instant, minutes_between
from metering_analytics.schemas import MESSAGE_TYPES

UNPROCESSABLE = "unprocessable"
NOT_IN_SILVER = "not_in_silver"  # in bronze, not (yet) in silver: silver has not caught up
PENDING = "Pending"  # expected usage hours with no submission yet
UNPROCESSABLE_REASONS = ("null_body", "binary", "not_json", "missing_field", "unknown_type", "unrecognised_path",
                         "invalid_enqueued_time")
_LIFECYCLE_TYPES = ("SubscriptionPurchased", "SubscriptionDeleted")
_BILLED_QUANTITY = "decimal(22,9)"


def _event_totals_schema(period: str, period_type) -> StructType:
    return StructType(
        [
            StructField(period, period_type, True),  # null: the enqueued time could not be read
            StructField("partition_id", StringType(), True),  # null: the file path matched no layout
            StructField("message_type", StringType(), False),
            StructField("events", LongType(), False),
            StructField("quarantined_events", LongType(), False),
        ]
    )


EVENT_TOTALS_HOURLY_SCHEMA = _event_totals_schema("hour", TimestampType())
EVENT_TOTALS_DAILY_SCHEMA = _event_totals_schema("day", DateType())

EVENTS_BY_SUBSCRIPTION_DAILY_SCHEMA = StructType(
    [
        StructField("day", DateType(), False),
        StructField("subscription_key", StringType(), True),  # null: a submission naming no known subscription
        StructField("plan_id", StringType(), True),
        StructField("message_type", StringType(), False),
        StructField("events", LongType(), False),
    ]
)

USAGE_BY_SUBSCRIPTION_TYPE_DAILY_SCHEMA = StructType(
    [
        StructField("day", DateType(), False),
        StructField("plan_id", StringType(), False),
        StructField("renewal_interval", StringType(), False),
        StructField("offer_type", StringType(), False),
        StructField("meter_name", StringType(), False),
        StructField("subscriptions_with_usage", LongType(), False),
        StructField("events", LongType(), False),
        StructField("quantity", DoubleType(), False),
    ]
)

THROUGHPUT_SCHEMA = StructType(
    [
        StructField("grain", StringType(), False),  # hour | day
        StructField("period_start", TimestampType(), False),
        StructField("events", LongType(), False),
        StructField("peak_minute_events", LongType(), False),
        StructField("peak_events_per_second", DoubleType(), False),  # busiest minute / 60
        StructField("peak_second_events", LongType(), False),  # busiest single second
        StructField("capacity_events_per_second", LongType(), False),
        StructField("headroom_percent", DoubleType(), False),
        StructField("second_headroom_percent", DoubleType(), False),
    ]
)

SUBMISSION_HEALTH_DAILY_SCHEMA = StructType(
    [
        StructField("day", DateType(), True),  # day of the usage hour; null when a submission names none
        StructField("status", StringType(), False),  # Marketplace status, or Pending
        StructField("submissions", LongType(), False),
        StructField("usage_hours", LongType(), False),
        StructField("quantity", DoubleType(), False),
        StructField("value", MONEY, True),  # null when the catalog has no price for some of it
        StructField("currency", StringType(), False),
        StructField("median_latency_minutes", DoubleType(), True),  # Accepted only
        StructField("p95_latency_minutes", DoubleType(), True),
    ]
)

DATA_QUALITY_DAILY_SCHEMA = StructType(
    [
        StructField("day", DateType(), True),  # null: the enqueued time could not be read
        StructField("reason", StringType(), False),
        StructField("message_type", StringType(), True),  # the body's type when it could be read
        StructField("records", LongType(), False),
    ]
)

DATA_FRESHNESS_SCHEMA = StructType(
    [
        StructField("event_hub", StringType(), True),
        StructField("partition_id", StringType(), False),
        StructField("events", LongType(), False),
        StructField("latest_enqueued_time", TimestampType(), True),
        StructField("latest_sequence_number", LongType(), False),
        StructField("last_ingested_at", TimestampType(), False),
        StructField("as_of", TimestampType(), False),
        StructField("lag_minutes", DoubleType(), True),
    ]
)


# -- event totals -------------------------------------------------------------------------------------
def classified_messages(usage_events: DataFrame, submissions: DataFrame, pings: DataFrame, maintenance: DataFrame,
                        lifecycle: DataFrame, quarantine: DataFrame) -> DataFrame:
    """(partition_id, sequence_number, enqueued_time, message_type, quarantined) for every silver record."""
    def typed(df: DataFrame, message_type) -> DataFrame:
        return df.select("partition_id", "sequence_number", "enqueued_time",
                         message_type.alias("message_type"), F.lit(False).alias("quarantined"))

    # A rejected purchase or deletion stays in the lifecycle table and is also quarantined: count it once.
    rejected_lifecycle = quarantine.where(F.col("message_type").isin(*_LIFECYCLE_TYPES)).select(
        "partition_id", "sequence_number")
    readable = F.col("message_type").isin(*MESSAGE_TYPES) & ~F.col("reason").isin(*UNPROCESSABLE_REASONS)
    return (
        typed(usage_events, F.lit("UsageReported"))
        .unionByName(typed(submissions, F.lit("UsageSubmittedToAPI")))
        .unionByName(typed(pings, F.lit("Ping")))
        .unionByName(typed(maintenance, F.col("message_type")))
        .unionByName(typed(lifecycle.join(rejected_lifecycle, ["partition_id", "sequence_number"], "left_anti"),
                           F.col("message_type")))
        .unionByName(quarantine.select(
            "partition_id", "sequence_number", "enqueued_time",
            F.when(readable, F.col("message_type")).otherwise(F.lit(UNPROCESSABLE)).alias("message_type"),
            F.lit(True).alias("quarantined"),
        ))
    )


def event_totals_hourly(bronze_events: DataFrame, classified: DataFrame) -> DataFrame:
    """EVENT_TOTALS_HOURLY_SCHEMA rows: records per enqueued hour, partition and message type.

    Bronze records not (yet) in silver are counted as NOT_IN_SILVER, so each (hour, partition) adds up
    to bronze. Both sides are aggregated before they meet: no join over the records themselves.
    """
    hour = F.date_trunc("hour", "enqueued_time").alias("hour")
    typed = classified.groupBy(hour, "partition_id", "message_type").agg(
        F.count(F.lit(1)).alias("events"), F.count(F.when(F.col("quarantined"), 1)).alias("quarantined_events"))
    # +bronze -silver per (hour, partition); grouping treats null keys as equal, which a join would not.
    unaccounted = (
        bronze_events.groupBy(hour, "partition_id").agg(F.count(F.lit(1)).alias("events"))
        .unionByName(typed.select("hour", "partition_id", (-F.col("events")).alias("events")))
        .groupBy("hour", "partition_id").agg(F.sum("events").alias("events"))
        .where(F.col("events") > 0)
        .select("hour", "partition_id", F.lit(NOT_IN_SILVER).alias("message_type"), "events",
                F.lit(0).cast("long").alias("quarantined_events"))
    )
    return typed.unionByName(unaccounted)


def event_totals_daily(hourly: DataFrame) -> DataFrame:
    """EVENT_TOTALS_DAILY_SCHEMA rows: the hourly totals summed per UTC day."""
    return hourly.groupBy(F.to_date("hour").alias("day"), "partition_id", "message_type").agg(
        F.sum("events").cast("long").alias("events"),
        F.sum("quarantined_events").cast("long").alias("quarantined_events"))


def events_by_subscription_daily(consumption_daily: DataFrame, submissions: DataFrame,
                                 subscriptions: DataFrame) -> DataFrame:
    """EVENTS_BY_SUBSCRIPTION_DAILY_SCHEMA rows: per enqueued day and subscription, its valid usage
    events, the submissions of its usage (attributed by the identity rule, as in the reconciliation) and
    its purchase and deletion. Quarantined records name no resolved subscription and are not here."""
    plans = subscriptions.select("subscription_key", "plan_id")
    usage = consumption_daily.select("day", "subscription_key", "plan_id",
                                     F.lit("UsageReported").alias("message_type"), "events")
    positions = ["partition_id", "sequence_number"]
    submitted = (
        attribute_to_subscriptions(
            submissions.select(*positions, "enqueued_time", "resource_id", "resource_uri"), subscriptions, positions)
        .join(plans, "subscription_key", "left")
        .select(F.to_date("enqueued_time").alias("day"), "subscription_key", "plan_id",
                F.lit("UsageSubmittedToAPI").alias("message_type"), F.lit(1).cast("long").alias("events"))
    )
    purchased = subscriptions.select(F.to_date("purchased_at").alias("day"), "subscription_key", "plan_id",
                                     F.lit("SubscriptionPurchased").alias("message_type"),
                                     F.lit(1).cast("long").alias("events"))
    deleted = subscriptions.where(F.col("deleted_at").isNotNull()).select(
        F.to_date("deleted_at").alias("day"), "subscription_key", "plan_id",
        F.lit("SubscriptionDeleted").alias("message_type"), F.lit(1).cast("long").alias("events"))
    return (
        usage.unionByName(submitted).unionByName(purchased).unionByName(deleted)
        .groupBy("day", "subscription_key", "plan_id", "message_type")
        .agg(F.sum("events").cast("long").alias("events"))
    )


def usage_by_subscription_type_daily(consumption_daily: DataFrame, subscriptions: DataFrame) -> DataFrame:
    """USAGE_BY_SUBSCRIPTION_TYPE_DAILY_SCHEMA rows: usage per day, plan, renewal interval, offer type
    (saas / managed_application) and meter."""
    kinds = subscriptions.select("subscription_key", "renewal_interval", "offer_type")
    return (
        consumption_daily.join(kinds, "subscription_key")
        .groupBy("day", "plan_id", "renewal_interval", "offer_type", "meter_name")
        .agg(
            F.count_distinct("subscription_key").alias("subscriptions_with_usage"),
            F.sum("events").cast("long").alias("events"),
            reported(F.sum(exact(F.col("quantity")))).alias("quantity"),
        )
    )


# -- throughput ---------------------------------------------------------------------------------------
def throughput(bronze_events: DataFrame, capacity_events_per_second: int) -> DataFrame:
    """THROUGHPUT_SCHEMA rows per hour and per day, over all partitions (capacity is per namespace).

    peak_events_per_second: the busiest 1-minute window (calendar minutes of the enqueued time) divided
    by 60, the sustained rate Event Hubs throttles on. peak_second_events: the most records enqueued in
    one calendar second (enqueued times have at least second resolution: Capture's EnqueuedTimeUtc).
    headroom = (capacity - peak) / capacity x 100; negative means throttling was likely.
    """
    seconds = bronze_events.where(F.col("enqueued_time").isNotNull()) \
        .groupBy(F.date_trunc("second", "enqueued_time").alias("second")).agg(F.count(F.lit(1)).alias("n"))
    minutes = seconds.groupBy(F.date_trunc("minute", "second").alias("minute")).agg(
        F.sum("n").alias("n"), F.max("n").alias("peak_second"))
    hourly = minutes.groupBy(F.date_trunc("hour", "minute").alias("period_start")).agg(
        F.sum("n").alias("events"), F.max("n").alias("peak_minute_events"),
        F.max("peak_second").alias("peak_second_events"))
    daily = hourly.groupBy(F.date_trunc("day", "period_start").alias("period_start")).agg(
        F.sum("events").alias("events"), F.max("peak_minute_events").alias("peak_minute_events"),
        F.max("peak_second_events").alias("peak_second_events"))
    capacity = F.lit(capacity_events_per_second)
    per_second = F.col("peak_minute_events") / 60
    return (
        hourly.withColumn("grain", F.lit("hour")).unionByName(daily.withColumn("grain", F.lit("day")))
        .select(
            "grain", "period_start", F.col("events").cast("long").alias("events"),
            F.col("peak_minute_events").cast("long").alias("peak_minute_events"),
            F.round(per_second, 4).alias("peak_events_per_second"),
            F.col("peak_second_events").cast("long").alias("peak_second_events"),
            capacity.cast("long").alias("capacity_events_per_second"),
            F.round((capacity - per_second) / capacity * 100, 2).alias("headroom_percent"),
            F.round((capacity - F.col("peak_second_events")) / capacity * 100, 2).alias("second_headroom_percent"),
        )
    )


# -- submissions --------------------------------------------------------------------------------------
def submission_health_daily(submissions: DataFrame, reconciliation: DataFrame, unit_prices: DataFrame,
                            currency: str) -> DataFrame:
    """SUBMISSION_HEALTH_DAILY_SCHEMA rows per day of the usage hour (effective_start_time) and status.

    submissions counts every UsageSubmittedToAPI result (retries included). Quantities are per usage
    hour (resource, plan, dimension, hour), so retries of one hour are not added up: usage_hours is the
    number of such keys, quantity the sum of their requested quantities, value that quantity at the
    unit price (for Expired: the revenue lost). Latency, Accepted only: from the start of the usage hour
    to its first acceptance, Marketplace's messageTime, else the enqueued time of the result; it
    includes the hour itself. Pending: usage hours the rules expect and nothing was submitted for yet
    (gold.billing_reconciliation), with their expected quantity.
    """
    accepted_at = F.coalesce("message_time", "enqueued_time")
    submitted = submissions.select(
        F.to_date("effective_start_time").alias("day"),
        F.coalesce("status", F.lit("(none)")).alias("status"),
        F.coalesce("resource_uri", "resource_id").alias("resource"), "plan_id", "dimension", "effective_start_time",
        F.lit(1).alias("submission"), "quantity",
        F.when(F.col("status") == "Accepted", minutes_between(F.col("effective_start_time"), accepted_at))
        .alias("latency"),
    )
    pending = reconciliation.where(F.col("status") == "pending").select(
        F.to_date("effective_start_time").alias("day"), F.lit(PENDING).alias("status"),
        F.col("subscription_key").alias("resource"), "plan_id", "dimension", "effective_start_time",
        F.lit(0).alias("submission"), F.col("expected_quantity").alias("quantity"),
        F.lit(None).cast("double").alias("latency"),
    )
    per_hour = (
        submitted.unionByName(pending)
        .groupBy("day", "status", "resource", "plan_id", "dimension", "effective_start_time")
        .agg(F.sum("submission").alias("submissions"),
             F.max(F.col("quantity").cast(_BILLED_QUANTITY)).alias("quantity"),
             F.min("latency").alias("latency"))
        .join(F.broadcast(unit_prices), ["plan_id", "dimension"], "left")
    )
    quantity = F.coalesce(F.col("quantity"), F.lit(0).cast(_BILLED_QUANTITY))
    # quantity x price is exact (DECIMAL(38, 17)); one rounding after the sum. A value missing a
    # price for part of it would understate: null instead.
    unpriced = F.col("unit_price").isNull() & (quantity != 0)
    return (
        per_hour.groupBy("day", "status")
        .agg(
            F.sum("submissions").cast("long").alias("submissions"),
            F.count(F.lit(1)).alias("usage_hours"),
            F.sum(quantity).cast("double").alias("quantity"),
            F.when(F.count(F.when(unpriced, 1)) == 0,
                   F.round(F.coalesce(F.sum(quantity * F.col("unit_price")), F.lit(0)), MONEY_DECIMALS)
                   .cast(MONEY)).alias("value"),
            F.round(F.percentile("latency", F.lit(0.5)), 2).alias("median_latency_minutes"),
            F.round(F.percentile("latency", F.lit(0.95)), 2).alias("p95_latency_minutes"),
        )
        .withColumn("currency", F.lit(currency))
        .select(*[f.name for f in SUBMISSION_HEALTH_DAILY_SCHEMA.fields])
    )


# -- data quality and freshness -----------------------------------------------------------------------
def data_quality_daily(quarantine: DataFrame) -> DataFrame:
    """DATA_QUALITY_DAILY_SCHEMA rows: quarantined records per enqueued day, reason and body type."""
    return quarantine.groupBy(F.col("enqueued_date").alias("day"), "reason", "message_type").agg(
        F.count(F.lit(1)).alias("records"))


_LATEST = ("events", "latest_enqueued_time", "latest_sequence_number", "last_ingested_at")


def partition_latest(bronze_events: DataFrame) -> DataFrame:
    """Per event hub and partition: records, latest enqueued time and sequence number, last ingestion."""
    return (
        bronze_events.where(F.col("partition_id").isNotNull())
        .groupBy("event_hub", "partition_id")
        .agg(
            F.count(F.lit(1)).alias("events"),
            F.max("enqueued_time").alias("latest_enqueued_time"),
            F.max("sequence_number").alias("latest_sequence_number"),
            F.max("ingested_at").alias("last_ingested_at"),
        )
    )


def add_latest(latest: DataFrame, added: DataFrame) -> DataFrame:
    """partition_latest of the records before plus partition_latest of records appended since: the
    same as partition_latest of all of them (counts add up, maxima of maxima)."""
    return (
        latest.select("event_hub", "partition_id", *_LATEST).unionByName(added.select("event_hub", "partition_id", *_LATEST))
        .groupBy("event_hub", "partition_id")
        .agg(F.sum("events").cast("long").alias("events"),
             *[F.max(c).alias(c) for c in _LATEST[1:]])
    )


def freshness(latest: DataFrame, as_of: datetime) -> DataFrame:
    """DATA_FRESHNESS_SCHEMA rows from partition_latest rows and the run's clock."""
    now = instant(as_of)
    return (
        latest.select("event_hub", "partition_id", *_LATEST)
        .withColumn("as_of", now)
        .withColumn("lag_minutes", F.round(minutes_between(F.col("latest_enqueued_time"), now), 2))
    )


def data_freshness(bronze_events: DataFrame, as_of: datetime) -> DataFrame:
    """DATA_FRESHNESS_SCHEMA rows: per event hub and partition, the latest enqueued record against
    `as_of` (the run's clock: the latest enqueued time over all partitions), so a partition that went
    quiet or stopped being captured shows a lag while the others do not."""
    return freshness(partition_latest(bronze_events), as_of)
