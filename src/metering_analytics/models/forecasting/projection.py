"""Per-subscription projection of every meter to the end of its current billing cycle, and the overage it implies.

Per active subscription (a `groupBy("subscription_key").applyInPandas` group), per meter:

- history: the meter's usage per complete UTC day over the last `lookback_days` before the day of `as_of`
  (from the cycle's start for a subscription still in its first cycle), days without usage as 0;
- profile: with 7 or more days, the mean per day of the week (usage is weekly-seasonal); with fewer, the
  flat daily mean (`daily_mean`); with none, the cycle's run-rate used / elapsed days (`run_rate`);
- remaining usage: the profile summed over [as_of, cycle_end) (the rest of today pro rata); its 80% range
  assumes independent daily errors with the spread of the history around the profile;
- projected usage = used so far in the cycle (gold.cs_current_cycle, exact) + remaining;
- overage per Marketplace dimension: the projected cycle usage split by the meter's bands (simple:
  above the included quantity; waterfall: per tier, as billing does), priced at the catalog unit price.

A group that fails returns an empty frame; the stage counts those subscriptions (`groups_failed`).
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BooleanType,
    DateType,
    DoubleType,
    IntegerType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from metering_analytics.billing.prices import MONEY, MONEY_DECIMALS
from metering_analytics.gold.customer_success import CURRENT_CYCLE_SCHEMA
from metering_analytics.models.forecasting.backtest import typed_frame
from metering_analytics.models.forecasting.candidates import Z80

WEEKDAY_PROFILE, DAILY_MEAN, RUN_RATE = "weekday_profile", "daily_mean", "run_rate"

# The current cycle of a meter (gold.cs_current_cycle, up to used_quantity), then its daily usage.
PROJECTION_INPUT_SCHEMA = StructType(
    CURRENT_CYCLE_SCHEMA.fields[:CURRENT_CYCLE_SCHEMA.fieldNames().index("used_quantity") + 1]
    + [
        StructField("tiers_json", StringType(), True),  # waterfall: [{tier_index, dimension, threshold}, ...]
        StructField("day", DateType(), True),  # null: no usage in the lookback
        StructField("quantity", DoubleType(), True),
    ]
)

PROJECTION_SCHEMA = StructType(
    [
        StructField("subscription_key", StringType(), False),
        StructField("plan_id", StringType(), False),
        StructField("renewal_interval", StringType(), False),
        StructField("meter_name", StringType(), False),
        StructField("dimension_type", StringType(), False),
        StructField("dimension", StringType(), True),  # the band's Marketplace dimension; null: never overage
        StructField("cycle_start", TimestampType(), False),
        StructField("cycle_end", TimestampType(), False),
        StructField("included_quantity", DoubleType(), True),
        StructField("included_infinite", BooleanType(), False),
        StructField("used_quantity", DoubleType(), False),
        StructField("projected_usage", DoubleType(), False),
        StructField("projected_usage_lower", DoubleType(), False),
        StructField("projected_usage_upper", DoubleType(), False),
        StructField("current_overage_quantity", DoubleType(), False),
        StructField("projected_overage_quantity", DoubleType(), False),
        StructField("projected_overage_lower", DoubleType(), False),
        StructField("projected_overage_upper", DoubleType(), False),
        StructField("method", StringType(), False),
        StructField("history_days", IntegerType(), False),
        StructField("as_of", TimestampType(), False),
    ]
)

SUBSCRIPTION_USAGE_PROJECTION_SCHEMA = StructType(
    PROJECTION_SCHEMA.fields[:-1]
    + [
        StructField("currency", StringType(), False),
        StructField("projected_overage_value", MONEY, True),  # null: no price for the dimension
        StructField("projected_additional_overage_value", MONEY, True),
        StructField("as_of", TimestampType(), False),
    ]
)


def bands(row: pd.Series) -> list[tuple[str | None, float, float]]:
    """(dimension, from, to) of the meter's overage bands in cycle usage, as billing defines them."""
    if row["dimension_type"] == "waterfall":
        tiers = sorted(json.loads(row["tiers_json"]), key=lambda t: t["tier_index"])
        bounds = np.cumsum([float(t["threshold"]) for t in tiers])
        return [(t["dimension"], float(bounds[i]), float(bounds[i + 1]) if i + 1 < len(tiers) else np.inf)
                for i, t in enumerate(tiers)]
    if row["included_infinite"]:
        return [(row["dimension"], np.inf, np.inf)]
    return [(row["dimension"], float(row["included_quantity"] or 0.0), np.inf)]


def in_band(total: float, low: float, high: float) -> float:
    return float(min(max(total, low), high) - low) if np.isfinite(low) else 0.0


def remaining_usage(history: pd.Series, as_of: datetime, cycle_end: datetime, used: float,
                    elapsed_days: float) -> tuple[float, float, str]:
    """(expected usage in [as_of, cycle_end), its standard deviation, method) from daily `history`."""
    if len(history) >= 7:
        weekdays = history.index.dayofweek
        profile = history.groupby(weekdays).mean()
        sigma = float(np.std(history.to_numpy() - profile.reindex(weekdays).to_numpy(), ddof=1))
        # Every weekday is in 7+ consecutive days; the fallback only guards odd inputs.
        by_weekday = profile.reindex(range(7)).fillna(float(history.mean())).to_numpy()
        method = WEEKDAY_PROFILE
    elif len(history) > 0:
        sigma = float(history.std(ddof=1)) if len(history) > 1 else 0.0
        by_weekday, method = np.full(7, float(history.mean())), DAILY_MEAN
    else:
        rate = used / elapsed_days if elapsed_days > 0 else 0.0
        sigma, by_weekday, method = 0.0, np.full(7, rate), RUN_RATE
    start, end = pd.Timestamp(as_of), pd.Timestamp(cycle_end)
    if end <= start:
        return 0.0, 0.0, method
    days = pd.date_range(start.normalize(), end - pd.Timedelta(microseconds=1), freq="D")
    # The part of each day inside [as_of, cycle_end), as a fraction of the day.
    starts, one_day = days.values, np.timedelta64(1, "D")
    day_end = np.minimum(starts + one_day, end.to_datetime64())
    share = (day_end - np.maximum(starts, start.to_datetime64())) / one_day
    expected = float(np.sum(share * by_weekday[days.dayofweek]))
    return expected, float(sigma * np.sqrt(share.sum())), method


def project_subscription(frame: pd.DataFrame, as_of: datetime, lookback_days: int) -> pd.DataFrame:
    """One subscription's rows (PROJECTION_INPUT_SCHEMA) -> PROJECTION_SCHEMA rows, one per meter and band."""
    today = pd.Timestamp(as_of).normalize()
    rows = []
    for _, meter in frame.groupby("meter_name", sort=True):
        first = meter.iloc[0]
        start = today - pd.Timedelta(days=lookback_days)
        if first["cycle_index"] == 0:
            start = max(start, pd.Timestamp(first["cycle_start"]).normalize())
        days = pd.date_range(start, today - pd.Timedelta(days=1), freq="D")
        usage = meter.dropna(subset=["day"])
        history = usage.groupby(pd.to_datetime(usage["day"]))["quantity"].sum().reindex(days, fill_value=0.0)
        elapsed = (pd.Timestamp(as_of) - pd.Timestamp(first["cycle_start"])) / pd.Timedelta(days=1)
        used = float(first["used_quantity"])
        expected, sigma, method = remaining_usage(history.astype(float), as_of, first["cycle_end"], used, elapsed)
        projected = used + expected
        lower = used + max(expected - Z80 * sigma, 0.0)
        upper = projected + Z80 * sigma
        for dimension, low, high in bands(first):
            rows.append({
                "subscription_key": first["subscription_key"], "plan_id": first["plan_id"],
                "renewal_interval": first["renewal_interval"], "meter_name": first["meter_name"],
                "dimension_type": first["dimension_type"], "dimension": dimension,
                "cycle_start": first["cycle_start"], "cycle_end": first["cycle_end"],
                "included_quantity": first["included_quantity"], "included_infinite": bool(first["included_infinite"]),
                "used_quantity": used, "projected_usage": projected, "projected_usage_lower": lower,
                "projected_usage_upper": upper, "current_overage_quantity": in_band(used, low, high),
                "projected_overage_quantity": in_band(projected, low, high),
                "projected_overage_lower": in_band(lower, low, high),
                "projected_overage_upper": in_band(upper, low, high),
                "method": method, "history_days": len(history), "as_of": as_of,
            })
    return typed_frame(rows, PROJECTION_SCHEMA)


def project_subscription_or_empty(frame: pd.DataFrame, as_of: datetime, lookback_days: int) -> pd.DataFrame:
    """project_subscription, or an empty frame when this subscription's data breaks it (counted by the stage)."""
    try:
        return project_subscription(frame, as_of, lookback_days)
    except Exception:  # noqa: BLE001 - one bad subscription must not stop the projections of the others
        return typed_frame([], PROJECTION_SCHEMA)


def projection_input(current_cycle: DataFrame, consumption_daily: DataFrame, plan_dimensions: DataFrame,
                     as_of: datetime, lookback_days: int) -> DataFrame:
    """PROJECTION_INPUT_SCHEMA rows: each active meter's cycle, its tiers, and its complete days of usage in
    the lookback (one row with a null day when it has none)."""
    today = as_of.replace(hour=0, minute=0, second=0, microsecond=0)
    usage = (
        consumption_daily
        .where((F.col("day") >= F.lit((today - timedelta(days=lookback_days)).date()))
               & (F.col("day") < F.lit(today.date())))
        .groupBy("subscription_key", "meter_name", "day").agg(F.sum("quantity").alias("quantity"))
    )
    tiers = plan_dimensions.select("subscription_key", "meter_name", F.to_json("tiers").alias("tiers_json"))
    return (
        current_cycle.select("subscription_key", "plan_id", "renewal_interval", "meter_name", "dimension_type",
                             "dimension", "cycle_index", "cycle_start", "cycle_end", "included_quantity",
                             "included_infinite", "used_quantity")
        .join(tiers, ["subscription_key", "meter_name"], "left")
        .join(usage, ["subscription_key", "meter_name"], "left")
        .select(*PROJECTION_INPUT_SCHEMA.fieldNames())
    )


def project(inputs: DataFrame, as_of: datetime, lookback_days: int) -> DataFrame:
    """PROJECTION_SCHEMA rows for every subscription in `inputs`, one pandas group per subscription."""
    return inputs.groupBy("subscription_key").applyInPandas(
        lambda frame: project_subscription_or_empty(frame, as_of, lookback_days), PROJECTION_SCHEMA)


def priced(projections: DataFrame, unit_prices: DataFrame, currency: str) -> DataFrame:
    """SUBSCRIPTION_USAGE_PROJECTION_SCHEMA: the projected overage valued at the catalog unit price."""
    def value(quantity):
        return F.round(F.col(quantity).cast("decimal(22,9)") * F.col("unit_price"), MONEY_DECIMALS).cast(MONEY)

    return (
        projections.join(unit_prices, ["plan_id", "dimension"], "left")
        .withColumn("currency", F.lit(currency))
        .withColumn("projected_overage_value", value("projected_overage_quantity"))
        .withColumn("projected_additional_overage_value", F.round(
            (F.col("projected_overage_quantity") - F.col("current_overage_quantity")).cast("decimal(22,9)")
            * F.col("unit_price"), MONEY_DECIMALS).cast(MONEY))
        .select(*SUBSCRIPTION_USAGE_PROJECTION_SCHEMA.fieldNames())
    )
