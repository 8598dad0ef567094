"""Decoded, valid messages -> silver fact rows, one function per message type (pure transforms)."""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import MapType, StringType

from metering_analytics.io.lakehouse import with_columns_of
from metering_analytics.schemas import (
    SILVER_MAINTENANCE_SCHEMA,
    SILVER_MARKETPLACE_SUBMISSIONS_SCHEMA,
    SILVER_PINGS_SCHEMA,
    SILVER_QUARANTINE_SCHEMA,
    SILVER_SUBSCRIPTION_LIFECYCLE_SCHEMA,
)
from metering_analytics.silver.messages import body_text
from metering_analytics.silver.values import parse_body_timestamp, parse_quantity

# A usage message that passed validation, not yet resolved to a subscription.
USAGE_CANDIDATE_COLUMNS = (
    "partition_id", "sequence_number", "enqueued_time", "resource_id", "resource_uri",
    "meter_name", "quantity", "event_timestamp", "properties", "body", "source_file",
)


PROPERTIES_SCHEMA = MapType(StringType(), StringType())


def body_properties(properties_json: Column) -> Column:
    """A UsageReported body's `value.properties` (JSON text) -> map<string,string>.

    Non-string values are kept as their JSON text (`1.5`, `true`, `{"a":1}`); a JSON null stays null;
    anything that is not a JSON object gives null (no properties), never a rejected message.
    """
    return F.from_json(properties_json, PROPERTIES_SCHEMA)


def merged_properties(body: Column, application: Column) -> Column:
    """Body properties, plus the Capture record's application properties for keys the body does not set.

    Written without map_concat's duplicate-key policy, so the result never depends on a session setting.
    Null when neither side has any entry.
    """
    body = F.coalesce(body, F.create_map().cast(PROPERTIES_SCHEMA))
    application = F.coalesce(application, F.create_map().cast(PROPERTIES_SCHEMA))
    only_application = F.map_filter(application, lambda k, _v: ~F.array_contains(F.map_keys(body), k))
    merged = F.map_concat(body, only_application)
    return F.when(F.size(merged) > 0, merged)


def _valid(decoded: DataFrame, message_type: str) -> DataFrame:
    return decoded.where(F.col("reason").isNull() & (F.col("message_type") == message_type))


def subscription_lifecycle(decoded: DataFrame) -> DataFrame:
    purchased = _valid(decoded, "SubscriptionPurchased").select(
        "partition_id", "sequence_number", "enqueued_time", "message_type",
        F.col("value.subscription.resourceId").alias("resource_id"),
        F.col("value.subscription.resourceUri").alias("resource_uri"),
        F.col("value.subscription.plan.planId").alias("plan_id"),
        F.col("value.subscription.renewalInterval").alias("renewal_interval"),
        parse_body_timestamp(F.col("value.subscription.subscriptionStart")).alias("subscription_start"),
        F.to_json(F.col("value.subscription.plan.billingDimensions")).alias("billing_dimensions_json"),
        "body", "source_file",
    )
    deleted = _valid(decoded, "SubscriptionDeleted").select(
        "partition_id", "sequence_number", "enqueued_time", "message_type",
        F.col("value.resourceId").alias("resource_id"),
        F.col("value.resourceUri").alias("resource_uri"),
        "body", "source_file",
    )
    return with_columns_of(purchased.unionByName(deleted, allowMissingColumns=True),
                           SILVER_SUBSCRIPTION_LIFECYCLE_SCHEMA)


def usage_candidates(decoded: DataFrame) -> DataFrame:
    return _valid(decoded, "UsageReported").select(
        "partition_id", "sequence_number", "enqueued_time",
        F.col("value.resourceId").alias("resource_id"),
        F.col("value.resourceUri").alias("resource_uri"),
        F.col("value.meterName").alias("meter_name"),
        parse_quantity(F.col("value.quantity")).alias("quantity"),
        parse_body_timestamp(F.col("value.timestamp")).alias("event_timestamp"),
        merged_properties(body_properties(F.col("value.properties")), F.col("properties")).alias("properties"),
        "body", "source_file",
    )


def marketplace_submissions(decoded: DataFrame) -> DataFrame:
    result = F.col("value.result")
    accepted = result["error"]["additionalInfo"]["acceptedMessage"]
    rows = _valid(decoded, "UsageSubmittedToAPI").select(
        "partition_id", "sequence_number", "enqueued_time",
        result["status"].alias("status"),
        result["resourceId"].alias("resource_id"),
        result["resourceUri"].alias("resource_uri"),
        result["planId"].alias("plan_id"),
        result["dimension"].alias("dimension"),
        parse_body_timestamp(result["effectiveStartTime"]).alias("effective_start_time"),
        parse_quantity(result["quantity"]).alias("quantity"),
        result["usageEventId"].alias("usage_event_id"),
        parse_body_timestamp(result["messageTime"]).alias("message_time"),
        result["error"]["code"].alias("error_code"),
        result["error"]["message"].alias("error_message"),
        F.when(result["error"]["details"].isNotNull(), F.to_json(result["error"]["details"])).alias("error_details"),
        accepted["resourceId"].alias("accepted_resource_id"),
        accepted["resourceUri"].alias("accepted_resource_uri"),
        accepted["planId"].alias("accepted_plan_id"),
        accepted["dimension"].alias("accepted_dimension"),
        parse_body_timestamp(accepted["effectiveStartTime"]).alias("accepted_effective_start_time"),
        parse_quantity(accepted["quantity"]).alias("accepted_quantity"),
        accepted["usageEventId"].alias("accepted_usage_event_id"),
        parse_body_timestamp(accepted["messageTime"]).alias("accepted_message_time"),
        F.col("value.httpHeaders.xMsRequestId").alias("request_id"),
        F.col("value.httpHeaders.xMsCorrelationId").alias("correlation_id"),
    )
    return with_columns_of(rows, SILVER_MARKETPLACE_SUBMISSIONS_SCHEMA)


def pings(decoded: DataFrame) -> DataFrame:
    rows = _valid(decoded, "Ping").select(
        "partition_id", "sequence_number", "enqueued_time",
        F.col("value.partitionId").alias("reported_partition_id"),
        parse_body_timestamp(F.col("value.localTime")).alias("local_time"),
        F.col("value.reason").alias("reason"),
        F.col("value.sender").alias("sender"),
    )
    return with_columns_of(rows, SILVER_PINGS_SCHEMA)


def maintenance(decoded: DataFrame) -> DataFrame:
    rows = _valid(decoded, "RemoveUnprocessedMessages").select(
        "partition_id", "sequence_number", "enqueued_time", "message_type",
        F.col("value.partitionId").alias("target_partition_id"),
        F.col("value.beforeIncluding").try_cast("long").alias("before_including"),
        F.col("value.exactly").try_cast("long").alias("exactly"),
        (F.col("value.all") == F.lit("all")).alias("all"),
    )
    return with_columns_of(rows, SILVER_MAINTENANCE_SCHEMA)


def quarantine_rows(rows: DataFrame) -> DataFrame:
    """Rows with `reason`, `detail`, `message_type`, `body` and `source_file` -> silver.quarantine."""
    shaped = rows.select(
        "partition_id", "sequence_number", "enqueued_time",
        F.to_date("enqueued_time").alias("enqueued_date"),
        "reason", "detail", "message_type", body_text(F.col("body")).alias("body_text"), "body",
        (F.col("properties") if "properties" in rows.columns else F.lit(None)).alias("properties"),
        "source_file",
        F.current_timestamp().alias("quarantined_at"),
    )
    return with_columns_of(shaped, SILVER_QUARANTINE_SCHEMA)


def rejected(decoded: DataFrame) -> DataFrame:
    return quarantine_rows(decoded.where(F.col("reason").isNotNull()))
