"""Candidate forecasting models: a training series in, `h` future values (and the model's own 80% interval) out.

Pure numpy/pandas (the baselines) or thin wrappers around statsforecast (MSTL) and Prophet, imported only
when used: the Python workers that never fit them never pay for the import. Every model forecasts
non-negative values (counts and quantities), so forecasts and bounds are clipped at 0.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from metering_analytics.models.forecasting.settings import (
    HOURLY,
    MSTL,
    PROPHET,
    SEASONAL_MEAN_WEEKLY,
    SEASONAL_NAIVE_DAILY,
    SEASONAL_NAIVE_WEEKLY,
    ProphetSettings,
)

Z80 = 1.2815515655446004  # two-sided 80% interval of a normal: the 10% and 90% quantiles


@dataclass(frozen=True)
class Seasons:
    day: int  # periods per day (24 hourly, 1 daily)
    week: int  # periods per week

    @staticmethod
    def of(granularity: str) -> "Seasons":
        return Seasons(24, 168) if granularity == HOURLY else Seasons(1, 7)


@dataclass(frozen=True)
class Forecast:
    mean: np.ndarray
    lower: np.ndarray  # the model's own 80% interval; NaN when it has none
    upper: np.ndarray


def _clipped(mean, lower, upper) -> Forecast:
    return Forecast(np.maximum(np.asarray(mean, float), 0.0), np.maximum(np.asarray(lower, float), 0.0),
                    np.maximum(np.asarray(upper, float), 0.0))


def seasonal_naive(y: np.ndarray, h: int, season: int) -> Forecast:
    """y[T + i] = y[T + i - season*k], the last observed value at the same position of the season.

    Interval (Hyndman & Athanasopoulos, 5.5): sigma of the in-sample seasonal differences, widened by
    sqrt(k + 1) for the k-th season ahead.
    """
    y = np.asarray(y, float)
    season = max(1, min(season, len(y)))
    steps = np.arange(h)
    mean = y[len(y) - season + steps % season]
    diffs = y[season:] - y[:-season]
    sigma = float(np.sqrt(np.mean(diffs ** 2))) if len(diffs) else np.nan
    spread = Z80 * sigma * np.sqrt(steps // season + 1)
    return _clipped(mean, mean - spread, mean + spread)


def seasonal_mean(y: np.ndarray, h: int, season: int, seasons: int) -> Forecast:
    """The mean of the same position over the last `seasons` seasons: seasonal naive with its noise averaged.

    Interval: the spread of those seasons around their mean, times sqrt(1 + 1/n) for a new observation.
    """
    y = np.asarray(y, float)
    n = max(1, min(seasons, len(y) // season))
    recent = y[len(y) - n * season:].reshape(n, season)
    profile = recent.mean(axis=0)
    mean = profile[np.arange(h) % season]
    sigma = float(np.sqrt(np.mean((recent - profile) ** 2) * n / (n - 1))) if n > 1 else np.nan
    spread = Z80 * sigma * np.sqrt(1 + 1 / n)
    return _clipped(mean, mean - spread, mean + spread)


def mstl(y: np.ndarray, h: int, seasons: Seasons) -> Forecast:
    """statsforecast's MSTL: STL on the daily and weekly seasons, the remainder's trend by ETS (A,N,N)."""
    from statsforecast.models import MSTL as StatsMSTL
    from statsforecast.models import AutoETS

    # Each seasonal period needs two full cycles of data; keep the ones that have them.
    periods = [p for p in (seasons.day, seasons.week) if p > 1 and len(y) >= 2 * p]
    if not periods:
        return seasonal_naive(y, h, seasons.week)
    model = StatsMSTL(season_length=periods if len(periods) > 1 else periods[0],
                      trend_forecaster=AutoETS(model="ANN"))
    result = model.forecast(y=np.asarray(y, float), h=h, level=[80])
    return _clipped(result["mean"], result["lo-80"], result["hi-80"])


def quiet_prophet_logs() -> None:
    """cmdstanpy logs every Stan run at INFO; prophet warns about seasonalities it disables."""
    for name in ("cmdstanpy", "prophet", "prophet.plot"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
        logging.getLogger(name).propagate = False


def prophet(ds: pd.DatetimeIndex, y: np.ndarray, future: pd.DatetimeIndex, seasons: Seasons,
            settings: ProphetSettings) -> Forecast:
    """Prophet with the seasonalities the data has (daily only for hourly data), no yearly term (too little
    history), a stiff trend and multiplicative seasonality: counts scale their daily profile with their level."""
    quiet_prophet_logs()
    from prophet import Prophet

    model = Prophet(
        growth="linear", yearly_seasonality=False, weekly_seasonality=False, daily_seasonality=False,
        seasonality_mode=settings.seasonality_mode, changepoint_prior_scale=settings.changepoint_prior_scale,
        seasonality_prior_scale=settings.seasonality_prior_scale, interval_width=0.8,
        uncertainty_samples=settings.uncertainty_samples,
    )
    if seasons.day > 1:
        model.add_seasonality("daily", period=1, fourier_order=settings.daily_fourier_order)
    model.add_seasonality("weekly", period=7, fourier_order=settings.weekly_fourier_order)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.random.seed(0)  # the interval's draws: same data, same table
        model.fit(pd.DataFrame({"ds": ds, "y": np.asarray(y, float)}))
        predicted = model.predict(pd.DataFrame({"ds": future}))
    if settings.uncertainty_samples:
        lower, upper = predicted["yhat_lower"], predicted["yhat_upper"]
    else:
        lower = upper = np.full(len(future), np.nan)
    return _clipped(predicted["yhat"], lower, upper)


def fit_predict(model: str, train: pd.Series, h: int, granularity: str, prophet_settings: ProphetSettings,
                seasonal_mean_weeks: int) -> Forecast:
    """Forecast the `h` periods after `train` (a regular series indexed by period start) with `model`."""
    seasons = Seasons.of(granularity)
    y = train.to_numpy(float)
    if model == SEASONAL_NAIVE_WEEKLY:
        return seasonal_naive(y, h, seasons.week)
    if model == SEASONAL_NAIVE_DAILY:
        return seasonal_naive(y, h, seasons.day)
    if model == SEASONAL_MEAN_WEEKLY:
        return seasonal_mean(y, h, seasons.week, seasonal_mean_weeks)
    if model == MSTL:
        return mstl(y, h, seasons)
    if model == PROPHET:
        step = pd.Timedelta(hours=1) if granularity == HOURLY else pd.Timedelta(days=1)
        future = pd.DatetimeIndex(train.index[-1] + step * np.arange(1, h + 1))
        return prophet(pd.DatetimeIndex(train.index), y, future, seasons, prophet_settings)
    raise ValueError(f"unknown model {model!r}")
