"""Settings of the plan recommendations (the `recommendations` section of conf/churn.yml), validated on load."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from metering_analytics.config import ConfigError, read_yaml
from metering_analytics.settings_checks import integer, number

_KEYS = {"cycles", "min_saving"}


@dataclass(frozen=True)
class RecommendationSettings:
    cycles: int = 3  # the last complete billing cycles a subscription's usage is costed over
    min_saving: Decimal = Decimal("1.00")  # a suggestion must save at least this much (catalog currency)
    source: str = "recommendation settings"


def parse_recommendation_settings(raw: Any, source: str = "recommendation settings") -> RecommendationSettings:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: must be a mapping, got {raw!r}")
    section = raw.get("recommendations") or {}
    where = f"{source}: recommendations"
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: must be a mapping, got {section!r}")
    unknown = sorted(str(k) for k in section if k not in _KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown entries {', '.join(unknown)}; expected {', '.join(sorted(_KEYS))}")
    defaults = RecommendationSettings()
    saving = number(section.get("min_saving", float(defaults.min_saving)), f"{where}.min_saving", 0.0, 1e12)
    return RecommendationSettings(
        cycles=integer(section.get("cycles", defaults.cycles), f"{where}.cycles", 1, 36),
        min_saving=Decimal(repr(saving)).quantize(Decimal("0.000001")),
        source=source,
    )


def load_recommendation_settings(path: str | Path) -> RecommendationSettings:
    """Read and validate the `recommendations` section of conf/churn.yml."""
    return parse_recommendation_settings(read_yaml(path), str(path))
