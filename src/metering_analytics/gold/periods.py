"""Time arithmetic shared by the persona tables: every period is computed from `as_of`, never the wall clock.

Periods are UTC calendar periods (the session time zone is UTC, see billing.stage.require_utc_session):
a day is [00:00, 24:00), an ISO week starts on Monday, a month on its first day.
"""
from __future__ import annotations

from datetime import datetime

from pyspark.sql import Column
from pyspark.sql import functions as F

from metering_analytics.billing.cycles import timestamp_literal

_MICROS_PER_DAY = 86_400_000_000
_MICROS_PER_MINUTE = 60_000_000


def instant(at: datetime) -> Column:
    """`as_of` as a timestamp literal (naive datetimes mean UTC)."""
    return timestamp_literal(at)


def days_between(start: Column, end: Column) -> Column:
    """Fractional days from `start` to `end` (exact to the microsecond)."""
    return (F.unix_micros(end) - F.unix_micros(start)) / F.lit(_MICROS_PER_DAY)


def minutes_between(start: Column, end: Column) -> Column:
    return (F.unix_micros(end) - F.unix_micros(start)) / F.lit(_MICROS_PER_MINUTE)


def plus_days(start: Column, days: Column) -> Column:
    """`start` + a fractional number of days, to the microsecond."""
    return F.timestamp_micros(F.unix_micros(start) + F.round(days * F.lit(_MICROS_PER_DAY)).cast("long"))


def month_of(c: Column) -> Column:
    """First day of the calendar month (a date)."""
    return F.trunc(c, "month")


def week_of(c: Column) -> Column:
    """Monday of the ISO week (a date)."""
    return F.to_date(F.date_trunc("week", c))


def growth_percent(value: Column, previous: Column) -> Column:
    """(value - previous) / previous x 100, 2 decimals; null when there is nothing to grow from."""
    return F.when(previous != 0, F.round((value - previous) / previous * 100, 2))
