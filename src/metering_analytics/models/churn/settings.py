"""Settings of the churn model (the `churn` section of conf/churn.yml), validated on load.

Every error names the file and the entry, e.g.
``conf/churn.yml: churn.horizon_days: must be an integer from 1 to 365, got 'soon'``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from metering_analytics.config import ConfigError, read_yaml
from metering_analytics.models.churn.heuristic import COMPONENTS, DEFAULT_WEIGHTS
from metering_analytics.settings_checks import integer, known_keys, mapping, number

_TOP_LEVEL = {"churn", "recommendations"}
_CHURN_KEYS = {"horizon_days", "grid_days", "min_history_days", "holdout_fraction", "min_churners_for_model",
               "bands", "heuristic_weights", "model", "max_drivers"}
_BAND_KEYS = {"medium", "high"}
_MODEL_KEYS = {"reg_param", "max_iter"}


@dataclass(frozen=True)
class ChurnSettings:
    horizon_days: int = 30  # a churner deletes within this many days after the as-of date
    grid_days: int = 7  # as-of dates every this many days, ending on the data clock's day
    min_history_days: int = 28  # the first as-of date is this long after the first day with usage
    holdout_fraction: float = 0.3  # share of the labelled as-of dates (the latest) kept for validation
    min_churners_for_model: int = 20  # distinct churned subscriptions the training dates need for a model
    medium_band: float = 0.1  # churn_risk from here: medium
    high_band: float = 0.2  # from here: high
    heuristic_weights: Mapping[str, float] = field(default_factory=lambda: MappingProxyType(dict(DEFAULT_WEIGHTS)))
    reg_param: float = 0.01  # L2 regularisation of the logistic regression
    max_iter: int = 100
    max_drivers: int = 3
    source: str = "churn settings"


def parse_churn_settings(raw: Any, source: str = "churn settings") -> ChurnSettings:
    """Validate an already-parsed conf/churn.yml document (its `churn` section)."""
    raw = mapping(raw, source)
    known_keys(raw, _TOP_LEVEL, source)
    where = f"{source}: churn"
    churn = mapping(raw.get("churn"), where)
    known_keys(churn, _CHURN_KEYS, where)
    defaults = ChurnSettings()
    bands = mapping(churn.get("bands"), f"{where}.bands")
    known_keys(bands, _BAND_KEYS, f"{where}.bands")
    medium = number(bands.get("medium", defaults.medium_band), f"{where}.bands.medium", 0.0, 1.0)
    high = number(bands.get("high", defaults.high_band), f"{where}.bands.high", 0.0, 1.0)
    if medium >= high:
        raise ConfigError(f"{where}.bands: medium ({medium}) must be below high ({high})")
    raw_weights = mapping(churn.get("heuristic_weights"), f"{where}.heuristic_weights")
    known_keys(raw_weights, set(COMPONENTS), f"{where}.heuristic_weights")
    weights = dict(DEFAULT_WEIGHTS)
    for name, value in raw_weights.items():
        weights[name] = number(value, f"{where}.heuristic_weights.{name}", 0.0, 1000.0)
    if sum(weights.values()) <= 0:
        raise ConfigError(f"{where}.heuristic_weights: at least one weight must be positive")
    model = mapping(churn.get("model"), f"{where}.model")
    known_keys(model, _MODEL_KEYS, f"{where}.model")
    return ChurnSettings(
        horizon_days=integer(churn.get("horizon_days", defaults.horizon_days), f"{where}.horizon_days", 1, 365),
        grid_days=integer(churn.get("grid_days", defaults.grid_days), f"{where}.grid_days", 1, 92),
        min_history_days=integer(churn.get("min_history_days", defaults.min_history_days),
                                 f"{where}.min_history_days", 0, 3660),
        holdout_fraction=number(churn.get("holdout_fraction", defaults.holdout_fraction),
                                f"{where}.holdout_fraction", 0.05, 0.95),
        min_churners_for_model=integer(churn.get("min_churners_for_model", defaults.min_churners_for_model),
                                       f"{where}.min_churners_for_model", 1, 1_000_000),
        medium_band=medium,
        high_band=high,
        heuristic_weights=MappingProxyType(weights),
        reg_param=number(model.get("reg_param", defaults.reg_param), f"{where}.model.reg_param", 0.0, 100.0),
        max_iter=integer(model.get("max_iter", defaults.max_iter), f"{where}.model.max_iter", 1, 10_000),
        max_drivers=integer(churn.get("max_drivers", defaults.max_drivers), f"{where}.max_drivers", 1, 10),
        source=source,
    )


def load_churn_settings(path: str | Path) -> ChurnSettings:
    """Read and validate conf/churn.yml."""
    return parse_churn_settings(read_yaml(path), str(path))
