"""Operations tables: event totals by type, throughput, submission health, data quality, freshness."""
from __future__ import annotations

from datetime import date, datetime as dt, timedelta
from decimal import Decimal

from chispa import assert_df_equality

from billing_helpers import frame, submission, submissions_df, subscription, subscriptions_df, usage, usage_df
from gold_helpers import reconciled, reconciliation_df
from metering_analytics.billing.prices import parse_price_catalog, unit_price_frame
from metering_analytics.gold.customer_success import CONSUMPTION_DAILY_SCHEMA
from metering_analytics.gold.operations import (
    DATA_FRESHNESS_SCHEMA,
    DATA_QUALITY_DAILY_SCHEMA,
    EVENT_TOTALS_DAILY_SCHEMA,
    EVENT_TOTALS_HOURLY_SCHEMA,
    EVENTS_BY_SUBSCRIPTION_DAILY_SCHEMA,
    SUBMISSION_HEALTH_DAILY_SCHEMA,
    THROUGHPUT_SCHEMA,
    USAGE_BY_SUBSCRIPTION_TYPE_DAILY_SCHEMA,
    classified_messages,
    data_freshness,
    data_quality_daily,
    event_totals_daily,
    event_totals_hourly,
    events_by_subscription_daily,
    submission_health_daily,
    throughput,
    usage_by_subscription_type_daily,
)
from metering_analytics.schemas import (
    BRONZE_EVENTS_SCHEMA,
    SILVER_MAINTENANCE_SCHEMA,
    SILVER_PINGS_SCHEMA,
    SILVER_QUARANTINE_SCHEMA,
    SILVER_SUBSCRIPTION_LIFECYCLE_SCHEMA,
)

INGESTED = dt(2024, 3, 2)
H10 = dt(2024, 3, 1, 10)


def _equal(actual, expected):
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def _bronze(spark, rows):
    return frame(spark, [dict(partition_id=p, sequence_number=s, enqueued_time=t, event_hub="ns/hub",
                              source_file="f.avro", ingested_at=INGESTED) for p, s, t in rows], BRONZE_EVENTS_SCHEMA)


def _position(partition, sequence, enqueued, **more):
    return dict(partition_id=partition, sequence_number=sequence, enqueued_time=enqueued, **more)


def _quarantined(partition, sequence, enqueued, reason, message_type=None):
    return _position(partition, sequence, enqueued, reason=reason, message_type=message_type,
                     enqueued_date=enqueued.date() if enqueued else None, quarantined_at=INGESTED)


def test_event_totals_by_type_partition_and_hour(spark):
    at = [H10 + timedelta(minutes=m) for m in range(12)]
    bronze = _bronze(spark, [("0", s, at[s]) for s in range(1, 11)] + [
        ("0", 11, None), ("1", 1, dt(2024, 3, 1, 11)), ("1", 2, dt(2024, 3, 1, 11, 30)), (None, 1, H10)])
    classified = classified_messages(
        usage_df(spark, [usage("s1", "api", 1, at[1], 1), usage("s1", "api", 1, at[2], 2)]),
        submissions_df(spark, [submission(3, "Accepted", resource_id="s1", plan="plan", dimension="d", hour=H10,
                                          quantity=1.0, enqueued=at[3])]),
        frame(spark, [_position("0", 4, at[4])], SILVER_PINGS_SCHEMA),
        frame(spark, [_position("1", 1, dt(2024, 3, 1, 11), message_type="RemoveUnprocessedMessages")],
              SILVER_MAINTENANCE_SCHEMA),
        frame(spark, [_position("0", 5, at[5], message_type="SubscriptionPurchased"),
                      _position("0", 6, at[6], message_type="SubscriptionPurchased")],  # a duplicate, see below
              SILVER_SUBSCRIPTION_LIFECYCLE_SCHEMA),
        frame(spark, [
            _quarantined("0", 6, at[6], "duplicate_purchase", "SubscriptionPurchased"),
            _quarantined("0", 7, at[7], "not_json"),
            _quarantined("0", 8, at[8], "invalid_quantity", "UsageReported"),  # readable: keeps its type
            _quarantined("0", 9, at[9], "unknown_type", "Foo"),
            _quarantined("0", 10, at[10], "missing_field", "UsageReported"),
            _quarantined("0", 11, None, "invalid_enqueued_time"),
            _quarantined(None, 1, H10, "unrecognised_path", "Ping"),
        ], SILVER_QUARANTINE_SCHEMA),
    )
    hourly = event_totals_hourly(bronze, classified)
    h11 = dt(2024, 3, 1, 11)
    _equal(hourly, spark.createDataFrame([
        (H10, "0", "UsageReported", 3, 1),
        (H10, "0", "UsageSubmittedToAPI", 1, 0),
        (H10, "0", "Ping", 1, 0),
        (H10, "0", "SubscriptionPurchased", 2, 1),  # counted once although in lifecycle and quarantine
        (H10, "0", "unprocessable", 3, 3),
        (None, "0", "unprocessable", 1, 1),
        (h11, "1", "RemoveUnprocessedMessages", 1, 0),
        (h11, "1", "not_in_silver", 1, 0),  # bronze has it, silver not yet
        (H10, None, "unprocessable", 1, 1),
    ], EVENT_TOTALS_HOURLY_SCHEMA))
    day = date(2024, 3, 1)
    _equal(event_totals_daily(hourly), spark.createDataFrame([
        (day, "0", "UsageReported", 3, 1), (day, "0", "UsageSubmittedToAPI", 1, 0), (day, "0", "Ping", 1, 0),
        (day, "0", "SubscriptionPurchased", 2, 1), (day, "0", "unprocessable", 3, 3),
        (None, "0", "unprocessable", 1, 1),
        (day, "1", "RemoveUnprocessedMessages", 1, 0), (day, "1", "not_in_silver", 1, 0),
        (day, None, "unprocessable", 1, 1),
    ], EVENT_TOTALS_DAILY_SCHEMA))


def test_events_by_subscription_and_usage_by_subscription_type(spark):
    d1, d2 = date(2024, 3, 1), date(2024, 3, 2)
    managed = {**subscription("s2", dt(2024, 3, 1, 9), deleted_at=dt(2024, 3, 2, 5)),
               "offer_type": "managed_application"}
    subscriptions = subscriptions_df(spark, [
        subscription("s1", dt(2024, 3, 1, 9)), managed, subscription("s3", dt(2024, 2, 1), "Annually"),
        subscription("s4", dt(2024, 2, 1)),
    ])
    daily = spark.createDataFrame([
        (d1, "s1", "plan", "api", "d", 2, 3.0),
        (d1, "s1", "plan", "egress", None, 5, 9.0),
        (d1, "s2", "plan", "api", "d", 1, 1.0),
        (d1, "s3", "plan", "api", "d", 4, 4.0),
        (d1, "s4", "plan", "api", "d", 1, 0.5),
    ], CONSUMPTION_DAILY_SCHEMA)
    submissions = submissions_df(spark, [
        submission(1, "Accepted", resource_id="s1", plan="plan", dimension="d", hour=H10, quantity=1.0,
                   enqueued=dt(2024, 3, 1, 11)),
        submission(2, "Duplicate", resource_id="s1", plan="plan", dimension="d", hour=H10, quantity=1.0,
                   enqueued=dt(2024, 3, 2, 11)),
        submission(3, "Accepted", resource_id="nobody", plan="plan", dimension="d", hour=H10, quantity=1.0,
                   enqueued=dt(2024, 3, 2, 11)),
    ])
    _equal(events_by_subscription_daily(daily, submissions, subscriptions), spark.createDataFrame([
        (d1, "s1", "plan", "UsageReported", 7), (d1, "s2", "plan", "UsageReported", 1),
        (d1, "s3", "plan", "UsageReported", 4), (d1, "s4", "plan", "UsageReported", 1),
        (d1, "s1", "plan", "UsageSubmittedToAPI", 1), (d2, "s1", "plan", "UsageSubmittedToAPI", 1),
        (d2, None, None, "UsageSubmittedToAPI", 1),
        (d1, "s1", "plan", "SubscriptionPurchased", 1), (d1, "s2", "plan", "SubscriptionPurchased", 1),
        (date(2024, 2, 1), "s3", "plan", "SubscriptionPurchased", 1),
        (date(2024, 2, 1), "s4", "plan", "SubscriptionPurchased", 1),
        (d2, "s2", "plan", "SubscriptionDeleted", 1),
    ], EVENTS_BY_SUBSCRIPTION_DAILY_SCHEMA))
    _equal(usage_by_subscription_type_daily(daily, subscriptions), spark.createDataFrame([
        (d1, "plan", "Monthly", "saas", "api", 2, 3, 3.5),
        (d1, "plan", "Monthly", "saas", "egress", 1, 5, 9.0),
        (d1, "plan", "Monthly", "managed_application", "api", 1, 1, 1.0),
        (d1, "plan", "Annually", "saas", "api", 1, 4, 4.0),
    ], USAGE_BY_SUBSCRIPTION_TYPE_DAILY_SCHEMA))


def test_throughput_peaks_against_capacity(spark):
    second = timedelta(seconds=1)
    times = [H10] * 3 + [H10 + 30 * second] + [H10 + 65 * second] * 2 + [
        dt(2024, 3, 1, 11, 0, 0, 500000), dt(2024, 3, 1, 11, 0, 0, 900000), None]
    bronze = _bronze(spark, [("0", i, t) for i, t in enumerate(times)])
    # capacity 2 events/s: the 1-minute rate is far below it, one second went over it
    _equal(throughput(bronze, 2), spark.createDataFrame([
        ("hour", H10, 6, 4, 0.0667, 3, 2, 96.67, -50.0),
        ("hour", dt(2024, 3, 1, 11), 2, 2, 0.0333, 2, 2, 98.33, 0.0),
        ("day", dt(2024, 3, 1), 8, 4, 0.0667, 3, 2, 96.67, -50.0),
    ], THROUGHPUT_SCHEMA))


def test_submission_health(spark):
    prices = parse_price_catalog({"currency": "USD", "store_fee_percent": 0,
                                  "plans": {"plan": {"unit_prices": {"d": 0.5}}}}, "test")
    minutes = timedelta(minutes=1)
    h11, feb20 = H10 + 60 * minutes, dt(2024, 2, 20, 10)

    def sent(seq, status, resource, hour, quantity, *, message_time=None, enqueued=None, plan="plan", dimension="d"):
        return {**submission(seq, status, resource_id=resource, plan=plan, dimension=dimension, hour=hour,
                             quantity=float(quantity), enqueued=enqueued or hour + 120 * minutes),
                "message_time": message_time}

    submissions = submissions_df(spark, [
        sent(1, "Accepted", "s1", H10, 2, message_time=H10 + 70 * minutes),
        sent(2, "Accepted", "s2", H10, 4, enqueued=H10 + 90 * minutes),  # no messageTime: the enqueued time
        sent(3, "Accepted", "s1", h11, 1, message_time=h11 + 80 * minutes),
        sent(4, "Duplicate", "s1", H10, 2),
        sent(5, "Expired", "s3", feb20, 10),
        sent(6, "Expired", "s3", feb20, 10),  # a retry of the same hour: counted, not added
        sent(7, "ResourceNotFound", "gone", H10, 3),
        sent(8, "Accepted", "s1", dt(2024, 3, 2, 10), 1, message_time=dt(2024, 3, 2, 11), plan="x", dimension="y"),
    ])
    reconciliation = reconciliation_df(spark, [
        reconciled("s1", "d", dt(2024, 3, 1, 12), "pending", expected=5),
        reconciled("s1", "d", dt(2024, 3, 1, 13), "pending", expected=1),
        reconciled("s1", "d", H10, "matched", expected=2, billed=2),
    ])
    d1, d = date(2024, 3, 1), Decimal
    _equal(submission_health_daily(submissions, reconciliation, unit_price_frame(spark, prices), "USD"),
           spark.createDataFrame([
               # p95 of 70, 80, 90 minutes, interpolated: 80 + 0.9 x 10
               (d1, "Accepted", 3, 3, 7.0, d("3.5"), "USD", 80.0, 89.0),
               (d1, "Duplicate", 1, 1, 2.0, d("1"), "USD", None, None),
               (d1, "ResourceNotFound", 1, 1, 3.0, d("1.5"), "USD", None, None),
               (d1, "Pending", 0, 2, 6.0, d("3"), "USD", None, None),
               (date(2024, 2, 20), "Expired", 2, 1, 10.0, d("5"), "USD", None, None),
               (date(2024, 3, 2), "Accepted", 1, 1, 1.0, None, "USD", 60.0, 60.0),  # no price for x/y
           ], SUBMISSION_HEALTH_DAILY_SCHEMA))


def test_data_quality_and_freshness(spark):
    quarantine = frame(spark, [
        _quarantined("0", 1, H10, "not_json"), _quarantined("0", 2, H10, "not_json"),
        _quarantined("0", 3, H10, "invalid_quantity", "UsageReported"),
        _quarantined("0", 4, None, "invalid_enqueued_time"),
    ], SILVER_QUARANTINE_SCHEMA)
    _equal(data_quality_daily(quarantine), spark.createDataFrame([
        (date(2024, 3, 1), "not_json", None, 2), (date(2024, 3, 1), "invalid_quantity", "UsageReported", 1),
        (None, "invalid_enqueued_time", None, 1),
    ], DATA_QUALITY_DAILY_SCHEMA))
    bronze = _bronze(spark, [("0", 5, H10), ("0", 7, dt(2024, 3, 1, 9)), ("1", 3, dt(2024, 3, 1, 11, 30)),
                             (None, 9, dt(2024, 3, 1, 11, 59))])
    as_of = dt(2024, 3, 1, 12)
    _equal(data_freshness(bronze, as_of), spark.createDataFrame([
        ("ns/hub", "0", 2, H10, 7, INGESTED, as_of, 120.0),
        ("ns/hub", "1", 1, dt(2024, 3, 1, 11, 30), 3, INGESTED, as_of, 30.0),
    ], DATA_FRESHNESS_SCHEMA))
