"""gold.overage_alerts: every period in which a product's overage passed a configured threshold.

Threshold kinds (conf/gold.yml, per plan and dimension):
  units_per_day                  the product's overage quantity in a UTC day, all subscriptions together
  units_per_month                the same per calendar month
  percent_of_included_per_cycle  per subscription and billing cycle: overage / included quantity x 100
                                 (gold.included_balance; a waterfall meter's included quantity is its free
                                 band and its overage all of its tiers; it is configured under its first
                                 tier's dimension). Infinite and zero included quantities never alert.
Overage is what the rules expect (gold.marketplace_usage), not what Marketplace has accepted yet, so an
alert is raised as soon as the usage arrives. A breach is value > threshold.

breach_since is the first period of the run of consecutive breaching periods (days, months, or a
subscription's cycles) the row belongs to; consecutive_periods counts that run up to the row.
is_current marks breaches in the period containing `as_of` (for cycles: the current cycle of an active
subscription): these are what the CLI prints and what `assert_no_overage_alerts` fails a job on.
"""
from __future__ import annotations

from datetime import datetime
from typing import Callable

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, DoubleType, IntegerType, StringType, StructField, StructType, TimestampType

from metering_analytics.billing.quantities import exact, reported
from metering_analytics.gold.periods import instant, month_of
from metering_analytics.gold.settings import PERCENT_OF_INCLUDED_PER_CYCLE, UNITS_PER_DAY, UNITS_PER_MONTH

OVERAGE_ALERTS_SCHEMA = StructType(
    [
        StructField("threshold_kind", StringType(), False),
        StructField("plan_id", StringType(), False),
        StructField("dimension", StringType(), False),
        StructField("meter_name", StringType(), True),  # percent_of_included_per_cycle only
        StructField("subscription_key", StringType(), True),  # percent_of_included_per_cycle only
        StructField("period_start", TimestampType(), False),
        StructField("period_end", TimestampType(), False),  # exclusive
        StructField("value", DoubleType(), False),
        StructField("threshold", DoubleType(), False),
        StructField("breach_since", TimestampType(), False),
        StructField("consecutive_periods", IntegerType(), False),
        StructField("is_current", BooleanType(), False),
    ]
)

_RUN_KEY = ["threshold_kind", "plan_id", "dimension", "meter_name", "subscription_key"]
DEFAULT_LINES = 20


class OverageAlertError(RuntimeError):
    """Raised by `assert_no_overage_alerts` when a configured overage threshold is breached now."""


def _product_periods(marketplace_usage: DataFrame, kind: str, period_of: Callable[[Column], Column],
                     ordinal_of: Callable[[Column], Column], length: Column, now: Column) -> DataFrame:
    start = F.col("period").cast("timestamp")
    return (
        marketplace_usage.groupBy("plan_id", "dimension", period_of(F.col("effective_start_time")).alias("period"))
        .agg(reported(F.sum(exact(F.col("quantity")))).alias("value"))
        .select(
            F.lit(kind).alias("threshold_kind"), "plan_id", "dimension",
            F.lit(None).cast("string").alias("meter_name"), F.lit(None).cast("string").alias("subscription_key"),
            start.alias("period_start"), (start + length).alias("period_end"), "value",
            ordinal_of(F.col("period")).alias("ordinal"),
            ((start <= now) & (now < start + length)).alias("is_current"),
        )
    )


def _cycle_periods(included_balance: DataFrame, plan_dimensions: DataFrame) -> DataFrame:
    first_tier = plan_dimensions.select("subscription_key", "meter_name",
                                        F.col("tiers")[0]["dimension"].alias("first_tier_dimension"))
    return (
        included_balance.where(~F.col("included_infinite") & (F.col("included_quantity") > 0))
        .join(first_tier, ["subscription_key", "meter_name"], "left")
        .select(
            F.lit(PERCENT_OF_INCLUDED_PER_CYCLE).alias("threshold_kind"), "plan_id",
            F.coalesce("dimension", "first_tier_dimension").alias("dimension"), "meter_name", "subscription_key",
            F.col("cycle_start").alias("period_start"), F.col("cycle_end").alias("period_end"),
            F.round(F.col("overage_quantity") / F.col("included_quantity") * 100, 4).alias("value"),
            F.col("cycle_index").alias("ordinal"),
            F.col("is_current_cycle").alias("is_current"),
        )
    )


def overage_alerts(marketplace_usage: DataFrame, included_balance: DataFrame, plan_dimensions: DataFrame,
                   thresholds: DataFrame, as_of: datetime) -> DataFrame:
    """OVERAGE_ALERTS_SCHEMA rows; `thresholds` is `settings.thresholds_frame(...)`."""
    now = instant(as_of)
    daily = _product_periods(marketplace_usage, UNITS_PER_DAY, F.to_date,
                             lambda day: F.datediff(day, F.lit("1970-01-01").cast("date")),
                             F.expr("INTERVAL 1 DAY"), now)
    monthly = _product_periods(marketplace_usage, UNITS_PER_MONTH, month_of,
                               lambda month: F.year(month) * 12 + F.month(month), F.expr("INTERVAL 1 MONTH"), now)
    periods = daily.unionByName(monthly).unionByName(_cycle_periods(included_balance, plan_dimensions))
    breaches = (
        periods.join(F.broadcast(thresholds), ["plan_id", "dimension", "threshold_kind"])
        .where(F.col("value") > F.col("threshold"))
    )
    # Gaps and islands: consecutive periods share ordinal - position among the breaches.
    order = Window.partitionBy(*_RUN_KEY).orderBy("ordinal")
    island = breaches.withColumn("run", F.col("ordinal") - F.row_number().over(order))
    run = Window.partitionBy(*_RUN_KEY, "run").orderBy("ordinal")
    return island.select(
        *_RUN_KEY, "period_start", "period_end",
        "value", "threshold",
        F.first("period_start").over(run).alias("breach_since"),
        F.row_number().over(run).alias("consecutive_periods"),
        "is_current",
    )


def _period_label(row) -> str:
    if row.threshold_kind == UNITS_PER_DAY:
        return f"{row.period_start:%Y-%m-%d}"
    if row.threshold_kind == UNITS_PER_MONTH:
        return f"{row.period_start:%Y-%m}"
    return f"cycle {row.period_start:%Y-%m-%d}..{row.period_end:%Y-%m-%d}"


def _line(row) -> str:
    unit = "%" if row.threshold_kind == PERCENT_OF_INCLUDED_PER_CYCLE else ""
    who = f" {row.subscription_key}" if row.subscription_key else ""
    return (
        f"overage alert: {row.plan_id}/{row.dimension}{who} {row.threshold_kind} {_period_label(row)}: "
        f"{row.value:,.9g}{unit} > {row.threshold:,.9g}{unit}, breaching since {row.breach_since:%Y-%m-%d} "
        f"({row.consecutive_periods} consecutive)"
    )


def format_alerts(alerts: DataFrame, limit: int = DEFAULT_LINES) -> list[str]:
    """One line per current alert (at most `limit`, then a line saying how many more)."""
    current = alerts.where(F.col("is_current"))
    # Bounded by products x kinds plus active subscriptions, never by events.
    rows = current.orderBy("plan_id", "dimension", "threshold_kind", "subscription_key", "meter_name") \
        .limit(limit + 1).collect()
    lines = [_line(r) for r in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"... and {current.count() - limit} more current overage alerts (see gold.overage_alerts)")
    return lines


def assert_no_overage_alerts(alerts: DataFrame, limit: int = DEFAULT_LINES) -> None:
    """Raise OverageAlertError listing the current alerts, if any: the failed-check of a job task."""
    lines = format_alerts(alerts, limit)
    if lines:
        raise OverageAlertError("overage thresholds are breached now:\n" + "\n".join(f"  {line}" for line in lines))
