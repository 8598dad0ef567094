"""Forecast backtest (pure pandas): window split without leakage, baselines with known answers, metrics,
champion rule, conformal intervals calibrated on the windows just before, settings validation."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from metering_analytics.config import ConfigError
from metering_analytics.gold.settings import GoldSettings
from metering_analytics.models.forecasting.backtest import (
    CALIBRATION,
    HOLDOUT,
    SELECTION,
    backtest_windows,
    choose_champion,
    conformal_bounds,
    conformal_quantiles,
    forecast_series,
    mase,
    smape,
)
from metering_analytics.models.forecasting.candidates import seasonal_mean, seasonal_naive
from metering_analytics.models.forecasting.settings import (
    SEASONAL_MEAN_WEEKLY,
    SEASONAL_NAIVE_DAILY,
    SEASONAL_NAIVE_WEEKLY,
    ForecastSettings,
    parse_forecast_settings,
)

CHEAP = ForecastSettings(every_series_models=(SEASONAL_NAIVE_WEEKLY, SEASONAL_NAIVE_DAILY, SEASONAL_MEAN_WEEKLY),
                         headline_models=())


def test_windows_are_consecutive_and_train_strictly_before_test():
    windows = backtest_windows(n=1000, horizon=100, history=300, min_train=200, selection=2, holdout=2)
    assert [(w.number, w.role) for w in windows] == [(1, SELECTION), (2, SELECTION), (3, HOLDOUT), (4, HOLDOUT)]
    assert [(w.train_start, w.cutoff, w.test_end) for w in windows] == [
        (300, 600, 700), (400, 700, 800), (500, 800, 900), (600, 900, 1000)]
    for w in windows:
        assert w.train_start < w.cutoff < w.test_end  # train = [train_start, cutoff), test = [cutoff, test_end)


def test_windows_shrink_to_the_history_and_keep_one_selection_window():
    # (n - min_train) // horizon windows fit: 1 for 350 periods (a selection window), 2 for 420, 0 for 250.
    assert [w.role for w in backtest_windows(350, 100, 300, 200, 2, 2)] == [SELECTION]
    assert [w.role for w in backtest_windows(420, 100, 300, 200, 2, 2)] == [SELECTION, HOLDOUT]
    assert backtest_windows(250, 100, 300, 200, 2, 2) == []


def test_calibration_windows_come_first_and_go_first():
    windows = backtest_windows(n=1000, horizon=100, history=300, min_train=200, selection=2, holdout=2,
                               calibration=3)
    assert [w.role for w in windows] == [CALIBRATION] * 3 + [SELECTION] * 2 + [HOLDOUT] * 2
    assert [w.cutoff for w in windows] == [300, 400, 500, 600, 700, 800, 900]
    # 5 windows fit after 500 periods of training: the calibration windows shrink, not the scored ones.
    assert [w.role for w in backtest_windows(1000, 100, 300, 500, 2, 2, 3)] == \
        [CALIBRATION] + [SELECTION] * 2 + [HOLDOUT] * 2


def test_seasonal_naive_repeats_the_last_season():
    y = np.array([1, 2, 3, 10, 20, 30], float)
    fc = seasonal_naive(y, h=5, season=3)
    assert fc.mean.tolist() == [10, 20, 30, 10, 20]
    # sigma of the seasonal differences (9, 18, 27): sqrt(mean(81, 324, 729)) = sqrt(378); the second
    # season ahead is sqrt(2) wider.
    sigma = np.sqrt(378.0)
    assert fc.upper[0] - fc.mean[0] == pytest.approx(1.2815515655 * sigma)
    assert fc.upper[3] - fc.mean[3] == pytest.approx(1.2815515655 * sigma * np.sqrt(2))
    assert fc.lower.min() >= 0  # counts: clipped at zero


def test_seasonal_mean_averages_the_last_seasons():
    y = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9], float)  # seasons (1,2,3), (4,5,6), (7,8,9)
    assert seasonal_mean(y, 4, season=3, seasons=2).mean.tolist() == [5.5, 6.5, 7.5, 5.5]


def test_mase_and_smape_known_values():
    train = np.array([1, 2, 3, 4, 5, 6, 7, 8], float)  # seasonal (4) differences all 4: scale 4
    assert mase(np.array([10.0, 12.0]), np.array([12.0, 12.0]), train, season=4) == pytest.approx(0.25)
    assert np.isnan(mase(np.array([1.0]), np.array([1.0]), np.ones(8), season=4))  # no variation to scale by
    assert smape(np.array([100.0, 0.0]), np.array([50.0, 0.0])) == pytest.approx((2 * 50 / 150) / 2 * 100)


def test_conformal_quantiles_take_the_finite_sample_ranks():
    errors = np.arange(19, 0, -1, dtype=float)  # 19 errors, 1..19, in any order
    # ranks floor(20 x 0.1) = 2 and ceil(20 x 0.9) = 18; the plain 10% / 90% quantiles would be 2.8 and 17.2
    assert conformal_quantiles(errors) == (2.0, 18.0)
    # fewer than 9 errors have no such ranks: the extremes stand in
    assert conformal_quantiles(np.array([0.3, -0.1, 0.2])) == (-0.1, 0.3)


def test_conformal_bounds_scale_relative_errors_with_the_level():
    # 101 errors -0.2, -0.196, ..., 0.2: ranks floor(102 x 0.1) = 10 and ceil(102 x 0.9) = 92: -/+0.164
    lower, upper = conformal_bounds(np.array([100.0, 0.0]), [np.linspace(-0.2, 0.2, 101)])
    assert lower.tolist() == pytest.approx([83.6, 0.0])  # 100 - 0.164 x 100; the zero forecast: max(0 - 0.164, 0)
    assert upper.tolist() == pytest.approx([116.4, 0.164])


def test_intervals_are_calibrated_on_the_windows_just_before():
    """Known answer: a weekly pattern that doubles every week up to week 4, then stays. The weekly naive's
    relative errors per 14-day window are 1 and 3 (window 1), 1 (window 2), then 0 (windows 3 and 4); with
    2 calibration windows each interval uses at most the 2 windows before it."""
    pattern = np.arange(1.0, 8.0)
    values = np.concatenate([pattern * 2.0 ** min(week, 4) for week in range(10)])  # 70 days
    settings = replace(CHEAP, every_series_models=(SEASONAL_NAIVE_WEEKLY,), min_train_days=14,
                       selection_windows=1, holdout_windows=1,
                       daily=replace(CHEAP.daily, backtest_horizon_days=14, history_days=28, calibration_windows=2))
    result = _run(_daily_series(values), settings)
    metrics = result[result.record == "metric"].sort_values("window")
    assert metrics["window_role"].tolist() == [CALIBRATION, CALIBRATION, SELECTION, HOLDOUT]
    # window 2: on window 1's errors, [yhat x 2, yhat x 4], its actuals are yhat x 2: all in; window 3: the same
    # interval (windows 1-2), actuals = yhat: none in; window 4: windows 2-3 only, [yhat, yhat x 2]: all in.
    assert metrics["coverage_80"].tolist()[1:] == [1.0, 0.0, 1.0]
    assert np.isnan(metrics["coverage_80"].iloc[0])
    forecast = result[result.record == "forecast"]
    # the final interval: windows 3-4, errors all 0, so no width; window 1's large errors are too old to count
    assert forecast["yhat_lower"].tolist() == forecast["yhat"].tolist() == forecast["yhat_upper"].tolist()
    assert forecast["yhat"].head(7).tolist() == (pattern * 16).tolist()


def test_champion_needs_to_beat_the_weekly_naive_on_selection_windows():
    windows = backtest_windows(1000, 100, 300, 200, 1, 1)
    scores = {SEASONAL_NAIVE_WEEKLY: [{"mase": 1.0}, {"mase": 1.0}],
              SEASONAL_MEAN_WEEKLY: [{"mase": 0.8}, {"mase": 5.0}],  # better where selected, worse held out
              SEASONAL_NAIVE_DAILY: [{"mase": 1.0}, {"mase": 0.1}]}  # a tie is no win
    assert choose_champion(scores, windows) == SEASONAL_MEAN_WEEKLY
    assert choose_champion({SEASONAL_NAIVE_WEEKLY: scores[SEASONAL_NAIVE_WEEKLY],
                            SEASONAL_NAIVE_DAILY: scores[SEASONAL_NAIVE_DAILY]}, windows) == SEASONAL_NAIVE_WEEKLY


def _daily_series(values, start="2025-01-01", name="s") -> pd.DataFrame:
    ts = pd.date_range(start, periods=len(values), freq="D")
    return pd.DataFrame({"series": name, "granularity": "daily", "ts": ts, "y": np.asarray(values, float),
                         "is_headline": False})


def _run(frame: pd.DataFrame, settings=CHEAP) -> pd.DataFrame:
    end = frame["ts"].max() + pd.Timedelta(days=1)
    return forecast_series(frame, settings, {"daily": end.to_pydatetime(), "hourly": end.to_pydatetime()},
                           datetime(2025, 6, 1))


def test_no_window_sees_data_from_its_cutoff_on():
    settings = replace(CHEAP, daily=replace(CHEAP.daily, backtest_horizon_days=7, history_days=28),
                       min_train_days=14)
    rng = np.random.default_rng(3)
    values = rng.poisson(50, 70).astype(float)
    changed = values.copy()
    changed[-7:] *= 10  # only the last window's test data changes
    base, altered = _run(_daily_series(values), settings), _run(_daily_series(changed), settings)
    metrics = lambda r: r[r.record == "metric"].set_index(["model", "window"]).sort_index()  # noqa: E731
    last = metrics(base).index.get_level_values("window").max()
    earlier_base = metrics(base).query("window < @last")[["mase", "smape", "coverage_80"]]
    earlier_altered = metrics(altered).query("window < @last")[["mase", "smape", "coverage_80"]]
    pd.testing.assert_frame_equal(earlier_base, earlier_altered)
    assert not metrics(base).query("window == @last")["mase"].equals(metrics(altered).query("window == @last")["mase"])


def test_weekly_pattern_is_forecast_exactly_by_the_weekly_naive():
    week = [10, 20, 30, 40, 50, 5, 1]
    result = _run(_daily_series(week * 12))  # 84 days ending on a Sunday
    forecast = result[result.record == "forecast"]
    assert forecast["model"].unique().tolist() == [SEASONAL_NAIVE_WEEKLY]  # nobody beats a perfect forecast
    assert len(forecast) == CHEAP.daily.horizon_days
    assert forecast["yhat"].head(14).tolist() == week * 2
    assert forecast["ts"].iloc[0] == pd.Timestamp("2025-03-26")
    metrics = result[(result.record == "metric") & (result.model == SEASONAL_NAIVE_WEEKLY)]
    assert metrics["smape"].tolist() == [0.0] * len(metrics)
    assert set(metrics["window_role"]) == {SELECTION, HOLDOUT}  # 4 windows fit: none left to calibrate


def test_settings_errors_name_the_entry():
    gold = GoldSettings(throughput_units=3)
    settings = parse_forecast_settings({"hourly": {"horizon_days": 14}}, gold, "f.yml")
    assert settings.hourly.horizon_days == 14 and settings.capacity_events_per_second == 3000
    with pytest.raises(ConfigError, match=r"f.yml: daily.horizon_days: must be an integer"):
        parse_forecast_settings({"daily": {"horizon_days": "a quarter"}}, gold, "f.yml")
    with pytest.raises(ConfigError, match=r"candidates.every_series\[1\]: must be one of"):
        parse_forecast_settings({"candidates": {"every_series": ["seasonal_naive_weekly", "arima"]}}, gold, "f.yml")
    with pytest.raises(ConfigError, match=r"f.yml: capacity: unknown entries units"):
        parse_forecast_settings({"capacity": {"units": 2}}, gold, "f.yml")


def test_repository_settings_load():
    from pathlib import Path

    from metering_analytics.models.forecasting.settings import load_forecast_settings

    root = Path(__file__).resolve().parents[1]
    settings = load_forecast_settings(root / "conf" / "forecast.yml")
    assert settings.hourly.horizon_days == 7 and settings.daily.horizon_days == 90


@pytest.mark.parametrize("model", ["prophet", "mstl"])
def test_the_strong_candidates_learn_a_weekly_pattern(model):
    """Prophet and MSTL, fitted for real on eight weeks of a clean weekly pattern, forecast the next week."""
    from metering_analytics.models.forecasting.candidates import fit_predict
    from metering_analytics.models.forecasting.settings import DAILY, ProphetSettings

    days = pd.date_range("2025-01-06", periods=56, freq="D")
    pattern = np.array([100.0, 120, 130, 125, 110, 40, 30])
    train = pd.Series(np.tile(pattern, 8), index=days)
    forecast = fit_predict(model, train, 7, DAILY, ProphetSettings(), seasonal_mean_weeks=4)
    assert np.allclose(np.asarray(forecast.mean), pattern, rtol=0.05, atol=3)
