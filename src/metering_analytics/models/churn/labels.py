"""Labels from history, and the time-based split that keeps the future out of training.

A subscription active at as-of date t is a *churner* at t when its SubscriptionDeleted arrives within
the next N days: t < deleted_at <= t + N days. The label is *known* only when t + N days is not after
the data clock: before that, a subscription still active may yet be deleted inside the horizon, so
such rows are scored but never trained on or evaluated.

The split: the latest `holdout_fraction` of the labelled as-of dates are the holdout. Training uses
only as-of dates whose label was already known at the first holdout date (t + N <= first holdout
date): a row whose horizon overlaps the holdout period would train on deletions the holdout is
asked to predict.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from metering_analytics.billing.cycles import timestamp_literal


def with_labels(features: DataFrame, horizon_days: int, clock: datetime) -> DataFrame:
    """Adds `label_known` (boolean) and `churned` (1.0 / 0.0; null when the label is not known)."""
    t = F.col("as_of_date").cast("timestamp")
    horizon_end = t + F.make_interval(days=F.lit(horizon_days))
    known = horizon_end <= timestamp_literal(clock)
    churned = F.col("deleted_at").isNotNull() & (F.col("deleted_at") > t) & (F.col("deleted_at") <= horizon_end)
    return features.withColumn("label_known", known).withColumn(
        "churned", F.when(known, F.when(churned, 1.0).otherwise(0.0)))


def labelled_dates(as_of_dates: list[date], horizon_days: int, clock: datetime) -> list[date]:
    """The as-of dates whose labels are known at the clock (the same rule as `with_labels`)."""
    return [d for d in as_of_dates
            if datetime.combine(d, datetime.min.time()) + timedelta(days=horizon_days) <= clock]


@dataclass(frozen=True)
class TimeSplit:
    train: tuple[date, ...]
    holdout: tuple[date, ...]
    dropped: tuple[date, ...]  # labelled, but their horizon reaches into the holdout period

    def split_of(self, d: date) -> str | None:
        if d in self.train:
            return "train"
        if d in self.holdout:
            return "holdout"
        return None


def time_split(labelled: list[date], holdout_fraction: float, horizon_days: int) -> TimeSplit:
    """Holdout = the latest dates; train = earlier dates whose horizon ends by the first holdout date."""
    labelled = sorted(labelled)
    if not labelled:
        return TimeSplit((), (), ())
    n_holdout = min(len(labelled), max(1, math.ceil(len(labelled) * holdout_fraction)))
    holdout = tuple(labelled[-n_holdout:])
    cutoff = holdout[0] - timedelta(days=horizon_days)
    earlier = labelled[:-n_holdout]
    return TimeSplit(tuple(d for d in earlier if d <= cutoff), holdout, tuple(d for d in earlier if d > cutoff))


def with_split(labelled_features: DataFrame, split: TimeSplit) -> DataFrame:
    """Adds `split`: train, holdout, or null (unlabelled, or dropped to avoid leakage)."""
    d = F.col("as_of_date")
    as_list = lambda dates: [F.lit(x) for x in dates] or [F.lit(None).cast("date")]  # noqa: E731
    return labelled_features.withColumn(
        "split",
        F.when(d.isin(*as_list(split.train)), F.lit("train"))
        .when(d.isin(*as_list(split.holdout)), F.lit("holdout")),
    )
