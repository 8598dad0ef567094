"""Rolling-origin backtest, champion selection, conformal intervals and the final forecast of one series.

`forecast_series` is the per-group pandas function behind `groupBy("series", "granularity").applyInPandas`:
one series' periods in, its metric rows and its forecast rows out (RESULT_SCHEMA, told apart by `record`).

Windows: the last W consecutive, non-overlapping windows of `backtest_horizon` periods before the end of
the data; the model is fitted on the (at most `history`) periods before the window's cutoff and never sees
anything from the cutoff on. The first `calibration_windows` windows are *calibration* windows (they only
calibrate intervals), then come the *selection* windows, and the last `holdout_windows` are *holdout*
windows. The champion is the candidate with the lowest mean MASE over the selection windows, and only if
that is below the weekly seasonal naive's; otherwise the weekly seasonal naive is the champion. So the
holdout windows score a choice made without them.

Intervals: raw model intervals are rarely calibrated (Prophet's and the naive's are too wide or narrow
on count data), so the published 80% interval is split conformal on relative errors: yhat + max(yhat, 1) x
the finite-sample 10% / 90% conformal quantiles of the model's out-of-sample relative errors in the
`calibration_windows` windows just before (`coverage_80` of a window uses only windows before it; the final
forecast uses the last ones). The same number of windows calibrates every interval, so a holdout window's
coverage measures the procedure the final forecast uses. `raw_coverage_80` keeps the model's own interval.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from pyspark.sql.types import (
    BooleanType,
    DoubleType,
    IntegerType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from metering_analytics.models.forecasting.candidates import Forecast, Seasons, fit_predict
from metering_analytics.models.forecasting.settings import BASELINE, HOURLY, ForecastSettings

CALIBRATION, SELECTION, HOLDOUT = "calibration", "selection", "holdout"
METRIC, FORECAST = "metric", "forecast"

RESULT_SCHEMA = StructType(
    [
        StructField("record", StringType(), False),  # metric | forecast
        StructField("series", StringType(), False),
        StructField("granularity", StringType(), False),
        StructField("model", StringType(), False),
        StructField("window", IntegerType(), True),  # metric rows: 1 = the earliest window
        StructField("window_role", StringType(), True),  # calibration | selection | holdout
        StructField("test_start", TimestampType(), True),  # first period of the window: the cutoff
        StructField("test_end", TimestampType(), True),  # last period of the window
        StructField("points", IntegerType(), True),
        StructField("mase", DoubleType(), True),
        StructField("smape", DoubleType(), True),
        StructField("coverage_80", DoubleType(), True),
        StructField("raw_coverage_80", DoubleType(), True),
        StructField("is_champion", BooleanType(), True),
        StructField("ts", TimestampType(), True),  # forecast rows
        StructField("yhat", DoubleType(), True),
        StructField("yhat_lower", DoubleType(), True),
        StructField("yhat_upper", DoubleType(), True),
        StructField("trained_at", TimestampType(), False),
    ]
)


@dataclass(frozen=True)
class Window:
    number: int  # 1 = earliest
    role: str  # calibration | selection | holdout
    train_start: int  # positions in the series: train = [train_start, cutoff), test = [cutoff, test_end)
    cutoff: int
    test_end: int


def step_of(granularity: str) -> pd.Timedelta:
    return pd.Timedelta(hours=1) if granularity == HOURLY else pd.Timedelta(days=1)


def backtest_windows(n: int, horizon: int, history: int, min_train: int, selection: int,
                     holdout: int, calibration: int = 0) -> list[Window]:
    """The last (calibration + selection + holdout) windows of `horizon` periods that end with the series
    (n periods), as many as have at least `min_train` periods before them. Fewer windows than asked: the
    calibration windows go first, then the holdout keeps its count while at least one selection window
    remains."""
    fits = max(0, (n - min_train) // horizon) if horizon > 0 else 0
    count = min(calibration + selection + holdout, fits)
    if count == 0:
        return []
    holdout = min(holdout, count - 1)
    selection = min(selection, count - holdout)
    windows = []
    for i in range(count):
        cutoff = n - (count - i) * horizon
        role = HOLDOUT if i >= count - holdout else SELECTION if i >= count - holdout - selection else CALIBRATION
        windows.append(Window(i + 1, role, max(0, cutoff - history), cutoff, cutoff + horizon))
    return windows


def mase(actual: np.ndarray, predicted: np.ndarray, train: np.ndarray, season: int) -> float:
    """Mean absolute error scaled by the in-sample MAE of the seasonal naive (Hyndman & Koehler 2006).
    NaN when the training series has no seasonal variation to scale by."""
    if len(train) <= season:
        return float("nan")
    scale = float(np.mean(np.abs(train[season:] - train[:-season])))
    if scale == 0:
        return float("nan")
    return float(np.mean(np.abs(actual - predicted)) / scale)


def smape(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Symmetric MAPE in percent, 0..200; a period where both are 0 counts as no error."""
    denominator = np.abs(actual) + np.abs(predicted)
    terms = np.divide(2 * np.abs(actual - predicted), denominator, out=np.zeros(len(actual)),
                      where=denominator > 0)
    return float(np.mean(terms) * 100)


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    if np.isnan(lower).any() or np.isnan(upper).any():
        return float("nan")
    return float(np.mean((actual >= lower) & (actual <= upper)))


def relative_errors(actual: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Out-of-sample errors relative to the forecast level (actual - yhat) / max(yhat, 1): count series grow
    and their noise grows with them, so errors measured at last month's level must scale to this month's."""
    return (actual - mean) / np.maximum(mean, 1.0)


def conformal_quantiles(errors: np.ndarray, alpha: float = 0.2) -> tuple[float, float]:
    """The split-conformal lower and upper quantiles of `errors` for a (1 - alpha) two-sided interval.

    With n errors, the k-th smallest for k = floor((n + 1) alpha / 2) and ceil((n + 1)(1 - alpha / 2))
    (Lei et al. 2018; Angelopoulos & Bates 2021, one tail each): a new exchangeable error falls outside each
    with probability at most alpha / 2, where the plain empirical quantile is too narrow by O(1/n). With
    too few errors for a rank (n < 2 / alpha - 1), the most extreme error seen stands in."""
    ordered = np.sort(np.asarray(errors, float))
    n = len(ordered)
    low = int(np.floor((n + 1) * alpha / 2))
    high = int(np.ceil((n + 1) * (1 - alpha / 2)))
    return float(ordered[max(low, 1) - 1]), float(ordered[min(high, n) - 1])


def conformal_bounds(mean: np.ndarray, errors: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """yhat + max(yhat, 1) x the conformal 10% / 90% quantiles of earlier relative errors, clipped at 0."""
    if not errors:
        nan = np.full(len(mean), np.nan)
        return nan, nan
    low, high = conformal_quantiles(np.concatenate(errors))
    scale = np.maximum(mean, 1.0)
    return np.maximum(mean + low * scale, 0.0), np.maximum(mean + high * scale, 0.0)


def regular_series(frame: pd.DataFrame, granularity: str, end: datetime) -> pd.Series:
    """The series on a complete grid of periods from its first period up to (excluding) `end`; missing
    periods had no events: 0."""
    values = frame.groupby("ts")["y"].sum()
    step = step_of(granularity)
    index = pd.date_range(values.index.min(), pd.Timestamp(end) - step, freq=step)
    return values.reindex(index, fill_value=0.0).astype(float)


def candidate_models(settings: ForecastSettings, is_headline: bool) -> list[str]:
    models = list(settings.every_series_models) + (list(settings.headline_models) if is_headline else [])
    if BASELINE not in models:
        models.insert(0, BASELINE)  # the reference every champion is measured against
    return list(dict.fromkeys(models))


def _metric_row(series, granularity, model, window: Window, index, scores, is_champion, trained_at) -> dict:
    return {"record": METRIC, "series": series, "granularity": granularity, "model": model,
            "window": window.number, "window_role": window.role, "test_start": index[window.cutoff],
            "test_end": index[window.test_end - 1], "points": window.test_end - window.cutoff,
            **scores, "is_champion": is_champion, "trained_at": trained_at}


def _nan_to_none(value: float):
    return None if value is None or np.isnan(value) else float(value)


def forecast_series(frame: pd.DataFrame, settings: ForecastSettings, ends: dict[str, datetime],
                    trained_at: datetime) -> pd.DataFrame:
    """One (series, granularity) group -> its metric and forecast rows (RESULT_SCHEMA).

    `ends[granularity]` is the exclusive end of the complete periods (series.period_end)."""
    series, granularity = frame["series"].iloc[0], frame["granularity"].iloc[0]
    end = ends[granularity]
    is_headline = bool(frame["is_headline"].iloc[0])
    g = settings.granularity(granularity)
    per_day = 24 if granularity == HOURLY else 1
    seasons = Seasons.of(granularity)
    y_series = regular_series(frame, granularity, end)
    y, index = y_series.to_numpy(), y_series.index
    history = g.history_days * per_day
    windows = backtest_windows(len(y), g.backtest_horizon_days * per_day, history,
                               settings.min_train_days * per_day, settings.selection_windows,
                               settings.holdout_windows, g.calibration_windows)
    recent = g.calibration_windows
    models = candidate_models(settings, is_headline)

    def fit(model: str, start: int, stop: int, h: int) -> Forecast:
        return fit_predict(model, y_series.iloc[start:stop], h, granularity, settings.prophet,
                           settings.seasonal_mean_weeks)

    scores: dict[str, list[dict]] = {}
    residuals: dict[str, list[np.ndarray]] = {}
    for model in models:
        try:
            per_window, errors = [], []
            for w in windows:
                fc = fit(model, w.train_start, w.cutoff, w.test_end - w.cutoff)
                actual, train = y[w.cutoff:w.test_end], y[w.train_start:w.cutoff]
                lower, upper = conformal_bounds(fc.mean, errors[-recent:])
                per_window.append({
                    "mase": mase(actual, fc.mean, train, seasons.week), "smape": smape(actual, fc.mean),
                    "coverage_80": coverage(actual, lower, upper),
                    "raw_coverage_80": coverage(actual, fc.lower, fc.upper)})
                errors.append(relative_errors(actual, fc.mean))
        except Exception:  # noqa: BLE001 - a model that cannot fit this series is no candidate for it
            if model == BASELINE:
                raise
            continue
        scores[model], residuals[model] = per_window, errors

    champion = choose_champion(scores, windows)
    rows = [
        _metric_row(series, granularity, model, w, index, {k: _nan_to_none(v) for k, v in s.items()},
                    model == champion, trained_at)
        for model, per_window in scores.items() for w, s in zip(windows, per_window)
    ]
    h = g.horizon_days * per_day
    fc = fit(champion, max(0, len(y) - history), len(y), h)
    lower, upper = conformal_bounds(fc.mean, residuals.get(champion, [])[-recent:])
    if np.isnan(lower).any():  # no backtest window: the model's own interval
        lower, upper = fc.lower, fc.upper
    future = index[-1] + step_of(granularity) * np.arange(1, h + 1)
    rows.extend(
        {"record": FORECAST, "series": series, "granularity": granularity, "model": champion, "ts": ts,
         "yhat": float(m), "yhat_lower": _nan_to_none(lo), "yhat_upper": _nan_to_none(hi),
         "trained_at": trained_at}
        for ts, m, lo, hi in zip(future, fc.mean, lower, upper)
    )
    return typed_frame(rows, RESULT_SCHEMA)


def typed_frame(rows: list[dict], schema: StructType) -> pd.DataFrame:
    """A frame whose column types Arrow can convert to `schema`: missing values as NaT / <NA>, not NaN."""
    frame = pd.DataFrame(rows, columns=schema.fieldNames())
    for field in schema.fields:
        if isinstance(field.dataType, TimestampType):
            frame[field.name] = pd.to_datetime(frame[field.name])
        elif isinstance(field.dataType, DoubleType):
            frame[field.name] = frame[field.name].astype("float64")
        else:
            # Plain objects with None: an all-missing column would be float NaN, and pandas' nullable
            # extension types reach Arrow as chunked arrays; Spark's serializer accepts neither.
            column = frame[field.name].astype(object)
            frame[field.name] = column.where(column.notna(), None)
    return frame


def forecast_series_or_empty(frame: pd.DataFrame, settings: ForecastSettings, ends: dict[str, datetime],
                             trained_at: datetime) -> pd.DataFrame:
    """forecast_series, or an empty frame when the series breaks it (the stage counts those groups)."""
    try:
        return forecast_series(frame, settings, ends, trained_at)
    except Exception:  # noqa: BLE001 - one bad series must not stop the forecasts of the others
        return typed_frame([], RESULT_SCHEMA)


def choose_champion(scores: dict[str, list[dict]], windows: list[Window]) -> str:
    """Lowest mean selection-window MASE; the weekly seasonal naive unless a candidate is strictly better."""
    selection = [i for i, w in enumerate(windows) if w.role == SELECTION]

    def mean_mase(model: str) -> float:
        values = [scores[model][i]["mase"] for i in selection]
        return float(np.mean(values)) if values and not np.isnan(values).any() else float("inf")

    best, best_score = BASELINE, mean_mase(BASELINE)
    for model in scores:
        score = mean_mase(model)
        if score < best_score:
            best, best_score = model, score
    return best
