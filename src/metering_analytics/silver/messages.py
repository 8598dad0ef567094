"""bronze.events -> decoded messages with a validation verdict (pure transforms).

Every bronze row gets exactly one outcome: a message type it is valid for, or a quarantine reason.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from metering_analytics.schemas import MESSAGE_SCHEMA, MESSAGE_TYPES
from metering_analytics.silver.values import (
    RENEWAL_MONTHS,
    is_infinite,
    parse_body_timestamp,
    parse_quantity,
)

BOM = "\ufeff"


def body_text(body: Column) -> Column:
    """The body as UTF-8 text without a leading BOM; null for null or non-UTF-8 (binary) bodies."""
    raw = body.cast("string")
    return F.when(F.is_valid_utf8(raw), F.regexp_replace(raw, f"^{BOM}", ""))


def _any_identity(value: Column) -> Column:
    return value["resourceId"].isNotNull() | value["resourceUri"].isNotNull()


def _dimension_problems(dimensions: Column) -> Column:
    """Number of billing dimensions that are not a well-formed simple or waterfall dimension."""

    def bad(_meter: Column, d: Column) -> Column:
        simple_ok = (d["type"] == "simple") & d["dimension"].isNotNull() & (
            d["included"].isNull() | is_infinite(d["included"]) | parse_quantity(d["included"]).isNotNull()
        )
        waterfall_ok = (d["type"] == "waterfall") & (F.coalesce(F.size(d["tiers"]), F.lit(0)) > 0) & F.forall(
            d["tiers"], lambda t: t["dimension"].isNotNull() & parse_quantity(t["threshold"]).isNotNull()
        )
        return ~F.coalesce(simple_ok | waterfall_ok, F.lit(False))

    return F.size(F.filter(F.map_entries(dimensions), lambda e: bad(e["key"], e["value"])))


def rejection(message_type: Column, value: Column) -> tuple[Column, Column]:
    """(reason, detail) for a parsed message that cannot be used; both null when it is valid."""
    sub = value["subscription"]
    plan = sub["plan"]
    checks: list[tuple[Column, str, Column]] = [
        # SubscriptionPurchased
        (
            (message_type == "SubscriptionPurchased") & (sub.isNull() | ~_any_identity(sub)),
            "missing_field", F.lit("subscription.resourceId/resourceUri"),
        ),
        (
            (message_type == "SubscriptionPurchased") & sub["subscriptionStart"].isNull(),
            "missing_field", F.lit("subscription.subscriptionStart"),
        ),
        (
            (message_type == "SubscriptionPurchased") & parse_body_timestamp(sub["subscriptionStart"]).isNull(),
            "invalid_timestamp", F.concat(F.lit("subscriptionStart="), sub["subscriptionStart"]),
        ),
        (
            (message_type == "SubscriptionPurchased") & ~sub["renewalInterval"].isin(*RENEWAL_MONTHS),
            "invalid_plan", F.concat(F.lit("renewalInterval="), F.coalesce(sub["renewalInterval"], F.lit("null"))),
        ),
        (
            (message_type == "SubscriptionPurchased") & (plan["planId"].isNull() | (F.coalesce(F.size(plan["billingDimensions"]), F.lit(0)) <= 0)),
            "invalid_plan", F.lit("plan.planId and plan.billingDimensions are required"),
        ),
        (
            (message_type == "SubscriptionPurchased") & (_dimension_problems(plan["billingDimensions"]) > 0),
            "invalid_plan", F.lit("a billing dimension is neither a valid simple nor waterfall dimension"),
        ),
        # SubscriptionDeleted
        ((message_type == "SubscriptionDeleted") & ~_any_identity(value), "missing_field", F.lit("resourceId/resourceUri")),
        # UsageReported
        ((message_type == "UsageReported") & ~_any_identity(value), "missing_field", F.lit("resourceId/resourceUri")),
        ((message_type == "UsageReported") & value["meterName"].isNull(), "missing_field", F.lit("meterName")),
        ((message_type == "UsageReported") & value["quantity"].isNull(), "missing_field", F.lit("quantity")),
        ((message_type == "UsageReported") & value["timestamp"].isNull(), "missing_field", F.lit("timestamp")),
        (
            (message_type == "UsageReported") & parse_quantity(value["quantity"]).isNull(),
            "invalid_quantity", F.concat(F.lit("quantity="), value["quantity"]),
        ),
        (
            (message_type == "UsageReported") & parse_body_timestamp(value["timestamp"]).isNull(),
            "invalid_timestamp", F.concat(F.lit("timestamp="), value["timestamp"]),
        ),
        # UsageSubmittedToAPI
        (
            (message_type == "UsageSubmittedToAPI") & value["result"]["status"].isNull(),
            "missing_field", F.lit("result.status"),
        ),
        # RemoveUnprocessedMessages
        (
            (message_type == "RemoveUnprocessedMessages") & value["partitionId"].isNull(),
            "missing_field", F.lit("partitionId"),
        ),
    ]
    reason = F.lit(None).cast("string")
    detail = F.lit(None).cast("string")
    for condition, code, text in reversed(checks):  # the first failing check wins
        reason = F.when(F.coalesce(condition, F.lit(False)), F.lit(code)).otherwise(reason)
        detail = F.when(F.coalesce(condition, F.lit(False)), text).otherwise(detail)
    return reason, detail


def decode_messages(bronze: DataFrame) -> DataFrame:
    """Add `message_type`, `value` (the parsed body), `body_text`, `reason` and `detail`.

    `reason` is null exactly when the record is a usable message of `message_type`.
    """
    text = body_text(F.col("body"))
    decoded = bronze.withColumn("body_text", text).withColumn("msg", F.from_json("body_text", MESSAGE_SCHEMA))
    mtype = F.col("msg.type")
    value = F.col("msg.value")
    invalid_json = F.try_parse_json(F.col("body_text")).isNull()
    content_reason, content_detail = rejection(mtype, value)
    reason = (
        F.when(F.col("partition_id").isNull(), F.lit("unrecognised_path"))
        .when(F.col("enqueued_time").isNull(), F.lit("invalid_enqueued_time"))
        .when(F.col("body").isNull(), F.lit("null_body"))
        .when(F.col("body_text").isNull(), F.lit("binary"))
        # from_json yields nulls, not an error, for malformed text: only then pay for a second parse.
        .when(mtype.isNull() & invalid_json, F.lit("not_json"))
        .when(mtype.isNull(), F.lit("missing_field"))
        .when(~mtype.isin(*MESSAGE_TYPES), F.lit("unknown_type"))
        .otherwise(content_reason)
    )
    detail = (
        F.when(F.col("partition_id").isNull(), F.lit("file path matches no Capture layout"))
        .when(F.col("enqueued_time").isNull(), F.concat(F.lit("EnqueuedTimeUtc="), F.col("enqueued_time_raw")))
        .when(F.col("body").isNull() | F.col("body_text").isNull(), F.lit(None).cast("string"))
        .when(mtype.isNull() & invalid_json, F.lit(None).cast("string"))
        .when(mtype.isNull(), F.lit("type"))
        .when(~mtype.isin(*MESSAGE_TYPES), F.concat(F.lit("type="), mtype))
        .otherwise(content_detail)
    )
    return (
        decoded.withColumn("message_type", mtype)
        .withColumn("value", value)
        .withColumn("reason", reason)
        .withColumn("detail", detail)
        .drop("msg")
    )
