"""Explicit schemas: the Capture record, the accelerator's message bodies, and the bronze/silver tables.

Bodies are never schema-inferred. Quantities are read as strings because the accelerator writes them
as JSON numbers *or* strings ("10000", "1.5", "Infinite"); Spark's JSON reader keeps a number's text
when the target type is a string.
"""
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    BooleanType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

# ---------------------------------------------------------------------------------------------
# Event Hubs Capture record (Microsoft.ServiceBus.Messaging.EventData), as Spark's Avro reader sees
# it: map values are Avro unions, which Spark exposes as structs of member0..memberN.
# ---------------------------------------------------------------------------------------------
CAPTURE_AVRO_SCHEMA_JSON = {
    "type": "record",
    "name": "EventData",
    "namespace": "Microsoft.ServiceBus.Messaging",
    "fields": [
        {"name": "SequenceNumber", "type": "long"},
        {"name": "Offset", "type": "string"},
        {"name": "EnqueuedTimeUtc", "type": "string"},
        {"name": "SystemProperties", "type": {"type": "map", "values": ["long", "double", "string", "bytes"]}},
        {"name": "Properties", "type": {"type": "map", "values": ["long", "double", "string", "bytes", "null"]}},
        {"name": "Body", "type": ["null", "bytes"]},
    ],
}

_AVRO_UNION_VALUE = StructType(
    [
        StructField("member0", LongType()),
        StructField("member1", DoubleType()),
        StructField("member2", StringType()),
        StructField("member3", BinaryType()),
    ]
)

CAPTURE_SPARK_SCHEMA = StructType(
    [
        StructField("SequenceNumber", LongType(), False),
        StructField("Offset", StringType(), False),
        StructField("EnqueuedTimeUtc", StringType(), False),
        StructField("SystemProperties", MapType(StringType(), _AVRO_UNION_VALUE), False),
        StructField("Properties", MapType(StringType(), _AVRO_UNION_VALUE), False),
        StructField("Body", BinaryType(), True),
    ]
)

# ---------------------------------------------------------------------------------------------
# Message bodies: {"type": T, "value": {...}}
# ---------------------------------------------------------------------------------------------
MESSAGE_TYPES = (
    "SubscriptionPurchased",
    "SubscriptionDeleted",
    "UsageReported",
    "UsageSubmittedToAPI",
    "Ping",
    "RemoveUnprocessedMessages",
)

_TIER = StructType([StructField("dimension", StringType()), StructField("threshold", StringType())])
BILLING_DIMENSION_SCHEMA = StructType(
    [
        StructField("type", StringType()),
        StructField("dimension", StringType()),
        StructField("included", StringType()),
        StructField("tiers", ArrayType(_TIER)),
    ]
)
_PLAN = StructType(
    [
        StructField("planId", StringType()),
        StructField("billingDimensions", MapType(StringType(), BILLING_DIMENSION_SCHEMA)),
    ]
)
_SUBSCRIPTION = StructType(
    [
        StructField("resourceId", StringType()),
        StructField("resourceUri", StringType()),
        StructField("subscriptionStart", StringType()),
        StructField("renewalInterval", StringType()),
        StructField("plan", _PLAN),
    ]
)
_MARKETPLACE_REQUEST_FIELDS = [
    StructField("resourceId", StringType()),
    StructField("resourceUri", StringType()),
    StructField("effectiveStartTime", StringType()),
    StructField("planId", StringType()),
    StructField("dimension", StringType()),
    StructField("quantity", StringType()),
    StructField("status", StringType()),
    StructField("usageEventId", StringType()),
    StructField("messageTime", StringType()),
]
_ERROR_DETAIL = StructType(
    [StructField("code", StringType()), StructField("target", StringType()), StructField("message", StringType())]
)
_MARKETPLACE_ERROR = StructType(
    [
        StructField("code", StringType()),
        StructField("target", StringType()),
        StructField("message", StringType()),
        StructField("details", ArrayType(_ERROR_DETAIL)),
        StructField(
            "additionalInfo",
            StructType([StructField("acceptedMessage", StructType(list(_MARKETPLACE_REQUEST_FIELDS)))]),
        ),
    ]
)
_SUBMISSION_RESULT = StructType(list(_MARKETPLACE_REQUEST_FIELDS) + [StructField("error", _MARKETPLACE_ERROR)])

MESSAGE_VALUE_SCHEMA = StructType(
    [
        # SubscriptionPurchased
        StructField("subscription", _SUBSCRIPTION),
        # SubscriptionDeleted / UsageReported
        StructField("resourceId", StringType()),
        StructField("resourceUri", StringType()),
        StructField("timestamp", StringType()),
        StructField("meterName", StringType()),
        StructField("quantity", StringType()),
        # UsageReported: the application's key/value pairs, kept as JSON text here and parsed on their own
        # (silver.facts.body_properties), so a malformed `properties` cannot void the rest of the message.
        StructField("properties", StringType()),
        # UsageSubmittedToAPI
        StructField(
            "httpHeaders",
            StructType([StructField("xMsRequestId", StringType()), StructField("xMsCorrelationId", StringType())]),
        ),
        StructField("result", _SUBMISSION_RESULT),
        # Ping / RemoveUnprocessedMessages
        StructField("partitionId", StringType()),
        StructField("localTime", StringType()),
        StructField("reason", StringType()),
        StructField("sender", StringType()),
        StructField("beforeIncluding", StringType()),
        StructField("exactly", StringType()),
        StructField("all", StringType()),
    ]
)
MESSAGE_SCHEMA = StructType([StructField("type", StringType()), StructField("value", MESSAGE_VALUE_SCHEMA)])

# ---------------------------------------------------------------------------------------------
# Bronze
# ---------------------------------------------------------------------------------------------
BRONZE_EVENTS_SCHEMA = StructType(
    [
        # null when the file path matches none of the configured Capture layouts (quarantined in silver)
        StructField("partition_id", StringType(), True),
        StructField("sequence_number", LongType(), False),
        StructField("offset", StringType(), True),
        StructField("enqueued_time", TimestampType(), True),
        StructField("enqueued_time_raw", StringType(), True),
        StructField("enqueued_date", DateType(), True),
        StructField("system_properties", MapType(StringType(), StringType()), True),
        StructField("properties", MapType(StringType(), StringType()), True),
        StructField("body", BinaryType(), True),
        StructField("event_hub", StringType(), True),
        StructField("source_file", StringType(), False),
        StructField("ingested_at", TimestampType(), False),
    ]
)

# One row per Capture file seen: what its Avro framing holds and what the reader got out of it.
BRONZE_CAPTURE_FILES_SCHEMA = StructType(
    [
        StructField("source_file", StringType(), False),
        StructField("file_size", LongType(), True),
        StructField("file_modified_at", TimestampType(), True),
        StructField("container_status", StringType(), True),  # ok | empty | corrupt (framing)
        StructField("container_problem", StringType(), True),
        StructField("avro_blocks", LongType(), True),
        StructField("avro_records", LongType(), True),  # records in the intact blocks
        StructField("records_read", LongType(), True),  # records Spark's Avro reader returned
        # The positions the file's records hold (io.key_ranges): recorded before they are written to
        # bronze.events, so a batch whose files meet no recorded range is appended rather than merged.
        StructField("partition_id", StringType(), True),
        StructField("min_sequence_number", LongType(), True),
        StructField("max_sequence_number", LongType(), True),
        StructField("audited_at", TimestampType(), True),
    ]
)

# ---------------------------------------------------------------------------------------------
# Silver. Every fact carries its Capture position (partition_id, sequence_number): the key that makes
# ingestion idempotent.
# ---------------------------------------------------------------------------------------------
SILVER_SUBSCRIPTIONS_SCHEMA = StructType(
    [
        # coalesce(resource_uri, resource_id) of the purchase: stable, and unique among tracked subscriptions.
        StructField("subscription_key", StringType(), False),
        StructField("resource_id", StringType(), True),
        StructField("resource_uri", StringType(), True),
        StructField("plan_id", StringType(), False),
        StructField("renewal_interval", StringType(), False),
        StructField("renewal_months", IntegerType(), False),
        StructField("subscription_start", TimestampType(), False),
        StructField("purchased_at", TimestampType(), False),
        StructField("deleted_at", TimestampType(), True),
        StructField("deleted_partition_id", StringType(), True),
        StructField("deleted_sequence_number", LongType(), True),
        StructField("offer_type", StringType(), False),  # saas | managed_application | unknown
        StructField("partition_id", StringType(), False),
        StructField("sequence_number", LongType(), False),
    ]
)

TIER_SCHEMA = StructType(
    [
        StructField("tier_index", IntegerType(), True),
        StructField("dimension", StringType(), True),
        StructField("threshold", DoubleType(), True),
    ]
)

SILVER_PLAN_DIMENSIONS_SCHEMA = StructType(
    [
        # The plan travels inside every purchase message, so the dimensions are kept per subscription:
        # billing always uses the definition the subscription was purchased with.
        StructField("subscription_key", StringType(), False),
        StructField("plan_id", StringType(), False),
        StructField("meter_name", StringType(), False),
        StructField("dimension_type", StringType(), False),  # simple | waterfall
        StructField("dimension", StringType(), True),  # simple: the Marketplace dimension; waterfall: null
        StructField("included_quantity", DoubleType(), True),  # simple: 0 when missing; null when infinite
        StructField("included_infinite", BooleanType(), False),
        StructField("tiers", ArrayType(TIER_SCHEMA), True),  # waterfall: tiers in order
    ]
)

SILVER_USAGE_EVENTS_SCHEMA = StructType(
    [
        StructField("partition_id", StringType(), False),
        StructField("sequence_number", LongType(), False),
        StructField("subscription_key", StringType(), False),
        StructField("resource_id", StringType(), True),  # as sent in the usage message
        StructField("resource_uri", StringType(), True),
        StructField("plan_id", StringType(), False),
        StructField("meter_name", StringType(), False),
        StructField("dimension", StringType(), True),  # simple dimension; null for a waterfall meter
        StructField("quantity", DoubleType(), False),
        StructField("enqueued_time", TimestampType(), False),
        StructField("event_timestamp", TimestampType(), True),
        StructField("properties", MapType(StringType(), StringType()), True),
    ]
)

SILVER_MARKETPLACE_SUBMISSIONS_SCHEMA = StructType(
    [
        StructField("partition_id", StringType(), False),
        StructField("sequence_number", LongType(), False),
        StructField("enqueued_time", TimestampType(), False),
        StructField("status", StringType(), True),
        StructField("resource_id", StringType(), True),
        StructField("resource_uri", StringType(), True),
        StructField("plan_id", StringType(), True),
        StructField("dimension", StringType(), True),
        StructField("effective_start_time", TimestampType(), True),
        StructField("quantity", DoubleType(), True),
        StructField("usage_event_id", StringType(), True),
        StructField("message_time", TimestampType(), True),
        StructField("error_code", StringType(), True),
        StructField("error_message", StringType(), True),
        StructField("error_details", StringType(), True),  # JSON text of error.details
        StructField("accepted_resource_id", StringType(), True),
        StructField("accepted_resource_uri", StringType(), True),
        StructField("accepted_plan_id", StringType(), True),
        StructField("accepted_dimension", StringType(), True),
        StructField("accepted_effective_start_time", TimestampType(), True),
        StructField("accepted_quantity", DoubleType(), True),
        StructField("accepted_usage_event_id", StringType(), True),
        StructField("accepted_message_time", TimestampType(), True),
        StructField("request_id", StringType(), True),
        StructField("correlation_id", StringType(), True),
    ]
)

SILVER_PINGS_SCHEMA = StructType(
    [
        StructField("partition_id", StringType(), False),
        StructField("sequence_number", LongType(), False),
        StructField("enqueued_time", TimestampType(), False),
        StructField("reported_partition_id", StringType(), True),
        StructField("local_time", TimestampType(), True),
        StructField("reason", StringType(), True),
        StructField("sender", StringType(), True),
    ]
)

SILVER_MAINTENANCE_SCHEMA = StructType(
    [
        StructField("partition_id", StringType(), False),
        StructField("sequence_number", LongType(), False),
        StructField("enqueued_time", TimestampType(), False),
        StructField("message_type", StringType(), False),
        StructField("target_partition_id", StringType(), True),
        StructField("before_including", LongType(), True),
        StructField("exactly", LongType(), True),
        StructField("all", BooleanType(), True),
    ]
)

# Every valid SubscriptionPurchased and SubscriptionDeleted message, as received. silver.subscriptions
# and silver.plan_dimensions are derived from it as a whole, so the result does not depend on the
# order in which Capture files arrive.
SILVER_SUBSCRIPTION_LIFECYCLE_SCHEMA = StructType(
    [
        StructField("partition_id", StringType(), False),
        StructField("sequence_number", LongType(), False),
        StructField("enqueued_time", TimestampType(), False),
        StructField("message_type", StringType(), False),  # SubscriptionPurchased | SubscriptionDeleted
        StructField("resource_id", StringType(), True),
        StructField("resource_uri", StringType(), True),
        StructField("plan_id", StringType(), True),
        StructField("renewal_interval", StringType(), True),
        StructField("subscription_start", TimestampType(), True),
        StructField("billing_dimensions_json", StringType(), True),  # the plan's billingDimensions, as JSON
        StructField("body", BinaryType(), True),  # kept so a rejected purchase/deletion can be quarantined whole
        StructField("source_file", StringType(), True),
    ]
)

QUARANTINE_REASONS = (
    "null_body",
    "binary",
    "not_json",
    "unknown_type",
    "missing_field",
    "invalid_quantity",
    "invalid_timestamp",
    "invalid_plan",
    "unknown_subscription",
    "before_subscription_start",
    "unknown_meter",
    "after_deletion",
    "duplicate_purchase",
    "invalid_enqueued_time",
    "unrecognised_path",
)

SILVER_QUARANTINE_SCHEMA = StructType(
    [
        StructField("partition_id", StringType(), True),  # null when the file path matched no layout
        StructField("sequence_number", LongType(), False),
        StructField("enqueued_time", TimestampType(), True),
        StructField("enqueued_date", DateType(), True),
        StructField("reason", StringType(), False),
        StructField("detail", StringType(), True),
        StructField("message_type", StringType(), True),
        StructField("body_text", StringType(), True),  # UTF-8 text when the body is text
        StructField("body", BinaryType(), True),  # the raw bytes, to fix and replay
        StructField("properties", MapType(StringType(), StringType()), True),
        StructField("source_file", StringType(), True),
        StructField("quarantined_at", TimestampType(), False),
    ]
)


# ---------------------------------------------------------------------------------------------
# The accelerator's own state snapshots (its view of every meter), for comparison with ours.
# ---------------------------------------------------------------------------------------------
BRONZE_SNAPSHOTS_SCHEMA = StructType(
    [
        StructField("snapshot_file", StringType(), False),
        StructField("partition_id", StringType(), True),  # the folder name above latest.json.gz
        StructField("content_sha256", StringType(), False),
        StructField("content", StringType(), False),
        StructField("file_modified_at", TimestampType(), True),
        StructField("ingested_at", TimestampType(), False),
    ]
)

_POSITION_JSON = StructType(
    [
        StructField("partitionId", StringType()),
        StructField("sequenceNumber", StringType()),
        StructField("partitionTimestamp", StringType()),
    ]
)
_METER_VALUE = StructType(
    [
        StructField("included", StructType([
            StructField("quantity", StringType()),
            StructField("consumed", StringType()),
            StructField("total", StringType()),
            StructField("lastUpdate", StringType()),
        ])),
        StructField("consumed", StructType([
            StructField("consumedQuantity", StringType()),
            StructField("total", StringType()),
            StructField("lastUpdate", StringType()),
        ])),
        # waterfall meters
        StructField("total", StringType()),
        StructField("consumption", MapType(StringType(), StringType())),
        StructField("lastUpdate", StringType()),
    ]
)
_SNAPSHOT_DIMENSION = StructType(list(BILLING_DIMENSION_SCHEMA.fields) + [StructField("meter", _METER_VALUE)])
_USAGE_TO_BE_REPORTED = StructType(
    [
        StructField("resourceId", StringType()),
        StructField("resourceUri", StringType()),
        StructField("planId", StringType()),
        StructField("dimension", StringType()),
        StructField("quantity", StringType()),
        StructField("effectiveStartTime", StringType()),
    ]
)
SNAPSHOT_JSON_SCHEMA = StructType(
    [
        StructField("lastProcessedMessage", _POSITION_JSON),
        StructField(
            "meters",
            ArrayType(StructType([
                StructField("subscription", StructType([
                    StructField("resourceId", StringType()),
                    StructField("resourceUri", StringType()),
                    StructField("subscriptionStart", StringType()),
                    StructField("renewalInterval", StringType()),
                    StructField("plan", StructType([
                        StructField("planId", StringType()),
                        StructField("billingDimensions", MapType(StringType(), _SNAPSHOT_DIMENSION)),
                    ])),
                ])),
                StructField("usageToBeReported", ArrayType(_USAGE_TO_BE_REPORTED)),
                StructField("lastProcessedMessage", _POSITION_JSON),
            ])),
        ),
    ]
)

SILVER_METER_SNAPSHOTS_SCHEMA = StructType(
    [
        StructField("snapshot_file", StringType(), False),
        StructField("content_sha256", StringType(), False),
        StructField("snapshot_partition_id", StringType(), True),
        StructField("snapshot_sequence_number", LongType(), True),
        StructField("snapshot_time", TimestampType(), True),
        StructField("subscription_key", StringType(), True),
        StructField("resource_id", StringType(), True),
        StructField("resource_uri", StringType(), True),
        StructField("plan_id", StringType(), True),
        StructField("renewal_interval", StringType(), True),
        StructField("subscription_start", TimestampType(), True),
        StructField("meter_name", StringType(), False),
        StructField("dimension_type", StringType(), True),
        StructField("dimension", StringType(), True),
        StructField("included_infinite", BooleanType(), True),
        StructField("included_remaining", DoubleType(), True),  # simple meter still within its included quantity
        StructField("included_consumed", DoubleType(), True),
        StructField("overage_total", DoubleType(), True),  # simple meter in overage: total this cycle
        StructField("overage_current_hour", DoubleType(), True),  # consumedQuantity not yet reported
        StructField("waterfall_total", DoubleType(), True),
        StructField("waterfall_consumption", MapType(StringType(), DoubleType()), True),
        StructField("last_update", TimestampType(), True),
    ]
)

SILVER_SNAPSHOT_USAGE_TO_BE_REPORTED_SCHEMA = StructType(
    [
        StructField("snapshot_file", StringType(), False),
        StructField("content_sha256", StringType(), False),
        StructField("snapshot_time", TimestampType(), True),
        StructField("subscription_key", StringType(), True),
        StructField("resource_id", StringType(), True),
        StructField("resource_uri", StringType(), True),
        StructField("plan_id", StringType(), True),
        StructField("dimension", StringType(), True),
        StructField("quantity", DoubleType(), True),
        StructField("effective_start_time", TimestampType(), True),
    ]
)
