"""What a subscription's usage of its last complete billing cycles would have cost under every plan.

The accounting is billing's, not a second implementation: a meter's usage in one cycle is its total
in gold.included_balance (billing's cycles), and the overage that total causes is its overlap with the
meter's billed bands (`billing.overage.meter_bands`: included quantity, simple dimension, waterfall
tiers). The overage a cycle's events cause one by one always adds up to that overlap, since bands are
intervals of the cycle's running total; so costing a cycle's total under plan X is exactly what
billing would have expected had the subscription been on plan X. Each (cycle, dimension) amount is
quantity x unit price, exact, rounded once half-up to 6 decimals, as revenue does; recurring fees
are the catalog's fee for the subscription's renewal interval, once per cycle.

Plan definitions: the price catalog holds prices only; a plan's meters, included quantities and tiers
travel in the purchase messages. So:
* the current plan is costed with the subscription's own definition (what it was purchased with);
* another plan is costed with the definition of its most recent purchase in silver.plan_dimensions
  (the offer as it is sold now; the latest purchased_at, then the smallest subscription_key).
A plan no subscription has bought has no known definition and is not a valid alternative.

A plan is a valid alternative only when every meter the subscription used in the evaluated cycles is
a meter of that plan (the application reports by meter name, and a plan without the meter cannot bill
it), it has a recurring fee for the subscription's renewal interval, and a unit price for every
dimension the usage would bill.
"""
from __future__ import annotations

from datetime import datetime

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DecimalType

from metering_analytics.billing import cycles
from metering_analytics.billing.overage import meter_bands
from metering_analytics.billing.prices import MONEY, MONEY_DECIMALS
from metering_analytics.billing.quantities import exact

_BILLED_QUANTITY = DecimalType(22, 9)
NO_COMPLETE_CYCLE = "no complete billing cycle yet"


def _money(c: Column) -> Column:
    return F.round(c, MONEY_DECIMALS).cast(MONEY)


def active_subscriptions(subscriptions: DataFrame, as_of: datetime) -> DataFrame:
    now = cycles.timestamp_literal(as_of)
    return subscriptions.where(
        (F.col("subscription_start") <= now) & (F.col("deleted_at").isNull() | (F.col("deleted_at") > now)))


def evaluated_cycles(active: DataFrame, as_of: datetime, n_cycles: int) -> DataFrame:
    """(subscription_key, cycle_index, cycle_start, cycle_end): its last `n_cycles` complete cycles."""
    now = cycles.timestamp_literal(as_of)
    current = cycles.cycle_index("subscription_start", "renewal_months", now)
    return (
        active.withColumn("current_cycle", current)
        .where(F.col("current_cycle") >= 1)
        .select("subscription_key", "subscription_start", "renewal_months",
                F.explode(F.sequence(F.greatest(F.col("current_cycle") - n_cycles, F.lit(0)),
                                     F.col("current_cycle") - 1)).alias("cycle_index"))
        .select("subscription_key", "cycle_index",
                cycles.cycle_start("subscription_start", "renewal_months", "cycle_index").alias("cycle_start"),
                cycles.cycle_end("subscription_start", "renewal_months", "cycle_index").alias("cycle_end"))
    )


def latest_plan_definitions(subscriptions: DataFrame, plan_dimensions: DataFrame) -> DataFrame:
    """Per plan, the meters of its most recent purchase, keyed by `plan_id` (silver.plan_dimensions columns)."""
    latest = Window.partitionBy("plan_id").orderBy(F.desc("purchased_at"), "subscription_key")
    newest = (
        subscriptions.select("subscription_key", "plan_id", "purchased_at")
        .withColumn("rank", F.row_number().over(latest)).where(F.col("rank") == 1)
        .select("subscription_key")
    )
    return plan_dimensions.join(newest, "subscription_key").drop("subscription_key")


def candidate_bands(active: DataFrame, plan_dimensions: DataFrame, latest_definitions: DataFrame,
                    catalog_plans: DataFrame) -> DataFrame:
    """(subscription_key, candidate_plan_id, meter_name, band_lower, band_upper, dimension) for every
    active subscription and catalog plan: its own definition for its own plan, else the plan's latest."""
    own = (
        meter_bands(plan_dimensions.join(active.select("subscription_key"), "subscription_key"))
        .join(active.select("subscription_key", F.col("plan_id").alias("candidate_plan_id")), "subscription_key")
    )
    latest = meter_bands(latest_definitions.withColumnRenamed("plan_id", "subscription_key")) \
        .withColumnRenamed("subscription_key", "candidate_plan_id")
    others = (
        active.select("subscription_key", "plan_id").crossJoin(catalog_plans)
        .where(F.col("candidate_plan_id") != F.col("plan_id")).drop("plan_id")
        .join(latest, "candidate_plan_id")
    )
    return own.unionByName(others.select(*own.columns))


def cycle_meter_usage(included_balance: DataFrame, evaluated: DataFrame) -> DataFrame:
    """(subscription_key, cycle_index, meter_name, total_usage exact) of the evaluated cycles."""
    return (
        included_balance.join(evaluated.select("subscription_key", "cycle_index"), ["subscription_key", "cycle_index"])
        .select("subscription_key", "cycle_index", "meter_name", exact(F.col("total_usage")).alias("total_usage"))
        .where(F.col("total_usage") > 0)
    )


def overage_under_candidates(usage: DataFrame, bands: DataFrame) -> DataFrame:
    """(subscription_key, candidate_plan_id, cycle_index, dimension, quantity): each cycle total's overlap
    with the candidate's billed bands."""
    billed = bands.where(F.col("dimension").isNotNull())
    top = F.least(F.col("total_usage"), F.coalesce(F.col("band_upper"), F.col("total_usage")))
    return (
        usage.join(billed, ["subscription_key", "meter_name"])
        .where(F.col("total_usage") > F.col("band_lower"))
        .groupBy("subscription_key", "candidate_plan_id", "cycle_index", "dimension")
        .agg(exact(F.sum(exact(top - F.col("band_lower")))).alias("quantity"))
        .where(F.col("quantity") > 0)
    )


def plan_costs(active: DataFrame, evaluated: DataFrame, usage: DataFrame, bands: DataFrame,
               catalog_plans: DataFrame, unit_prices: DataFrame, recurring_fees: DataFrame) -> DataFrame:
    """One row per (active subscription, catalog plan) with the cost of the evaluated cycles under it.

    Columns: subscription_key, candidate_plan_id, cycles_evaluated, first_cycle_start, last_cycle_end,
    recurring_cost, overage_cost, total_cost (null when not valid), is_valid, invalid_reason,
    overage_dimensions (dimensions in overage in every evaluated cycle under that plan).
    """
    pairs = active.select("subscription_key", "plan_id", "renewal_interval").crossJoin(catalog_plans)
    span = evaluated.groupBy("subscription_key").agg(
        F.count(F.lit(1)).cast("int").alias("cycles_evaluated"),
        F.min("cycle_start").alias("first_cycle_start"), F.max("cycle_end").alias("last_cycle_end"))
    overage = overage_under_candidates(usage, bands)
    priced = overage.join(
        unit_prices.withColumnRenamed("plan_id", "candidate_plan_id"), ["candidate_plan_id", "dimension"], "left"
    ).withColumn("amount", _money(F.col("quantity").cast(_BILLED_QUANTITY) * F.col("unit_price")))
    per_pair = priced.groupBy("subscription_key", "candidate_plan_id").agg(
        F.sum("amount").alias("overage_amount"),
        F.array_sort(F.collect_set(F.when(F.col("unit_price").isNull(), F.col("dimension")))).alias("unpriced"),
    )
    per_dimension = overage.groupBy("subscription_key", "candidate_plan_id", "dimension").agg(
        F.countDistinct("cycle_index").alias("cycles_in_overage"))
    every_cycle = (
        per_dimension.join(span.select("subscription_key", "cycles_evaluated"), "subscription_key")
        .where(F.col("cycles_in_overage") == F.col("cycles_evaluated"))
        .groupBy("subscription_key", "candidate_plan_id")
        .agg(F.array_sort(F.collect_list("dimension")).alias("overage_dimensions"))
    )
    used_meters = usage.select("subscription_key", "meter_name").distinct()
    plan_meters = bands.select("subscription_key", "candidate_plan_id", "meter_name").distinct()
    missing = (
        pairs.select("subscription_key", "candidate_plan_id").join(used_meters, "subscription_key")
        .join(plan_meters, ["subscription_key", "candidate_plan_id", "meter_name"], "left_anti")
        .groupBy("subscription_key", "candidate_plan_id")
        .agg(F.array_sort(F.collect_list("meter_name")).alias("missing_meters"))
    )
    has_definition = bands.select("subscription_key", "candidate_plan_id").distinct().withColumn("defined", F.lit(True))
    fees = recurring_fees.withColumnRenamed("plan_id", "candidate_plan_id")
    n = F.col("cycles_evaluated")
    reason = (
        F.when(n.isNull(), F.lit(NO_COMPLETE_CYCLE))
        .when(F.col("defined").isNull(), F.format_string("no purchase of plan %s shows its meters",
                                                          F.col("candidate_plan_id")))
        .when(F.size(F.coalesce("missing_meters", F.array())) > 0,
              F.format_string("plan %s has no meter %s", F.col("candidate_plan_id"),
                              F.array_join("missing_meters", ", ")))
        .when(F.col("recurring_fee").isNull(), F.format_string("plan %s has no %s price", F.col("candidate_plan_id"),
                                                               F.col("renewal_interval")))
        .when(F.size(F.coalesce("unpriced", F.array())) > 0,
              F.format_string("plan %s has no unit price for %s", F.col("candidate_plan_id"),
                              F.array_join("unpriced", ", ")))
    )
    valid = reason.isNull()
    recurring = _money(F.col("recurring_fee") * n)
    overage_cost = _money(F.coalesce(F.col("overage_amount"), F.lit(0).cast(MONEY)))
    return (
        pairs.join(span, "subscription_key", "left")
        .join(per_pair, ["subscription_key", "candidate_plan_id"], "left")
        .join(every_cycle, ["subscription_key", "candidate_plan_id"], "left")
        .join(missing, ["subscription_key", "candidate_plan_id"], "left")
        .join(has_definition, ["subscription_key", "candidate_plan_id"], "left")
        .join(fees, ["candidate_plan_id", "renewal_interval"], "left")
        .withColumn("invalid_reason", reason)
        .withColumn("is_valid", valid)
        .select(
            "subscription_key", "candidate_plan_id", F.coalesce(n, F.lit(0)).alias("cycles_evaluated"),
            "first_cycle_start", "last_cycle_end", "is_valid", "invalid_reason",
            F.col("recurring_fee").alias("candidate_recurring_fee"),
            F.when(valid, recurring).alias("recurring_cost"),
            F.when(valid, overage_cost).alias("overage_cost"),
            F.when(valid, _money(recurring + overage_cost)).alias("total_cost"),
            F.coalesce("overage_dimensions", F.array().cast("array<string>")).alias("overage_dimensions"),
        )
    )
