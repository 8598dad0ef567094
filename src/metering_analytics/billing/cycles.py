"""Billing cycles as Column expressions (design brief rule 2).

Cycle k of a subscription runs from midnight UTC of (start date + k x P months) to midnight UTC of
(start date + (k+1) x P months). `F.add_months` already cuts an invalid day back to the month's last
day, and every cycle is computed from the start date itself (never from the previous cycle), so a
start on Jan 31 gives Feb 28/29, then Mar 31 again, and a start on Feb 29 gives Feb 28 in common years.

The expressions read timestamps in the session time zone, which the pipeline requires to be UTC
(see `stage.require_utc_session`).
"""
from __future__ import annotations

from datetime import datetime, timezone

from pyspark.sql import Column
from pyspark.sql import functions as F

ColumnOrName = Column | str


def _col(c: ColumnOrName) -> Column:
    return F.col(c) if isinstance(c, str) else c


def cycle_start(start: ColumnOrName, renewal_months: ColumnOrName, k: ColumnOrName) -> Column:
    """Timestamp at which cycle `k` begins."""
    months = (_col(k) * _col(renewal_months)).cast("int")
    return F.add_months(F.to_date(_col(start)), months).cast("timestamp")


def cycle_index(start: ColumnOrName, renewal_months: ColumnOrName, at: ColumnOrName) -> Column:
    """The k with cycle_start(k) <= at < cycle_start(k + 1); negative before the start date.

    floor(calendar months elapsed / P) is either right or one too high (when `at` falls in the
    cycle's first calendar month but before its start day, or the start day was cut back): the cycle
    after it always begins in a later calendar month than `at`, so one correction step is enough.
    """
    start, renewal_months, at = _col(start), _col(renewal_months), _col(at)
    months = (F.year(at) - F.year(start)) * 12 + (F.month(at) - F.month(start))
    guess = F.floor(months / renewal_months).cast("int")
    too_high = cycle_start(start, renewal_months, guess) > at
    return (guess - F.when(too_high, 1).otherwise(0)).cast("int")


def cycle_end(start: ColumnOrName, renewal_months: ColumnOrName, k: ColumnOrName) -> Column:
    """Timestamp at which cycle `k` ends (exclusive): the start of cycle k + 1."""
    return cycle_start(start, renewal_months, _col(k) + 1)


def timestamp_literal(at: datetime) -> Column:
    """A Python datetime as a timestamp literal; naive datetimes mean UTC (not the driver's zone)."""
    aware = at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)
    return F.lit(aware).cast("timestamp")
