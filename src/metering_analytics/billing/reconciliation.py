"""gold.billing_reconciliation: what the rules expect to be billed (gold.marketplace_usage) against what
Marketplace actually accepted (silver.marketplace_submissions), per subscription, plan, dimension and hour.

Billed is what Marketplace accepted: an `Accepted` result's request, or for a `Duplicate` the
`acceptedMessage` Marketplace had accepted earlier (its request fields when that is missing).
A submission is attributed to a subscription by the identity rule: equal resource URIs when both
sides have one, otherwise equal resource ids. Submissions that match no subscription are kept with a
null subscription_key.

Several submissions for one key (retries, duplicates): the one that counts is chosen by status
precedence Accepted > Duplicate > Expired > any other (error) status, then the earliest enqueued.
Marketplace accepts at most one usage per key, so Accepted and Duplicate results describe the same
accepted usage and are never added up.

status
  matched              billed and expected agree (within MATCH_TOLERANCE)
  quantity_mismatch    billed, but a different quantity than expected
  pending              expected, no submission yet
  expired              the chosen submission expired (Marketplace refuses usage older than its window)
  rejected             the chosen submission failed: ResourceNotFound or another error status
  billed_not_expected  Marketplace accepted usage that the rules do not expect at all
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, IntegerType, StringType, StructField, StructType, TimestampType

from metering_analytics.billing.quantities import exact, reported

# Quantities on both sides are doubles with at most 9 decimals on ours; anything closer than this is
# the same number as far as Marketplace billing goes.
MATCH_TOLERANCE = 1e-6

BILLED_STATUSES = ("Accepted", "Duplicate")
STATUSES = ("matched", "quantity_mismatch", "pending", "expired", "rejected", "billed_not_expected")

RECONCILIATION_SCHEMA = StructType(
    [
        StructField("subscription_key", StringType(), True),  # null: submission for an unknown subscription
        StructField("resource_id", StringType(), True),
        StructField("resource_uri", StringType(), True),
        StructField("plan_id", StringType(), True),
        StructField("dimension", StringType(), True),
        StructField("effective_start_time", TimestampType(), True),
        StructField("expected_quantity", DoubleType(), False),  # 0 when the rules expect nothing
        StructField("billed_quantity", DoubleType(), False),  # 0 when nothing was accepted
        StructField("difference", DoubleType(), False),  # expected - billed
        StructField("status", StringType(), False),
        StructField("submission_status", StringType(), True),  # Marketplace status of the chosen submission
        StructField("submission_count", IntegerType(), False),
        StructField("submitted_quantity", DoubleType(), True),  # the chosen submission's quantity
        StructField("usage_event_id", StringType(), True),
        StructField("error_code", StringType(), True),
        StructField("submitted_at", TimestampType(), True),  # enqueued time of the chosen submission
    ]
)

_KEY = ["match_key", "plan_id", "dimension", "effective_start_time"]


def _billed_field(name: str) -> Column:
    """For a Duplicate the accepted message holds what Marketplace billed."""
    return F.when(F.col("status") == "Duplicate", F.coalesce(F.col(f"accepted_{name}"), F.col(name))) \
        .otherwise(F.col(name)).alias(name)


def attribute_to_subscriptions(refs: DataFrame, subscriptions: DataFrame, row_key: list[str]) -> DataFrame:
    """Adds subscription_key to rows carrying resource_id/resource_uri, by the identity rule.

    Two equi-joins (by URI, and by id where not both sides have a URI) instead of one join on an OR
    condition, which Spark could only run as a nested loop.
    """
    subs = subscriptions.select("subscription_key", F.col("resource_id").alias("_sub_id"),
                                F.col("resource_uri").alias("_sub_uri"))
    ids = refs.select(*row_key, "resource_id", "resource_uri")
    by_uri = ids.join(F.broadcast(subs), F.col("resource_uri") == F.col("_sub_uri"))
    by_id = ids.join(
        F.broadcast(subs),
        (F.col("resource_id") == F.col("_sub_id"))
        & ~(F.col("resource_uri").isNotNull() & F.col("_sub_uri").isNotNull()),
    )
    matched = (
        by_uri.select(*row_key, "subscription_key").unionByName(by_id.select(*row_key, "subscription_key"))
        .groupBy(*row_key).agg(F.min("subscription_key").alias("subscription_key"))
    )
    return refs.join(matched, row_key, "left")


def billed_hour() -> Column:
    """The usage hour a submission bills (a Duplicate's accepted message's hour)."""
    return _billed_field("effective_start_time")


def billed_requests(submissions: DataFrame) -> DataFrame:
    """Each submission with the request fields that count (a Duplicate's accepted message)."""
    return submissions.select(
        "partition_id", "sequence_number", "enqueued_time", "status", "error_code",
        *[_billed_field(n) for n in ("resource_id", "resource_uri", "plan_id", "dimension",
                                     "effective_start_time", "quantity", "usage_event_id")],
    )


def chosen_submissions(submissions: DataFrame, subscriptions: DataFrame) -> DataFrame:
    """One row per reconciliation key: the submission that counts, and how many there were."""
    requests = billed_requests(submissions)
    attributed = attribute_to_subscriptions(requests, subscriptions, ["partition_id", "sequence_number"])
    precedence = (
        F.when(F.col("status") == "Accepted", 0).when(F.col("status") == "Duplicate", 1)
        .when(F.col("status") == "Expired", 2).otherwise(3)
    )
    # Unknown subscriptions still need a key to group their submissions by.
    match_key = F.coalesce(F.col("subscription_key"),
                           F.concat(F.lit("unattributed:"), F.coalesce("resource_uri", "resource_id")))
    # min over a struct compares field by field: precedence first, then the earliest submission.
    chosen = F.min(F.struct(
        precedence.alias("precedence"), "enqueued_time", "partition_id", "sequence_number",
        "status", "quantity", "usage_event_id", "error_code", "resource_id", "resource_uri", "subscription_key",
    ))
    return (
        attributed.withColumn("match_key", match_key)
        .groupBy(*_KEY)
        .agg(chosen.alias("s"), F.count(F.lit(1)).cast("int").alias("submission_count"))
    )


def billing_reconciliation(expected: DataFrame, submissions: DataFrame, subscriptions: DataFrame) -> DataFrame:
    """RECONCILIATION_SCHEMA rows from gold.marketplace_usage and silver.marketplace_submissions."""
    exp = expected.select(
        F.col("subscription_key").alias("match_key"), "plan_id", "dimension", "effective_start_time",
        F.col("subscription_key").alias("e_subscription_key"), F.col("resource_id").alias("e_resource_id"),
        F.col("resource_uri").alias("e_resource_uri"), F.col("quantity").alias("e_quantity"),
    )
    joined = exp.join(chosen_submissions(submissions, subscriptions), _KEY, "full")
    billed = F.col("s.status").isin(*BILLED_STATUSES)
    expected_q = F.coalesce(F.col("e_quantity"), F.lit(0.0))
    billed_q = F.when(billed, F.coalesce(F.col("s.quantity"), F.lit(0.0))).otherwise(F.lit(0.0))
    status = (
        F.when(F.col("s").isNull(), "pending")
        .when(billed & F.col("e_quantity").isNull(), "billed_not_expected")
        .when(billed & (F.abs(expected_q - billed_q) <= MATCH_TOLERANCE), "matched")
        .when(billed, "quantity_mismatch")
        .when(F.col("s.status") == "Expired", "expired")
        .otherwise("rejected")
    )
    return joined.select(
        F.coalesce("e_subscription_key", "s.subscription_key").alias("subscription_key"),
        F.coalesce("e_resource_id", "s.resource_id").alias("resource_id"),
        F.coalesce("e_resource_uri", "s.resource_uri").alias("resource_uri"),
        "plan_id", "dimension", "effective_start_time",
        expected_q.alias("expected_quantity"),
        billed_q.alias("billed_quantity"),
        reported(exact(expected_q) - exact(billed_q)).alias("difference"),
        status.alias("status"),
        F.col("s.status").alias("submission_status"),
        F.coalesce(F.col("submission_count"), F.lit(0)).alias("submission_count"),
        F.col("s.quantity").alias("submitted_quantity"),
        F.col("s.usage_event_id").alias("usage_event_id"),
        F.col("s.error_code").alias("error_code"),
        F.col("s.enqueued_time").alias("submitted_at"),
    )
