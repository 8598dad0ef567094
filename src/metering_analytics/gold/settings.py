"""Settings of the persona tables (conf/gold.yml), validated on load.

Every error names the file and the entry, e.g.
``conf/gold.yml: overage_alerts.thresholds.starter.api_calls.units_per_day: must be a non-negative number,
got 'lots'``. Thresholds are also checked against the price catalog, so a misspelt plan or dimension
stops the run instead of silently never alerting.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import DoubleType, StringType, StructField, StructType

from metering_analytics.billing.prices import PriceCatalog
from metering_analytics.config import ConfigError, read_yaml
from metering_analytics.settings_checks import integer, known_keys, mapping

UNITS_PER_DAY = "units_per_day"
UNITS_PER_MONTH = "units_per_month"
PERCENT_OF_INCLUDED_PER_CYCLE = "percent_of_included_per_cycle"
THRESHOLD_KINDS = (UNITS_PER_DAY, UNITS_PER_MONTH, PERCENT_OF_INCLUDED_PER_CYCLE)

THRESHOLDS_SCHEMA = StructType(
    [
        StructField("plan_id", StringType(), False),
        StructField("dimension", StringType(), False),
        StructField("threshold_kind", StringType(), False),
        StructField("threshold", DoubleType(), False),
    ]
)

_SECTIONS = {
    "overage_alerts": {"fail_on_alert", "thresholds"},
    "heatmap": {"timezone", "lookback_days"},
    "event_hubs": {"throughput_units"},
    "top_customers": {"size"},
    "usage_by_property": {"keys", "top_values"},
}


@dataclass(frozen=True)
class OverageThreshold:
    plan_id: str
    dimension: str
    kind: str  # one of THRESHOLD_KINDS
    threshold: float


@dataclass(frozen=True)
class GoldSettings:
    thresholds: tuple[OverageThreshold, ...] = ()
    fail_on_overage_alert: bool = False
    heatmap_timezone: str = "UTC"
    heatmap_lookback_days: int = 91  # 0 = all history
    throughput_units: int = 1  # Event Hubs ingress capacity: 1,000 events/s per unit
    top_customers: int = 10
    property_keys: tuple[str, ...] = ()  # gold.usage_by_property: none unless configured
    property_top_values: int = 20
    source: str = "gold settings"

    @property
    def capacity_events_per_second(self) -> int:
        return self.throughput_units * 1000


def _threshold(value: Any, where: str) -> float:
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not is_number or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{where}: must be a non-negative number, got {value!r}")
    return float(value)


def _timezone(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: must be a time zone name such as UTC or Europe/Berlin, got {value!r}")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"{where}: unknown time zone {value!r} (use an IANA name such as Europe/Berlin)") from exc
    return value


def _property_keys(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(f"{where}: must be a list of property names such as [region, feature], got {value!r}")
    keys = []
    for i, key in enumerate(value):
        if not isinstance(key, str) or not key.strip():
            raise ConfigError(f"{where}[{i}]: must be a non-empty property name, got {key!r}")
        if key in keys:
            raise ConfigError(f"{where}[{i}]: {key!r} is listed twice")
        keys.append(key)
    return tuple(keys)


def _thresholds(raw: Any, where: str) -> tuple[OverageThreshold, ...]:
    found = []
    for plan_id, dimensions in mapping(raw, where).items():
        for dimension, kinds in mapping(dimensions, f"{where}.{plan_id}").items():
            entry = f"{where}.{plan_id}.{dimension}"
            kinds = mapping(kinds, entry)
            known_keys(kinds, THRESHOLD_KINDS, entry)
            found.extend(
                OverageThreshold(str(plan_id), str(dimension), kind, _threshold(value, f"{entry}.{kind}"))
                for kind, value in kinds.items()
            )
    return tuple(found)


def parse_gold_settings(raw: Any, source: str = "gold settings") -> GoldSettings:
    """Validate an already-parsed YAML document; `source` prefixes every error message."""
    raw = mapping(raw, source)
    known_keys(raw, set(_SECTIONS), source)
    sections = {}
    for name, keys in _SECTIONS.items():
        sections[name] = mapping(raw.get(name), f"{source}: {name}")
        known_keys(sections[name], keys, f"{source}: {name}")
    alerts, heatmap = sections["overage_alerts"], sections["heatmap"]
    fail = alerts.get("fail_on_alert", False)
    if not isinstance(fail, bool):
        raise ConfigError(f"{source}: overage_alerts.fail_on_alert: must be true or false, got {fail!r}")
    return GoldSettings(
        thresholds=_thresholds(alerts.get("thresholds"), f"{source}: overage_alerts.thresholds"),
        fail_on_overage_alert=fail,
        heatmap_timezone=_timezone(heatmap.get("timezone", "UTC"), f"{source}: heatmap.timezone"),
        heatmap_lookback_days=integer(heatmap.get("lookback_days", 91), f"{source}: heatmap.lookback_days",
                                       0, 36600),
        # Event Hubs Standard allows up to 40 throughput units; Dedicated clusters go far beyond.
        throughput_units=integer(sections["event_hubs"].get("throughput_units", 1),
                                  f"{source}: event_hubs.throughput_units", 1, 100000),
        top_customers=integer(sections["top_customers"].get("size", 10), f"{source}: top_customers.size", 1, 1000),
        property_keys=_property_keys(sections["usage_by_property"].get("keys"), f"{source}: usage_by_property.keys"),
        property_top_values=integer(sections["usage_by_property"].get("top_values", 20),
                                     f"{source}: usage_by_property.top_values", 1, 10000),
        source=source,
    )


def load_gold_settings(path: str | Path) -> GoldSettings:
    """Read and validate conf/gold.yml."""
    return parse_gold_settings(read_yaml(path), str(path))


def check_against_catalog(settings: GoldSettings, prices: PriceCatalog) -> None:
    """Every threshold must name a plan and dimension the price catalog knows; names all that do not."""
    unknown = sorted(
        {f"overage_alerts.thresholds.{t.plan_id}.{t.dimension}" for t in settings.thresholds
         if prices.unit_price(t.plan_id, t.dimension) is None}
    )
    if unknown:
        raise ConfigError(f"{settings.source}: {', '.join(unknown)}: no such plan and dimension in {prices.source}")


def thresholds_frame(spark: SparkSession, settings: GoldSettings) -> DataFrame:
    rows = [(t.plan_id, t.dimension, t.kind, t.threshold) for t in settings.thresholds]
    return spark.createDataFrame(rows, THRESHOLDS_SCHEMA)
