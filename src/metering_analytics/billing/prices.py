"""The price catalog (conf/prices.yml): prices live in the Partner Center offer, not in the events.

Loaded into a frozen `PriceCatalog` and validated on load; every error names the bad entry, e.g.
``conf/prices.yml: plans.pro.unit_prices.api_calls: price must be a non-negative number, got 'abc'``.
Amounts are kept as `Decimal` (parsed from the number as written) so revenue is computed exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Mapping

import yaml
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DecimalType, StringType, StructField, StructType

from metering_analytics.billing.reference import RENEWAL_MONTHS

# Unit prices may have up to 8 decimal places, amounts of money (fees, revenue) 6: see revenue.py for
# why these bounds keep every product exact in Spark.
UNIT_PRICE = DecimalType(15, 8)
MONEY = DecimalType(22, 6)
UNIT_PRICE_DECIMALS = 8
MONEY_DECIMALS = 6

UNIT_PRICES_SCHEMA = StructType(
    [
        StructField("plan_id", StringType(), False),
        StructField("dimension", StringType(), False),
        StructField("unit_price", UNIT_PRICE, False),
    ]
)
RECURRING_FEES_SCHEMA = StructType(
    [
        StructField("plan_id", StringType(), False),
        StructField("renewal_interval", StringType(), False),
        StructField("recurring_fee", MONEY, False),
    ]
)

_TOP_LEVEL_KEYS = {"currency", "store_fee_percent", "plans"}
_PLAN_KEYS = {"recurring_fee", "unit_prices"}


class PriceCatalogError(ValueError):
    """The price catalog is unreadable, has a bad entry, or lacks a price in use; the message names it."""


@dataclass(frozen=True)
class PlanPrices:
    recurring_fee: Mapping[str, Decimal]  # renewal interval -> fee for one billing cycle
    unit_prices: Mapping[str, Decimal]  # Marketplace dimension -> price of one unit of overage


@dataclass(frozen=True)
class PriceCatalog:
    currency: str
    store_fee_percent: Decimal
    plans: Mapping[str, PlanPrices]
    source: str = field(default="price catalog", compare=False)

    def unit_price(self, plan_id: str, dimension: str) -> Decimal | None:
        plan = self.plans.get(plan_id)
        return None if plan is None else plan.unit_prices.get(dimension)

    def recurring_fee(self, plan_id: str, renewal_interval: str) -> Decimal | None:
        plan = self.plans.get(plan_id)
        return None if plan is None else plan.recurring_fee.get(renewal_interval)


def _amount(value: Any, where: str, what: str, decimals: int) -> Decimal:
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not is_number or not math.isfinite(value) or value < 0:
        raise PriceCatalogError(f"{where}: {what} must be a non-negative number, got {value!r}")
    amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if amount != amount.quantize(Decimal(1).scaleb(-decimals)):
        raise PriceCatalogError(f"{where}: {what} must have at most {decimals} decimal places, got {value!r}")
    return amount


def _mapping(value: Any, where: str) -> Mapping[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PriceCatalogError(f"{where}: must be a mapping, got {value!r}")
    return value


def _unknown_keys(mapping: Mapping[Any, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(str(k) for k in mapping if k not in allowed)
    if unknown:
        raise PriceCatalogError(f"{where}: unknown entries {', '.join(unknown)}; expected {', '.join(sorted(allowed))}")


def parse_price_catalog(raw: Any, source: str = "price catalog") -> PriceCatalog:
    """Validate an already-parsed YAML document; `source` prefixes every error message."""
    if not isinstance(raw, dict):
        raise PriceCatalogError(f"{source}: must be a mapping with currency, store_fee_percent and plans")
    _unknown_keys(raw, _TOP_LEVEL_KEYS, source)
    currency = raw.get("currency")
    if not isinstance(currency, str) or not currency.strip():
        raise PriceCatalogError(f"{source}: currency: must be a currency code such as USD, got {currency!r}")
    fee_percent = _amount(raw.get("store_fee_percent"), f"{source}: store_fee_percent", "store fee percent", 6)
    if fee_percent > 100:
        raise PriceCatalogError(
            f"{source}: store_fee_percent: must be between 0 and 100, got {raw['store_fee_percent']!r}"
        )
    plans_raw = raw.get("plans")
    if not isinstance(plans_raw, dict) or not plans_raw:
        raise PriceCatalogError(f"{source}: plans: must be a non-empty mapping of plan id to prices")
    plans = {}
    for plan_id, plan_raw in plans_raw.items():
        where = f"{source}: plans.{plan_id}"
        plan_raw = _mapping(plan_raw, where)
        _unknown_keys(plan_raw, _PLAN_KEYS, where)
        fees = {}
        for interval, fee in _mapping(plan_raw.get("recurring_fee"), f"{where}.recurring_fee").items():
            if interval not in RENEWAL_MONTHS:
                raise PriceCatalogError(
                    f"{where}.recurring_fee.{interval}: unknown renewal interval, "
                    f"expected one of {', '.join(RENEWAL_MONTHS)}"
                )
            fees[interval] = _amount(fee, f"{where}.recurring_fee.{interval}", "fee", MONEY_DECIMALS)
        prices = {}
        for dimension, price in _mapping(plan_raw.get("unit_prices"), f"{where}.unit_prices").items():
            prices[str(dimension)] = _amount(price, f"{where}.unit_prices.{dimension}", "price", UNIT_PRICE_DECIMALS)
        plans[str(plan_id)] = PlanPrices(MappingProxyType(fees), MappingProxyType(prices))
    return PriceCatalog(currency.strip(), fee_percent, MappingProxyType(plans), source)


def load_price_catalog(path: str | Path) -> PriceCatalog:
    """Read and validate a price catalog YAML file."""
    source = str(path)
    path = Path(path)
    if not path.is_file():
        raise PriceCatalogError(f"{source}: price catalog not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PriceCatalogError(f"{source}: not valid YAML: {exc}") from exc
    return parse_price_catalog(raw, source)


def missing_prices(catalog: PriceCatalog, dimensions: Iterable[tuple[str, str]],
                   intervals: Iterable[tuple[str, str]]) -> list[str]:
    """Catalog entries that (plan_id, dimension) and (plan_id, renewal_interval) pairs need but lack."""
    missing = {f"plans.{plan}.unit_prices.{dim}" for plan, dim in dimensions if catalog.unit_price(plan, dim) is None}
    missing |= {
        f"plans.{plan}.recurring_fee.{interval}"
        for plan, interval in intervals
        if catalog.recurring_fee(plan, interval) is None
    }
    return sorted(missing)


def require_prices(catalog: PriceCatalog, dimensions: Iterable[tuple[str, str]],
                   intervals: Iterable[tuple[str, str]]) -> None:
    missing = missing_prices(catalog, dimensions, intervals)
    if missing:
        raise PriceCatalogError(f"{catalog.source}: no price for {', '.join(missing)}")


def prices_in_use(subscriptions: DataFrame, plan_dimensions: DataFrame,
                  submissions: DataFrame) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Distinct (plan_id, dimension) and (plan_id, renewal_interval) pairs in silver that need a price.

    Dimensions come from the plans (simple dimensions and every waterfall tier) and from what
    Marketplace accepted (which is billed revenue even when the rules did not expect it). The result
    is bounded by the number of plans x dimensions, not by the number of events.
    """
    tier_dimensions = plan_dimensions.select("plan_id", F.explode("tiers.dimension").alias("dimension"))
    accepted = submissions.where(F.col("status").isin("Accepted", "Duplicate")).select(
        F.when(F.col("status") == "Duplicate", F.coalesce("accepted_plan_id", "plan_id"))
        .otherwise(F.col("plan_id")).alias("plan_id"),
        F.when(F.col("status") == "Duplicate", F.coalesce("accepted_dimension", "dimension"))
        .otherwise(F.col("dimension")).alias("dimension"),
    )
    dimensions = (
        plan_dimensions.select("plan_id", "dimension")
        .unionByName(tier_dimensions)
        .unionByName(accepted)
        .where(F.col("plan_id").isNotNull() & F.col("dimension").isNotNull())
        .distinct()
    )
    intervals = subscriptions.select("plan_id", "renewal_interval").distinct()
    return ([(r.plan_id, r.dimension) for r in dimensions.collect()],
            [(r.plan_id, r.renewal_interval) for r in intervals.collect()])


def require_prices_for_silver(catalog: PriceCatalog, subscriptions: DataFrame, plan_dimensions: DataFrame,
                              submissions: DataFrame) -> None:
    """Raise PriceCatalogError naming every price that silver needs and the catalog lacks."""
    dimensions, intervals = prices_in_use(subscriptions, plan_dimensions, submissions)
    require_prices(catalog, dimensions, intervals)


def unit_price_frame(spark: SparkSession, catalog: PriceCatalog) -> DataFrame:
    rows = [(plan_id, dim, price) for plan_id, plan in catalog.plans.items() for dim, price in plan.unit_prices.items()]
    return spark.createDataFrame(rows, UNIT_PRICES_SCHEMA)


def recurring_fee_frame(spark: SparkSession, catalog: PriceCatalog) -> DataFrame:
    rows = [(plan_id, interval, fee) for plan_id, plan in catalog.plans.items()
            for interval, fee in plan.recurring_fee.items()]
    return spark.createDataFrame(rows, RECURRING_FEES_SCHEMA)
