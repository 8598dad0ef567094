"""gold.billing_reconciliation: every status, the identity rule and the precedence among submissions."""
from __future__ import annotations

from datetime import datetime as dt, timedelta

from chispa import assert_df_equality

from billing_helpers import submission, submissions_df, subscription, subscriptions_df
from metering_analytics.billing.marketplace import MARKETPLACE_USAGE_SCHEMA
from metering_analytics.billing.reconciliation import RECONCILIATION_SCHEMA, billing_reconciliation

H1, H2, H3 = dt(2024, 5, 1, 10), dt(2024, 5, 1, 11), dt(2024, 5, 1, 12)
LATER = timedelta(hours=1, minutes=5)


def _sub(sequence, status, hour, quantity, *, enqueued=None, **kwargs):
    return submission(sequence, status, plan="p", dimension="d", hour=hour, quantity=quantity,
                      enqueued=enqueued or hour + LATER, **kwargs)


def _accepted(resource_id, resource_uri, hour, quantity, usage_event_id):
    return dict(resource_id=resource_id, resource_uri=resource_uri, plan_id="p", dimension="d",
                effective_start_time=hour, quantity=quantity, usage_event_id=usage_event_id)


def test_reconciliation_statuses(spark):
    subscriptions = subscriptions_df(spark, [
        subscription("/subs/one", dt(2024, 1, 1), resource_id="id-1", resource_uri="/subs/one"),
        subscription("id-2", dt(2024, 1, 1), resource_id="id-2"),
        subscription("/subs/three", dt(2024, 1, 1), resource_id="id-3", resource_uri="/subs/three"),
    ])
    one, two, three = ("/subs/one", "id-1", "/subs/one"), ("id-2", "id-2", None), ("/subs/three", "id-3", "/subs/three")
    expected_usage = spark.createDataFrame(
        [one + ("p", "d", H1, 5.0), one + ("p", "d", H2, 3.0), two + ("p", "d", H1, 7.0), two + ("p", "d", H2, 4.0),
         two + ("p", "d", H3, 1.0), three + ("p", "d", H1, 2.0), three + ("p", "d", H2, 6.0)],
        MARKETPLACE_USAGE_SCHEMA,
    )
    submissions = submissions_df(spark, [
        # both sides have a URI: the URI decides, whatever the resource id says
        _sub(1, "Accepted", H1, 5.0, resource_id="other-id", resource_uri="/subs/one"),
        # the submission has no URI: matched on the resource id
        _sub(2, "Accepted", H2, 2.5, resource_id="id-1"),
        _sub(4, "Expired", H2, 4.0, resource_id="id-2"),
        _sub(5, "ResourceNotFound", H3, 1.0, resource_id="id-2", error_code="ResourceNotFound"),
        # Duplicate: what counts is the accepted message, and it outranks an earlier Expired retry
        _sub(6, "Duplicate", H1, 9.0, resource_id="id-3",
             accepted=_accepted("id-3", "/subs/three", H1, 2.0, "accepted-6")),
        _sub(7, "Expired", H1, 9.0, resource_id="id-3", enqueued=H1 + timedelta(minutes=30)),
        # Accepted then Duplicate of the same usage: billed once
        _sub(8, "Accepted", H2, 6.0, resource_uri="/subs/three"),
        _sub(9, "Duplicate", H2, 6.0, resource_uri="/subs/three", enqueued=H2 + timedelta(hours=2),
             accepted=_accepted(None, "/subs/three", H2, 6.0, "event-8")),
        # accepted although the rules expect nothing for that hour
        _sub(10, "Accepted", H3, 1.0, resource_id="id-1", resource_uri="/subs/one"),
        # both have a URI and they differ: no match, even though the resource id is id-1's
        _sub(11, "Accepted", H1, 3.0, resource_id="id-1", resource_uri="/subs/other"),
        _sub(12, "ResourceNotFound", H1, 1.0, resource_id="ghost", error_code="ResourceNotFound"),
    ])
    actual = billing_reconciliation(expected_usage, submissions, subscriptions)
    expected = spark.createDataFrame(
        [
            one + ("p", "d", H1, 5.0, 5.0, 0.0, "matched", "Accepted", 1, 5.0, "event-1", None, H1 + LATER),
            one + ("p", "d", H2, 3.0, 2.5, 0.5, "quantity_mismatch", "Accepted", 1, 2.5, "event-2", None, H2 + LATER),
            two + ("p", "d", H1, 7.0, 0.0, 7.0, "pending", None, 0, None, None, None, None),
            two + ("p", "d", H2, 4.0, 0.0, 4.0, "expired", "Expired", 1, 4.0, "event-4", None, H2 + LATER),
            two + ("p", "d", H3, 1.0, 0.0, 1.0, "rejected", "ResourceNotFound", 1, 1.0, "event-5", "ResourceNotFound",
                   H3 + LATER),
            three + ("p", "d", H1, 2.0, 2.0, 0.0, "matched", "Duplicate", 2, 2.0, "accepted-6", None, H1 + LATER),
            three + ("p", "d", H2, 6.0, 6.0, 0.0, "matched", "Accepted", 2, 6.0, "event-8", None, H2 + LATER),
            one + ("p", "d", H3, 0.0, 1.0, -1.0, "billed_not_expected", "Accepted", 1, 1.0, "event-10", None,
                   H3 + LATER),
            (None, "id-1", "/subs/other", "p", "d", H1, 0.0, 3.0, -3.0, "billed_not_expected", "Accepted", 1, 3.0,
             "event-11", None, H1 + LATER),
            (None, "ghost", None, "p", "d", H1, 0.0, 0.0, 0.0, "rejected", "ResourceNotFound", 1, 1.0, "event-12",
             "ResourceNotFound", H1 + LATER),
        ],
        RECONCILIATION_SCHEMA,
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
