"""Which subscriptions changed between two versions of silver.subscriptions / silver.plan_dimensions.

A new subscription, or a deletion that arrived (or moved), is recomputed incrementally. Any other change
to a subscription already known (its start, plan, renewal, identity or meters; a subscription gone) is
rare (a purchase arriving after a later one, out of order) and changes rows anywhere in its history and in
other subscriptions' reconciliation: the stage then rebuilds in full.
"""
from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession

from metering_analytics.incremental.changes import ChangesUnavailable
from metering_analytics.io.lakehouse import Lakehouse

# What a deletion sets on a known subscription.
DELETION_COLUMNS = ("deleted_at", "deleted_partition_id", "deleted_sequence_number")


@dataclass(frozen=True)
class SubscriptionChanges:
    dirty: DataFrame | None  # subscription_key of new subscriptions and of changed deletions
    needs_full_rebuild: bool


def subscription_changes(subs_before: DataFrame, subs_after: DataFrame, dims_before: DataFrame,
                         dims_after: DataFrame) -> SubscriptionChanges:
    stable = [c for c in subs_after.columns if c not in DELETION_COLUMNS]
    subs_changed = subs_before.select(*stable).exceptAll(subs_after.select(*stable))
    known = subs_before.select("subscription_key")
    dims_changed = (
        dims_before.exceptAll(dims_after)
        .unionByName(dims_after.exceptAll(dims_before).join(known, "subscription_key", "left_semi"))
    )
    # Both checks in one Spark job: each costs more in fixed overhead than in work.
    any_changed = subs_changed.select("subscription_key").unionByName(dims_changed.select("subscription_key"))
    if not any_changed.isEmpty():
        return SubscriptionChanges(None, True)
    dirty = subs_after.exceptAll(subs_before).select("subscription_key").distinct().localCheckpoint()
    return SubscriptionChanges(dirty, False)


def subscription_changes_since(spark: SparkSession, lakehouse: Lakehouse, versions_before: dict,
                               silver: dict[str, DataFrame]) -> tuple[DataFrame, SubscriptionChanges] | None:
    """silver.subscriptions as of `versions_before` ({"silver.<table>": version}) and what changed since
    (subscription_changes against the current `silver` frames); None without a version to compare with.
    Raises ChangesUnavailable when an old version cannot be read (vacuumed)."""
    subs_version = versions_before.get("silver.subscriptions")
    dims_version = versions_before.get("silver.plan_dimensions")
    if subs_version is None or dims_version is None:
        return None
    try:
        subs_before = lakehouse.read(spark, "silver", "subscriptions", version=subs_version)
        dims_before = lakehouse.read(spark, "silver", "plan_dimensions", version=dims_version)
        changed = subscription_changes(subs_before, silver["subscriptions"], dims_before, silver["plan_dimensions"])
    except Exception as error:  # a vacuumed version
        raise ChangesUnavailable(str(error).splitlines()[0]) from error
    return subs_before, changed
