"""MRR, ARR and MRR movements per month and plan (gold.sales_mrr), defined the way ChartMogul does.

A subscription counts in a month when it is active on the month's close day: the month's last day,
or for the month containing `as_of` the day of `as_of`. Active days are those on which revenue
recognises the recurring fee (billing.revenue): from the start date through the day of the deletion,
a deletion at midnight ending the subscription before that day.

Per subscription and month, for an active subscription (0 otherwise):
  recurring MRR  = the plan's recurring fee for its renewal interval / the interval in months
                   (Annually / 12, 2-years / 24, 3-years / 36)
  overage MRR    = the month's billed overage revenue: Marketplace-accepted quantity of usage hours in
                   the month (gold.billing_reconciliation billed_quantity) x unit price; for the month
                   of `as_of`, month to date
  MRR            = recurring + overage;  ARR = 12 x MRR

Movements from the previous month, per subscription, then summed (amounts are signed):
  new          active now, not active at the previous close (its first month)      + MRR
  churned      active at the previous close, not now (deleted)                      - previous MRR
  expansion    active at both closes, MRR went up                                   + increase
  contraction  active at both closes, MRR went down                                 - decrease
so that net_new_mrr = new + expansion + contraction + churned = MRR - previous month's MRR. A
subscription that starts and ends within one month is never active at a close and never counted.
Plans cannot change (a second purchase changes nothing), so there is no reactivation.
"""
from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, DateType, LongType, StringType, StructField, StructType

from metering_analytics.billing.prices import MONEY, MONEY_DECIMALS, PriceCatalog, recurring_fee_frame, unit_price_frame
from metering_analytics.gold.periods import instant, month_of

_BILLED_QUANTITY = "decimal(22,9)"  # as in billing.revenue: quantity x price fits DECIMAL(38, 17)

SUBSCRIPTION_MRR_SCHEMA = StructType(
    [
        StructField("month", DateType(), False),
        StructField("subscription_key", StringType(), False),
        StructField("plan_id", StringType(), False),
        StructField("active", BooleanType(), False),
        StructField("recurring_mrr", MONEY, False),
        StructField("overage_mrr", MONEY, False),
        StructField("mrr", MONEY, False),
        StructField("previous_active", BooleanType(), False),
        StructField("previous_mrr", MONEY, False),
    ]
)

SALES_MRR_SCHEMA = StructType(
    [
        StructField("month", DateType(), False),
        StructField("plan_id", StringType(), False),
        StructField("currency", StringType(), False),
        StructField("active_subscriptions", LongType(), False),
        StructField("recurring_mrr", MONEY, False),
        StructField("overage_mrr", MONEY, False),
        StructField("mrr", MONEY, False),
        StructField("arr", MONEY, False),
        StructField("new_subscriptions", LongType(), False),
        StructField("new_mrr", MONEY, False),
        StructField("expansion_subscriptions", LongType(), False),
        StructField("expansion_mrr", MONEY, False),
        StructField("contraction_subscriptions", LongType(), False),
        StructField("contraction_mrr", MONEY, False),
        StructField("churned_subscriptions", LongType(), False),
        StructField("churned_mrr", MONEY, False),
        StructField("net_new_mrr", MONEY, False),
    ]
)


def _money(c):
    return F.round(c, MONEY_DECIMALS).cast(MONEY)


def billed_overage_by_month(reconciliation: DataFrame, unit_prices: DataFrame) -> DataFrame:
    """(subscription_key, month, overage_revenue): billed quantity x unit price per usage month."""
    return (
        reconciliation.where(F.col("subscription_key").isNotNull() & (F.col("billed_quantity") > 0))
        .groupBy("subscription_key", month_of(F.col("effective_start_time")).alias("month"), "plan_id", "dimension")
        .agg(F.sum(F.col("billed_quantity").cast(_BILLED_QUANTITY)).alias("billed"))
        .join(unit_prices, ["plan_id", "dimension"], "left")
        .groupBy("subscription_key", "month")
        .agg(_money(F.sum(_money(F.col("billed").cast(_BILLED_QUANTITY) * F.col("unit_price"))))
             .alias("overage_revenue"))
    )


def subscription_mrr(subscriptions: DataFrame, reconciliation: DataFrame, prices: PriceCatalog,
                     as_of: datetime) -> DataFrame:
    """SUBSCRIPTION_MRR_SCHEMA rows: every subscription from its first month through the month after its
    last active one (where it churns), up to the month of `as_of`."""
    spark = subscriptions.sparkSession
    as_of_day = F.to_date(instant(as_of))
    last_day = F.coalesce(F.to_date(F.col("deleted_at") - F.expr("INTERVAL 1 MICROSECOND")),
                          F.lit("9999-12-31").cast("date"))
    close_day = F.least(F.last_day("month"), as_of_day)
    monthly_fee = _money(F.col("recurring_fee") / F.col("renewal_months"))
    months = (
        subscriptions.withColumn("first_day", F.to_date("subscription_start"))
        .withColumn("last_active_day", last_day)
        .where((F.col("first_day") <= as_of_day) & (F.col("last_active_day") >= F.col("first_day")))
        .withColumn("last_month", F.least(month_of(as_of_day), F.add_months(month_of(F.col("last_active_day")), 1)))
        .withColumn("month", F.explode(F.sequence(month_of(F.col("first_day")), F.col("last_month"),
                                                  F.expr("INTERVAL 1 MONTH"))))
        .withColumn("active", (F.col("first_day") <= close_day) & (close_day <= F.col("last_active_day")))
        .join(recurring_fee_frame(spark, prices), ["plan_id", "renewal_interval"], "left")
        .join(billed_overage_by_month(reconciliation, unit_price_frame(spark, prices)),
              ["subscription_key", "month"], "left")
    )
    zero = F.lit(0).cast(MONEY)
    recurring = F.when(F.col("active"), F.coalesce(monthly_fee, zero)).otherwise(zero)
    overage = F.when(F.col("active"), F.coalesce(F.col("overage_revenue"), zero)).otherwise(zero)
    order = Window.partitionBy("subscription_key").orderBy("month")
    return (
        months.select("month", "subscription_key", "plan_id", "active",
                      _money(recurring).alias("recurring_mrr"), _money(overage).alias("overage_mrr"))
        .withColumn("mrr", _money(F.col("recurring_mrr") + F.col("overage_mrr")))
        .withColumn("previous_active", F.coalesce(F.lag("active").over(order), F.lit(False)))
        .withColumn("previous_mrr", F.coalesce(F.lag("mrr").over(order), zero))
    )


def sales_mrr(subscription_months: DataFrame, currency: str) -> DataFrame:
    """SALES_MRR_SCHEMA rows per month and plan, from `subscription_mrr`."""
    active, before = F.col("active"), F.col("previous_active")
    change = F.col("mrr") - F.col("previous_mrr")
    kinds = {
        "new": active & ~before,
        "expansion": active & before & (change > 0),
        "contraction": active & before & (change < 0),
        "churned": ~active & before,
    }
    zero = F.lit(0).cast(MONEY)
    movements = []
    for kind, condition in kinds.items():
        movements.append(F.count(F.when(condition, 1)).alias(f"{kind}_subscriptions"))
        movements.append(_money(F.sum(F.when(condition, change).otherwise(zero))).alias(f"{kind}_mrr"))
    return (
        subscription_months.groupBy("month", "plan_id")
        .agg(
            F.count(F.when(active, 1)).alias("active_subscriptions"),
            _money(F.sum("recurring_mrr")).alias("recurring_mrr"),
            _money(F.sum("overage_mrr")).alias("overage_mrr"),
            _money(F.sum("mrr")).alias("mrr"),
            *movements,
            _money(F.sum(change)).alias("net_new_mrr"),
        )
        .withColumn("arr", _money(F.col("mrr") * 12))
        .withColumn("currency", F.lit(currency))
        .select(*[f.name for f in SALES_MRR_SCHEMA.fields])
    )
