"""The top drivers of a churn score, in words an account executive can repeat to the customer's team.

A driver is a component (heuristic.py) that raises this subscription's score: for the heuristic, its
share of the score (weight x component / sum of weights); for the model, how much it raises the
log-odds compared with the typical training customer (weight x (component - its mean)). Drivers are
listed largest first, at most `max_drivers`, and only when they matter (above `min_contribution`).
Each is phrased with the subscription's own numbers.
"""
from __future__ import annotations

from typing import Mapping

from pyspark.sql import Column
from pyspark.sql import functions as F

NO_DRIVERS = "No warning signs in recent usage"
# A heuristic driver must carry at least this share of the score; a model driver this much log-odds.
MIN_HEURISTIC_CONTRIBUTION = 0.02
MIN_MODEL_CONTRIBUTION = 0.1


def _percent(c: Column) -> Column:
    return F.round(c * 100).cast("int")


def driver_phrases() -> dict[str, Column]:
    """One sentence per component over a churn features row."""
    window_days = F.least(F.col("tenure_days"), F.lit(28))
    active_days = F.round(F.col("active_day_share_28d") * window_days).cast("int")
    dropped = F.col("meters_used_prev_28d") - F.col("meters_used_28d")
    return {
        "no_recent_usage": F.format_string("No usage for %d days", F.col("days_without_usage")),
        "short_term_decline": F.format_string(
            "Usage in the last 7 days is %d%% below its level 5 to 8 weeks ago", _percent(-F.col("usage_trend_7d"))),
        "monthly_decline": F.format_string(
            "Usage in the last 4 weeks is %d%% below the 4 weeks before", _percent(-F.col("usage_trend_28d"))),
        "few_active_days": F.format_string("Used on only %d of the last %d days", active_days, window_days),
        "low_included_use": F.format_string(
            "Uses only %d%% of the included quantities it pays for", _percent(F.col("included_use_28d"))),
        "dropped_meters": F.format_string("Stopped using %d of the %d features (meters) it used the month before",
                                          dropped, F.col("meters_used_prev_28d")),
        "rejected_submissions": F.format_string(
            "%d usage submissions rejected by Marketplace in the last 4 weeks", F.col("rejected_submissions_28d")),
        "new_customer": F.format_string("New customer: started %d days ago", F.col("tenure_days")),
        "renewal_soon": F.format_string("Renews in %d days", F.col("days_to_renewal")),
    }


def top_drivers(contributions: Mapping[str, Column], min_contribution: float, max_drivers: int) -> Column:
    """array<string>: the phrases of the largest contributions above `min_contribution`, largest first."""
    phrases = driver_phrases()
    candidates = F.array(*[
        F.struct(contribution.cast("double").alias("weight"), F.lit(name).alias("name"),
                 phrases[name].alias("text"))
        for name, contribution in contributions.items()
    ])
    relevant = F.filter(candidates, lambda d: d["weight"] > min_contribution)
    # Sorted by weight, then name: ties always come out in the same order.
    ordered = F.sort_array(relevant, asc=False)
    return F.slice(F.transform(ordered, lambda d: d["text"]), 1, max_drivers)


def drivers_summary(drivers: Column) -> Column:
    return F.when(F.size(drivers) > 0, F.array_join(drivers, "; ")).otherwise(F.lit(NO_DRIVERS))
