"""gold.revenue_daily: revenue per plan, dimension and day, in the catalog's currency.

* Recurring fees: each billing cycle's fee (catalog, by plan and renewal interval) is recognised
  evenly over the cycle's days, for the days on which the subscription was active (from its start
  date, up to and including the day of its deletion, and not after `as_of`). The daily share is the fee
  divided by the cycle's length in days, rounded to 6 decimals; the cycle's last day takes the
  rounding remainder, so a full cycle recognises exactly its fee. These rows have
  dimension = RECURRING_DIMENSION ('(recurring)'), never null, so they group and filter like others.
* Overage: billed quantity (what Marketplace accepted, from gold.billing_reconciliation) x the
  dimension's unit price, on the day of the usage hour (effective_start_time).
* expired / rejected overage: the quantity the rules expected but Marketplace expired or rejected, and
  its value at the unit price: revenue lost, not part of gross.
* gross = recurring + overage; store_fee = gross x store_fee_percent / 100 (6 decimals);
  net = gross - store_fee.

Money is DECIMAL(22, 6). Quantities are cast to DECIMAL(22, 9) (they have at most 9 decimals) and
unit prices are DECIMAL(15, 8), so quantity x price fits DECIMAL(38, 17) and Spark computes it exactly
before the single rounding to 6 decimals.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, DecimalType, DoubleType, StringType, StructField, StructType

from metering_analytics.billing import cycles
from metering_analytics.billing.prices import (
    MONEY,
    MONEY_DECIMALS,
    PriceCatalog,
    recurring_fee_frame,
    unit_price_frame,
)

RECURRING_DIMENSION = "(recurring)"
_BILLED_QUANTITY = DecimalType(22, 9)

REVENUE_DAILY_SCHEMA = StructType(
    [
        StructField("day", DateType(), False),
        StructField("plan_id", StringType(), False),
        StructField("dimension", StringType(), False),  # RECURRING_DIMENSION for recurring fees
        StructField("currency", StringType(), False),
        StructField("recurring_revenue", MONEY, False),
        StructField("overage_quantity", DoubleType(), False),  # billed
        StructField("overage_revenue", MONEY, False),
        StructField("gross_revenue", MONEY, False),
        StructField("store_fee", MONEY, False),
        StructField("net_revenue", MONEY, False),
        StructField("expired_quantity", DoubleType(), False),
        StructField("expired_overage_value", MONEY, False),
        StructField("rejected_quantity", DoubleType(), False),
        StructField("rejected_overage_value", MONEY, False),
    ]
)

_AMOUNTS = ["recurring_revenue", "overage_quantity", "overage_revenue", "expired_quantity",
            "expired_overage_value", "rejected_quantity", "rejected_overage_value"]


def _money(c: Column) -> Column:
    return F.round(c, MONEY_DECIMALS).cast(MONEY)


def recurring_revenue(subscriptions: DataFrame, recurring_fees: DataFrame, as_of: datetime) -> DataFrame:
    """(day, plan_id, recurring_revenue) for every active day of every subscription up to `as_of`."""
    last_active = F.least(
        F.to_date(cycles.timestamp_literal(as_of)),
        # A deletion at midnight ends the subscription before that day starts.
        F.coalesce(F.to_date(F.col("deleted_at") - F.expr("INTERVAL 1 MICROSECOND")), F.lit("9999-12-31").cast("date")),
    )
    subs = (
        subscriptions.join(recurring_fees, ["plan_id", "renewal_interval"], "left")
        .withColumn("first_day", F.to_date("subscription_start"))
        .withColumn("last_day", last_active)
        .where(F.col("last_day") >= F.col("first_day"))
    )
    last_cycle = cycles.cycle_index("subscription_start", "renewal_months", F.col("last_day").cast("timestamp"))
    per_cycle = (
        subs.withColumn("cycle_index", F.explode(F.sequence(F.lit(0), last_cycle)))
        .withColumn("cycle_first", F.to_date(cycles.cycle_start("subscription_start", "renewal_months", "cycle_index")))
        .withColumn("cycle_end", F.to_date(cycles.cycle_end("subscription_start", "renewal_months", "cycle_index")))
        .withColumn("cycle_days", F.datediff("cycle_end", "cycle_first"))
        .withColumn("daily_share", _money(F.col("recurring_fee") / F.col("cycle_days")))
        .withColumn("last_share", _money(F.col("recurring_fee") - F.col("daily_share") * (F.col("cycle_days") - 1)))
    )
    days = per_cycle.withColumn(
        "day", F.explode(F.sequence("cycle_first", F.least(F.date_sub("cycle_end", 1), F.col("last_day"))))
    )
    share = F.when(F.col("day") == F.date_sub("cycle_end", 1), F.col("last_share")).otherwise(F.col("daily_share"))
    return days.groupBy("day", "plan_id").agg(_money(F.sum(share)).alias("recurring_revenue"))


def overage_revenue(reconciliation: DataFrame, unit_prices: DataFrame) -> DataFrame:
    """(day, plan_id, dimension) with billed, expired and rejected quantities and their value."""
    def quantity_where(condition, column):
        return F.sum(F.when(condition, F.col(column).cast(_BILLED_QUANTITY)).otherwise(F.lit(0).cast(_BILLED_QUANTITY)))

    per_day = (
        reconciliation.where(F.col("plan_id").isNotNull() & F.col("dimension").isNotNull()
                             & F.col("effective_start_time").isNotNull())
        .withColumn("day", F.to_date("effective_start_time"))
        .groupBy("day", "plan_id", "dimension")
        .agg(
            quantity_where(F.col("billed_quantity") > 0, "billed_quantity").alias("billed"),
            quantity_where(F.col("status") == "expired", "expected_quantity").alias("expired"),
            quantity_where(F.col("status") == "rejected", "expected_quantity").alias("rejected"),
        )
        .where((F.col("billed") > 0) | (F.col("expired") > 0) | (F.col("rejected") > 0))
    )
    price = F.col("unit_price")
    return per_day.join(unit_prices, ["plan_id", "dimension"], "left").select(
        "day", "plan_id", "dimension",
        F.col("billed").cast("double").alias("overage_quantity"),
        _money(F.col("billed").cast(_BILLED_QUANTITY) * price).alias("overage_revenue"),
        F.col("expired").cast("double").alias("expired_quantity"),
        _money(F.col("expired").cast(_BILLED_QUANTITY) * price).alias("expired_overage_value"),
        F.col("rejected").cast("double").alias("rejected_quantity"),
        _money(F.col("rejected").cast(_BILLED_QUANTITY) * price).alias("rejected_overage_value"),
    )


def revenue_daily(subscriptions: DataFrame, reconciliation: DataFrame, prices: PriceCatalog,
                  as_of: datetime) -> DataFrame:
    """REVENUE_DAILY_SCHEMA rows."""
    spark = subscriptions.sparkSession
    zero_money = F.lit(0).cast(MONEY)
    recurring = recurring_revenue(subscriptions, recurring_fee_frame(spark, prices), as_of).select(
        "day", "plan_id", F.lit(RECURRING_DIMENSION).alias("dimension"), "recurring_revenue",
        F.lit(0.0).alias("overage_quantity"), zero_money.alias("overage_revenue"),
        F.lit(0.0).alias("expired_quantity"), zero_money.alias("expired_overage_value"),
        F.lit(0.0).alias("rejected_quantity"), zero_money.alias("rejected_overage_value"),
    )
    overage = overage_revenue(reconciliation, unit_price_frame(spark, prices)).withColumn(
        "recurring_revenue", zero_money
    )
    fee_rate = F.lit(prices.store_fee_percent / Decimal(100))
    gross = F.col("recurring_revenue") + F.col("overage_revenue")
    return (
        recurring.unionByName(overage)
        .groupBy("day", "plan_id", "dimension")
        .agg(*[F.sum(c).alias(c) for c in _AMOUNTS])
        .withColumn("gross_revenue", _money(gross))
        .withColumn("store_fee", _money(F.col("gross_revenue") * fee_rate))
        .withColumn("net_revenue", _money(F.col("gross_revenue") - F.col("store_fee")))
        .select(
            "day", "plan_id", "dimension", F.lit(prices.currency).alias("currency"),
            _money(F.col("recurring_revenue")).alias("recurring_revenue"),
            F.col("overage_quantity").cast("double").alias("overage_quantity"),
            _money(F.col("overage_revenue")).alias("overage_revenue"),
            "gross_revenue", "store_fee", "net_revenue",
            F.col("expired_quantity").cast("double").alias("expired_quantity"),
            _money(F.col("expired_overage_value")).alias("expired_overage_value"),
            F.col("rejected_quantity").cast("double").alias("rejected_quantity"),
            _money(F.col("rejected_overage_value")).alias("rejected_overage_value"),
        )
    )
