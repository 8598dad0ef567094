"""Risk signals in [0, 1] from the churn features, and the transparent heuristic score built on them.

Each *component* is one warning sign an account executive recognises, scaled so that 0 means "no sign
of it" and 1 means "as bad as it gets". The heuristic score is their weighted mean (weights in
conf/churn.yml); the model (model.py) learns its own weights for the same components, so both speak
the same language and their drivers read the same way (drivers.py).

| component | 0 | 1 |
|---|---|---|
| no_recent_usage | used the day before | no usage for 14 days or more |
| short_term_decline | last 7 days at or above the rate of days 29-56 before | last 7 days: no usage at all |
| monthly_decline | last 28 days at or above the rate of days 29-56 before | last 28 days: no usage at all |
| few_active_days | usage on every one of the last 28 days | on none |
| low_included_use | uses half or more of the allowances of its meters | uses none of them |
| dropped_meters | uses every meter it used in days 29-56 before | stopped all of them |
| rejected_submissions | no Marketplace submission rejected in 28 days | 5 or more rejected |
| new_customer | 90 days or more since the start | started yesterday |
| renewal_soon | renewal 30 days or more away | renews tomorrow |
"""
from __future__ import annotations

from typing import Mapping

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

RECENCY_FULL_DAYS = 14
INCLUDED_USE_TARGET = 0.5
REJECTED_FULL = 5
NEW_CUSTOMER_DAYS = 90
RENEWAL_SOON_DAYS = 30

COMPONENTS = ("no_recent_usage", "short_term_decline", "monthly_decline", "few_active_days", "low_included_use",
              "dropped_meters", "rejected_submissions", "new_customer", "renewal_soon")

# The default weights put most of the score on what changed in the customer's usage; tenure and the
# renewal date are context (they make no one churn by themselves) and start at zero.
DEFAULT_WEIGHTS: dict[str, float] = {
    "no_recent_usage": 0.25,
    "short_term_decline": 0.2,
    "monthly_decline": 0.2,
    "few_active_days": 0.15,
    "low_included_use": 0.05,
    "dropped_meters": 0.1,
    "rejected_submissions": 0.05,
    "new_customer": 0.0,
    "renewal_soon": 0.0,
}


def _clip01(c: Column) -> Column:
    return F.least(F.greatest(c, F.lit(0.0)), F.lit(1.0))


def component_columns() -> dict[str, Column]:
    """Each component as a Column over CHURN_FEATURES_SCHEMA; never null."""
    zero = F.lit(0.0)
    dropped = F.col("meters_used_prev_28d") - F.col("meters_used_28d")
    return {
        "no_recent_usage": _clip01(F.col("days_without_usage") / RECENCY_FULL_DAYS),
        "short_term_decline": F.coalesce(_clip01(-F.col("usage_trend_7d")), zero),
        "monthly_decline": F.coalesce(_clip01(-F.col("usage_trend_28d")), zero),
        "few_active_days": F.coalesce(_clip01(1 - F.col("active_day_share_28d")), zero),
        "low_included_use": F.coalesce(
            _clip01((F.lit(INCLUDED_USE_TARGET) - F.col("included_use_28d")) / INCLUDED_USE_TARGET), zero),
        "dropped_meters": F.when(F.col("meters_used_prev_28d") > 0,
                                 _clip01(dropped / F.col("meters_used_prev_28d"))).otherwise(zero),
        "rejected_submissions": _clip01(F.col("rejected_submissions_28d") / REJECTED_FULL),
        "new_customer": _clip01(1 - F.col("tenure_days") / NEW_CUSTOMER_DAYS),
        "renewal_soon": _clip01(1 - F.col("days_to_renewal") / RENEWAL_SOON_DAYS),
    }


def with_components(features: DataFrame) -> DataFrame:
    """The features with one double column `c_<component>` per component."""
    return features.select("*", *[c.cast("double").alias(f"c_{name}") for name, c in component_columns().items()])


def heuristic_contributions(weights: Mapping[str, float]) -> dict[str, Column]:
    """Each component's share of the heuristic score: weight x component / sum of weights."""
    total = sum(weights.values())
    return {name: F.col(f"c_{name}") * (weights.get(name, 0.0) / total) for name in COMPONENTS}


def heuristic_score(weights: Mapping[str, float]) -> Column:
    """The weighted mean of the components, in [0, 1] (over `with_components` rows)."""
    parts = list(heuristic_contributions(weights).values())
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return F.round(_clip01(total), 6)


def recency_baseline_score() -> Column:
    """The baseline every score must beat: the longer without usage, the riskier (nothing else)."""
    return F.col("days_without_usage").cast("double")
