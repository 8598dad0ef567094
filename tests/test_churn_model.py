"""Labels, the time split (no leakage), and the churn stage end to end: the model and the heuristic
against the recency-only baseline on a hand-made population."""
from __future__ import annotations

import math
import random
from datetime import date, datetime, timedelta

import pytest
from pyspark.sql import functions as F

from churn_helpers import consumption_df, day_rows, days_between, monthly_subscriptions, no_reconciliation, \
    two_meter_plan
from metering_analytics.io.lakehouse import Lakehouse
from metering_analytics.models.churn.heuristic import COMPONENTS
from metering_analytics.models.churn.labels import labelled_dates, time_split, with_labels
from metering_analytics.models.churn.model import FEATURE_COLUMNS, fit_model
from metering_analytics.models.churn.settings import ChurnSettings, parse_churn_settings
from metering_analytics.models.churn.stage import run_churn
from metering_analytics.config import ConfigError


def test_labels_known_only_after_the_horizon(spark):
    clock = datetime(2024, 5, 1, 12)
    rows = [("a", date(2024, 3, 1), datetime(2024, 3, 20)),   # deleted 19 days later: churner
            ("b", date(2024, 3, 1), datetime(2024, 4, 15)),   # 45 days later: not within 30
            ("c", date(2024, 3, 1), None),
            ("d", date(2024, 4, 10), datetime(2024, 4, 20)),  # deleted, but the horizon ends after the clock
            ("e", date(2024, 4, 1), datetime(2024, 5, 1))]    # horizon ends May 1 00:00, before the clock
    df = spark.createDataFrame(rows, "subscription_key string, as_of_date date, deleted_at timestamp")
    got = {r["subscription_key"]: (r["label_known"], r["churned"])
           for r in with_labels(df, 30, clock).collect()}
    assert got == {"a": (True, 1.0), "b": (True, 0.0), "c": (True, 0.0), "d": (False, None), "e": (True, 1.0)}


def test_time_split_has_no_leakage():
    dates = [date(2024, 1, 1) + timedelta(days=7 * i) for i in range(20)]
    clock = datetime(2024, 5, 20)
    labelled = labelled_dates(dates, 30, clock)
    assert max(labelled) + timedelta(days=30) <= clock.date()
    split = time_split(labelled, 0.3, 30)
    assert split.holdout == tuple(labelled[-5:])  # ceil(0.3 x 15)
    # Every training label (as-of date + horizon) is known before the holdout starts ...
    assert all(d + timedelta(days=30) <= split.holdout[0] for d in split.train)
    # ... and the dates in between are used by neither side.
    assert set(split.train) | set(split.dropped) | set(split.holdout) == set(labelled)
    assert not set(split.train) & set(split.holdout)
    assert len(split.dropped) == 4  # 30 days = 4 weekly dates + 2 days
    assert time_split([], 0.3, 30).holdout == ()


def test_settings_validation_names_the_entry():
    s = parse_churn_settings({"churn": {"horizon_days": 14, "bands": {"medium": 0.2, "high": 0.4}}}, "conf/churn.yml")
    assert (s.horizon_days, s.medium_band, s.high_band) == (14, 0.2, 0.4)
    with pytest.raises(ConfigError, match=r"conf/churn.yml: churn.horizon_days: must be an integer"):
        parse_churn_settings({"churn": {"horizon_days": "soon"}}, "conf/churn.yml")
    with pytest.raises(ConfigError, match=r"churn.heuristic_weights: unknown entries recency"):
        parse_churn_settings({"churn": {"heuristic_weights": {"recency": 1}}}, "conf/churn.yml")
    with pytest.raises(ConfigError, match=r"churn.bands: medium \(0.6\) must be below high"):
        parse_churn_settings({"churn": {"bands": {"medium": 0.6, "high": 0.5}}}, "conf/churn.yml")


START, END = date(2024, 1, 1), date(2024, 9, 1)
CLOCK = datetime(2024, 9, 1, 18)


def _population():
    """40 monthly customers: 16 fade over 4 weeks and leave, 8 take breaks of 6 to 12 days and stay."""
    rng = random.Random(7)
    keys, deleted, rows = [], {}, []
    deletions = [datetime(2024, 3, 10, 9) + timedelta(days=11 * i, hours=i) for i in range(16)]
    for i in range(40):
        key = f"s{i:02d}"
        keys.append(key)
        level = rng.uniform(6, 14)
        if i < 16:
            gone = deletions[i]
            deleted[key] = gone
            fade_from = gone.date() - timedelta(days=28)

            def events(d, level=level, fade_from=fade_from, gone=gone.date()):
                if d >= gone:
                    return 0
                fade = min(max((d - fade_from).days / 28, 0.0), 1.0)
                return int(level * (1 - 0.85 * fade) * rng.uniform(0.5, 1.5))
        elif i < 24:
            breaks = {START + timedelta(days=rng.randrange(40, 230)) for _ in range(3)}
            off = {b + timedelta(days=k) for b in breaks for k in range(rng.randrange(6, 13))}

            def events(d, level=level, off=off):
                return 0 if d in off else int(level * rng.uniform(0.5, 1.5))
        else:
            def events(d, level=level):
                return int(level * rng.uniform(0.5, 1.5))
        rows += day_rows(key, "api", days_between(START, END), events)
    return keys, deleted, rows


def test_churn_stage_beats_the_recency_baseline(spark, tmp_path):
    keys, deleted, rows = _population()
    lakehouse = Lakehouse(root=str(tmp_path / "lh"))
    lakehouse.overwrite(monthly_subscriptions(spark, keys, deleted, start=datetime(2024, 1, 1)), "silver",
                        "subscriptions")
    lakehouse.overwrite(two_meter_plan(spark, keys), "silver", "plan_dimensions")
    lakehouse.overwrite(consumption_df(spark, rows), "gold", "cs_consumption_daily")
    lakehouse.overwrite(no_reconciliation(spark), "gold", "billing_reconciliation")
    settings = ChurnSettings(min_churners_for_model=5)

    summary = run_churn(spark, lakehouse, settings, CLOCK)

    assert summary["scorer"] == "model"
    metrics = {(r["scorer"], r["split"]): r for r in lakehouse.read(spark, "gold", "churn_model_metrics").collect()}
    holdout = {s: metrics[(s, "holdout")] for s in ("model", "heuristic", "recency_baseline")}
    assert holdout["recency_baseline"]["churners"] >= 3
    for scorer in ("model", "heuristic"):
        assert holdout[scorer]["roc_auc"] > holdout["recency_baseline"]["roc_auc"]
        assert holdout[scorer]["beats_recency_baseline"] is True
        assert holdout[scorer]["lift_top_decile"] > 1
    assert metrics[("model", "holdout")]["is_selected"] and not metrics[("heuristic", "holdout")]["is_selected"]
    # The holdout comes after the training dates, a horizon apart.
    train = metrics[("model", "train")]
    assert train["last_as_of_date"] + timedelta(days=30) <= holdout["model"]["first_as_of_date"]

    risk = lakehouse.read(spark, "gold", "churn_risk")
    # Everyone still active at the clock, scored as of the clock's day, with drivers in words.
    assert risk.count() == 40 - sum(1 for d in deleted.values() if d <= CLOCK)
    assert risk.where((F.col("churn_risk") < 0) | (F.col("churn_risk") > 1)).count() == 0
    assert {r[0] for r in risk.select("risk_band").distinct().collect()} <= {"low", "medium", "high"}
    assert risk.where(F.col("features_as_of_date") != F.lit(CLOCK.date())).count() == 0


def test_model_scores_are_probabilities_despite_the_class_weights(spark):
    """Churners are weighted up to balance the classes while fitting; the corrected intercept brings the
    scores back to the real share of churners, so the bands mean the same for the model as for a rate."""
    rng = random.Random(3)
    rows = []
    for i in range(3000):
        components = [rng.random() for _ in FEATURE_COLUMNS]
        true_logit = -4.0 + 3.0 * components[0]  # about 4% churn, more with the first component
        churned = 1.0 if rng.random() < 1 / (1 + math.exp(-true_logit)) else 0.0
        rows.append((f"s{i}", churned, *components))
    training = spark.createDataFrame(rows, ["subscription_key", "churned", *FEATURE_COLUMNS])

    model = fit_model(training, reg_param=0.0, max_iter=100)

    share = sum(r[1] for r in rows) / len(rows)
    mean_score = training.select(F.avg(model.score())).first()[0]
    assert abs(mean_score - share) < 0.01, (mean_score, share)
    assert model.coefficients[COMPONENTS[0]] == pytest.approx(3.0, abs=1.0)
