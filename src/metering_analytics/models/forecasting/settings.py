"""Settings of the forecasts stage (conf/forecast.yml), validated on load.

Every error names the file and the entry, e.g. ``conf/forecast.yml: hourly.horizon_days: must be an integer
from 1 to 366, got 'a week'``. The Event Hubs capacity is not repeated here: it is conf/gold.yml's
``event_hubs.throughput_units`` (GoldSettings), read from the same folder unless given.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from metering_analytics.config import ConfigError, read_yaml
from metering_analytics.gold.settings import GoldSettings, load_gold_settings
from metering_analytics.settings_checks import integer, known_keys, mapping, number

HOURLY, DAILY = "hourly", "daily"
SEASONAL_NAIVE_WEEKLY = "seasonal_naive_weekly"
SEASONAL_NAIVE_DAILY = "seasonal_naive_daily"
SEASONAL_MEAN_WEEKLY = "seasonal_mean_weekly"
MSTL = "mstl"
PROPHET = "prophet"
MODELS = (SEASONAL_NAIVE_WEEKLY, SEASONAL_NAIVE_DAILY, SEASONAL_MEAN_WEEKLY, MSTL, PROPHET)
BASELINE = SEASONAL_NAIVE_WEEKLY  # every champion must beat it on the selection windows

_SECTIONS = {
    HOURLY: {"horizon_days", "history_days", "backtest_horizon_days", "calibration_windows"},
    DAILY: {"horizon_days", "history_days", "backtest_horizon_days", "calibration_windows"},
    "backtest": {"selection_windows", "holdout_windows", "min_train_days"},
    "candidates": {"every_series", "headline_series", "seasonal_mean_weeks"},
    "headline_series": None,
    "prophet": {"seasonality_mode", "changepoint_prior_scale", "seasonality_prior_scale", "daily_fourier_order",
                "weekly_fourier_order", "uncertainty_samples"},
    "capacity": {"headroom_margin_percent", "plan_on", "peak_factor_quantile", "peak_factor_lookback_days"},
    "projection": {"lookback_days"},
}


@dataclass(frozen=True)
class GranularitySettings:
    horizon_days: int
    history_days: int
    backtest_horizon_days: int
    # The conformal interval of a window (and of the final forecast) is calibrated on the errors of the
    # windows just before it, at most this many; that many extra windows precede the selection windows.
    calibration_windows: int = 2


@dataclass(frozen=True)
class ProphetSettings:
    seasonality_mode: str = "multiplicative"
    changepoint_prior_scale: float = 0.5
    seasonality_prior_scale: float = 5.0
    daily_fourier_order: int = 8
    weekly_fourier_order: int = 6
    uncertainty_samples: int = 100


@dataclass(frozen=True)
class ForecastSettings:
    hourly: GranularitySettings = GranularitySettings(7, 42, 7, 2)
    daily: GranularitySettings = GranularitySettings(90, 730, 14, 8)
    selection_windows: int = 2
    holdout_windows: int = 2
    min_train_days: int = 21
    every_series_models: tuple[str, ...] = (SEASONAL_NAIVE_WEEKLY, SEASONAL_NAIVE_DAILY, SEASONAL_MEAN_WEEKLY)
    headline_models: tuple[str, ...] = (MSTL, PROPHET)
    seasonal_mean_weeks: int = 4
    headline_series: tuple[str, ...] = ("events", "events/type=UsageReported")
    prophet: ProphetSettings = ProphetSettings()
    headroom_margin_percent: float = 20.0
    plan_on: str = "upper"
    peak_factor_quantile: float = 0.95
    peak_factor_lookback_days: int = 28
    projection_lookback_days: int = 28
    # From conf/gold.yml: Event Hubs ingress capacity, 1,000 events/s per throughput unit.
    capacity_events_per_second: int = 1000
    source: str = field(default="forecast settings", compare=False)

    def granularity(self, name: str) -> GranularitySettings:
        return self.hourly if name == HOURLY else self.daily


def _choice(value: Any, where: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{where}: must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _models(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{where}: must be a list of model names ({', '.join(MODELS)}), got {value!r}")
    for i, name in enumerate(value):
        _choice(name, f"{where}[{i}]", MODELS)
    return tuple(dict.fromkeys(value))


def _granularity(raw: Mapping[Any, Any], where: str, default: GranularitySettings) -> GranularitySettings:
    horizon = integer(raw.get("horizon_days", default.horizon_days), f"{where}.horizon_days", 1, 366)
    history = integer(raw.get("history_days", default.history_days), f"{where}.history_days", 14, 3660)
    backtest = integer(raw.get("backtest_horizon_days", default.backtest_horizon_days),
                        f"{where}.backtest_horizon_days", 1, 366)
    calibration = integer(raw.get("calibration_windows", default.calibration_windows),
                          f"{where}.calibration_windows", 1, 52)
    return GranularitySettings(horizon, history, backtest, calibration)


def parse_forecast_settings(raw: Any, gold: GoldSettings, source: str = "forecast settings") -> ForecastSettings:
    """Validate an already-parsed YAML document; `source` prefixes every error message."""
    d = ForecastSettings()
    raw = mapping(raw, source)
    known_keys(raw, set(_SECTIONS), source)
    s = {}
    for name, keys in _SECTIONS.items():
        if keys is None:
            continue
        s[name] = mapping(raw.get(name), f"{source}: {name}")
        known_keys(s[name], keys, f"{source}: {name}")
    bt, cand, pr, cap = s["backtest"], s["candidates"], s["prophet"], s["capacity"]
    headline = raw.get("headline_series", list(d.headline_series))
    if not isinstance(headline, list) or not all(isinstance(x, str) and x for x in headline):
        raise ConfigError(f"{source}: headline_series: must be a list of series names, got {headline!r}")
    dp = d.prophet
    settings = ForecastSettings(
        hourly=_granularity(s[HOURLY], f"{source}: {HOURLY}", d.hourly),
        daily=_granularity(s[DAILY], f"{source}: {DAILY}", d.daily),
        selection_windows=integer(bt.get("selection_windows", d.selection_windows),
                                   f"{source}: backtest.selection_windows", 1, 52),
        holdout_windows=integer(bt.get("holdout_windows", d.holdout_windows),
                                 f"{source}: backtest.holdout_windows", 0, 52),
        min_train_days=integer(bt.get("min_train_days", d.min_train_days), f"{source}: backtest.min_train_days",
                                14, 3660),
        every_series_models=_models(cand.get("every_series", list(d.every_series_models)),
                                    f"{source}: candidates.every_series"),
        headline_models=_models(cand.get("headline_series", list(d.headline_models)),
                                f"{source}: candidates.headline_series"),
        seasonal_mean_weeks=integer(cand.get("seasonal_mean_weeks", d.seasonal_mean_weeks),
                                     f"{source}: candidates.seasonal_mean_weeks", 1, 52),
        headline_series=tuple(headline),
        prophet=ProphetSettings(
            seasonality_mode=_choice(pr.get("seasonality_mode", dp.seasonality_mode),
                                     f"{source}: prophet.seasonality_mode", ("additive", "multiplicative")),
            changepoint_prior_scale=number(pr.get("changepoint_prior_scale", dp.changepoint_prior_scale),
                                            f"{source}: prophet.changepoint_prior_scale", 1e-6, 10),
            seasonality_prior_scale=number(pr.get("seasonality_prior_scale", dp.seasonality_prior_scale),
                                            f"{source}: prophet.seasonality_prior_scale", 1e-6, 100),
            daily_fourier_order=integer(pr.get("daily_fourier_order", dp.daily_fourier_order),
                                         f"{source}: prophet.daily_fourier_order", 1, 30),
            weekly_fourier_order=integer(pr.get("weekly_fourier_order", dp.weekly_fourier_order),
                                          f"{source}: prophet.weekly_fourier_order", 1, 30),
            uncertainty_samples=integer(pr.get("uncertainty_samples", dp.uncertainty_samples),
                                         f"{source}: prophet.uncertainty_samples", 0, 10000),
        ),
        headroom_margin_percent=number(cap.get("headroom_margin_percent", d.headroom_margin_percent),
                                        f"{source}: capacity.headroom_margin_percent", 0, 100),
        plan_on=_choice(cap.get("plan_on", d.plan_on), f"{source}: capacity.plan_on", ("upper", "point")),
        peak_factor_quantile=number(cap.get("peak_factor_quantile", d.peak_factor_quantile),
                                     f"{source}: capacity.peak_factor_quantile", 0.5, 1),
        peak_factor_lookback_days=integer(cap.get("peak_factor_lookback_days", d.peak_factor_lookback_days),
                                           f"{source}: capacity.peak_factor_lookback_days", 1, 3660),
        projection_lookback_days=integer(s["projection"].get("lookback_days", d.projection_lookback_days),
                                          f"{source}: projection.lookback_days", 7, 366),
        capacity_events_per_second=gold.capacity_events_per_second,
        source=source,
    )
    if not settings.every_series_models and not settings.headline_models:
        raise ConfigError(f"{source}: candidates: no model configured")
    return settings


def load_forecast_settings(path: str | Path, gold: GoldSettings | None = None) -> ForecastSettings:
    """Read and validate conf/forecast.yml; the capacity comes from `gold` (default: gold.yml beside it)."""
    path = Path(path)
    if gold is None:
        gold = load_gold_settings(path.parent / "gold.yml")
    return parse_forecast_settings(read_yaml(path), gold, str(path))
