"""Checks shared by every settings file (conf/*.yml): each error names the file and the entry."""
from __future__ import annotations

import math
from typing import Any, Mapping

from metering_analytics.config import ConfigError


def mapping(value: Any, where: str) -> Mapping[Any, Any]:
    """A YAML mapping; an absent (null) section reads as empty."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: must be a mapping, got {value!r}")
    return value


def known_keys(entries: Mapping[Any, Any], allowed: set[str] | tuple[str, ...], where: str) -> None:
    unknown = sorted(str(k) for k in entries if k not in allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown entries {', '.join(unknown)}; expected {', '.join(sorted(allowed))}")


def integer(value: Any, where: str, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ConfigError(f"{where}: must be an integer from {minimum} to {maximum}, got {value!r}")
    return value


def number(value: Any, where: str, minimum: float, maximum: float) -> float:
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not is_number or not math.isfinite(value) or not minimum <= value <= maximum:
        raise ConfigError(f"{where}: must be a number from {minimum:g} to {maximum:g}, got {value!r}")
    return float(value)
