"""The churn stage: usage history -> gold.churn_features, gold.churn_model_metrics, gold.churn_risk.

Runs after the gold stage (it reads gold.cs_consumption_daily and gold.billing_reconciliation). Every
table is rebuilt in full from its inputs; the clock is the data's (`as_of`), the model is a
deterministic fit, so the same input gives the same tables.

1. Features for every subscription active at every as-of date of a grid (every `grid_days`, ending
   on the clock's day), labels where the horizon has passed (labels.py).
2. Time split: the latest labelled dates are the holdout, training dates end a horizon before it.
3. The heuristic score always; the model is fitted on the training dates when they hold at least 3
   churners, and *used* only when they hold `min_churners_for_model`. All of them and the recency-only
   baseline are evaluated on the train and holdout dates (gold.churn_model_metrics).
4. The current scores (as-of date = the clock's day) with the model, refitted on every labelled date,
   or the heuristic when there is no model (gold.churn_risk).
"""
from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from metering_analytics.billing.cycles import timestamp_literal
from metering_analytics.billing.reconciliation import RECONCILIATION_SCHEMA
from metering_analytics.billing.stage import require_utc_session, utc_naive
from metering_analytics.gold.customer_success import CONSUMPTION_DAILY_SCHEMA
from metering_analytics.io.lakehouse import Lakehouse, with_columns_of
from metering_analytics.models.churn.drivers import (
    MIN_HEURISTIC_CONTRIBUTION,
    MIN_MODEL_CONTRIBUTION,
    drivers_summary,
    top_drivers,
)
from metering_analytics.models.churn.features import (
    CHURN_FEATURES_SCHEMA,
    as_of_dates,
    churn_features,
)
from metering_analytics.models.churn.heuristic import (
    heuristic_contributions,
    heuristic_score,
    recency_baseline_score,
    with_components,
)
from metering_analytics.models.churn.labels import labelled_dates, time_split, with_labels, with_split
from metering_analytics.models.churn.model import Evaluation, FittedModel, evaluate, fit_model
from metering_analytics.models.churn.settings import ChurnSettings
from metering_analytics.schemas import (
    BRONZE_EVENTS_SCHEMA,
    SILVER_PLAN_DIMENSIONS_SCHEMA,
    SILVER_SUBSCRIPTIONS_SCHEMA,
)

MODEL, HEURISTIC, RECENCY_BASELINE = "model", "heuristic", "recency_baseline"
# Below this many churners in the training dates the model is not even fitted for comparison.
MIN_CHURNERS_TO_EVALUATE = 3

GOLD_CHURN_FEATURES_SCHEMA = StructType(
    [f for f in CHURN_FEATURES_SCHEMA.fields]
    + [
        StructField("label_known", BooleanType(), False),
        StructField("churned", BooleanType(), True),  # null while the horizon has not passed
        StructField("split", StringType(), True),  # train | holdout | null
    ]
)

CHURN_RISK_SCHEMA = StructType(
    [
        StructField("subscription_key", StringType(), False),
        StructField("resource_id", StringType(), True),
        StructField("resource_uri", StringType(), True),
        StructField("plan_id", StringType(), False),
        StructField("renewal_interval", StringType(), False),
        StructField("as_of", TimestampType(), False),
        StructField("features_as_of_date", DateType(), False),
        StructField("churn_risk", DoubleType(), False),
        StructField("risk_band", StringType(), False),
        StructField("scorer", StringType(), False),
        StructField("heuristic_score", DoubleType(), False),
        StructField("top_drivers", ArrayType(StringType()), False),
        StructField("drivers_summary", StringType(), False),
        StructField("days_without_usage", IntegerType(), False),
        StructField("usage_trend_7d", DoubleType(), True),
        StructField("usage_trend_28d", DoubleType(), True),
        StructField("active_day_share_28d", DoubleType(), True),
        StructField("included_use_28d", DoubleType(), True),
        StructField("meters_used_28d", IntegerType(), False),
        StructField("meters_used_prev_28d", IntegerType(), False),
        StructField("rejected_submissions_28d", LongType(), False),
        StructField("tenure_days", IntegerType(), False),
        StructField("days_to_renewal", IntegerType(), False),
    ]
)

CHURN_MODEL_METRICS_SCHEMA = StructType(
    [
        StructField("as_of", TimestampType(), False),
        StructField("scorer", StringType(), False),  # model | heuristic | recency_baseline
        StructField("split", StringType(), False),  # train | holdout
        StructField("is_selected", BooleanType(), False),  # the scorer of gold.churn_risk
        StructField("horizon_days", IntegerType(), False),
        StructField("first_as_of_date", DateType(), True),
        StructField("last_as_of_date", DateType(), True),
        StructField("as_of_dates", IntegerType(), False),
        StructField("rows", LongType(), False),
        StructField("positives", LongType(), False),
        StructField("churners", LongType(), False),
        StructField("roc_auc", DoubleType(), True),
        StructField("pr_auc", DoubleType(), True),
        StructField("lift_top_decile", DoubleType(), True),
        StructField("roc_auc_minus_baseline", DoubleType(), True),
        StructField("beats_recency_baseline", BooleanType(), True),  # ROC AUC above the baseline's
        StructField("component_weights", MapType(StringType(), DoubleType()), True),
    ]
)

GOLD_CHURN_SCHEMAS = {
    "churn_features": GOLD_CHURN_FEATURES_SCHEMA,
    "churn_model_metrics": CHURN_MODEL_METRICS_SCHEMA,
    "churn_risk": CHURN_RISK_SCHEMA,
}
_NO_DATA_CLOCK = datetime(1970, 1, 1)


def risk_band(score: F.Column, settings: ChurnSettings) -> F.Column:
    return (F.when(score >= settings.high_band, F.lit("high"))
            .when(score >= settings.medium_band, F.lit("medium")).otherwise(F.lit("low")))


def labelled_features(subscriptions: DataFrame, plan_dimensions: DataFrame, consumption_daily: DataFrame,
                      reconciliation: DataFrame, settings: ChurnSettings, clock: datetime):
    """(GOLD_CHURN_FEATURES_SCHEMA rows, the TimeSplit) for the as-of grid of the data."""
    first_day = consumption_daily.agg(F.min("day")).first()[0]
    dates = as_of_dates(first_day, clock, settings.grid_days, settings.min_history_days)
    split = time_split(labelled_dates(dates, settings.horizon_days, clock), settings.holdout_fraction,
                       settings.horizon_days)
    features = churn_features(subscriptions, plan_dimensions, consumption_daily, reconciliation, dates)
    labelled = with_split(with_labels(features, settings.horizon_days, clock), split)
    return labelled.withColumn("churned", F.col("churned") == 1.0), split


def current_risk(scored: DataFrame, model: FittedModel | None, settings: ChurnSettings, clock: datetime) -> DataFrame:
    """CHURN_RISK_SCHEMA rows: the clock's day, subscriptions still active at the clock."""
    now = timestamp_literal(clock)
    current = scored.where(
        (F.col("as_of_date") == F.lit(clock.date())) & (F.col("deleted_at").isNull() | (F.col("deleted_at") > now)))
    if model is not None:
        risk, scorer = model.score(), MODEL
        drivers = top_drivers(model.contributions(), MIN_MODEL_CONTRIBUTION, settings.max_drivers)
    else:
        risk, scorer = F.col("heuristic_score"), HEURISTIC
        drivers = top_drivers(heuristic_contributions(settings.heuristic_weights), MIN_HEURISTIC_CONTRIBUTION,
                              settings.max_drivers)
    return (
        current.withColumn("churn_risk", risk)
        .withColumn("risk_band", risk_band(F.col("churn_risk"), settings))
        .withColumn("scorer", F.lit(scorer))
        .withColumn("as_of", now)
        .withColumn("features_as_of_date", F.col("as_of_date"))
        .withColumn("top_drivers", drivers)
        .withColumn("drivers_summary", drivers_summary(F.col("top_drivers")))
    )


def _metrics_rows(scored: DataFrame, model: FittedModel | None, use_model: bool, settings: ChurnSettings, split,
                  clock: datetime) -> list[tuple]:
    selected = MODEL if use_model else HEURISTIC
    weights = {
        MODEL: None if model is None else {"intercept": model.intercept, **model.coefficients},
        HEURISTIC: dict(settings.heuristic_weights),
        RECENCY_BASELINE: None,
    }
    scorers = [s for s in (MODEL, HEURISTIC, RECENCY_BASELINE) if s != MODEL or model is not None]
    rows = []
    for split_name, dates in (("train", split.train), ("holdout", split.holdout)):
        part = scored.where(F.col("split") == split_name)
        results: dict[str, Evaluation] = {s: evaluate(part, f"score_{s}") for s in scorers}
        baseline = results[RECENCY_BASELINE].roc_auc
        for s in scorers:
            r = results[s]
            diff = None if r.roc_auc is None or baseline is None else round(r.roc_auc - baseline, 6)
            rows.append((
                clock, s, split_name, s == selected, settings.horizon_days,
                min(dates) if dates else None, max(dates) if dates else None, len(dates),
                r.rows, r.positives, r.churners, r.roc_auc, r.pr_auc, r.lift_top_decile, diff,
                None if diff is None or s == RECENCY_BASELINE else diff > 0, weights[s],
            ))
    return rows


def run_churn(spark: SparkSession, lakehouse: Lakehouse, settings: ChurnSettings,
              as_of: datetime | None) -> dict:
    """Rebuild the churn tables; returns a JSON-able summary (row counts, scorer, holdout metrics).

    `as_of` is the data clock (naive means UTC), as the pipeline passes to run_gold; None takes the
    latest enqueued time of bronze.events.
    """
    require_utc_session(spark)
    subscriptions = lakehouse.read_or_empty(spark, "silver", "subscriptions", SILVER_SUBSCRIPTIONS_SCHEMA)
    plan_dimensions = lakehouse.read_or_empty(spark, "silver", "plan_dimensions", SILVER_PLAN_DIMENSIONS_SCHEMA)
    consumption = lakehouse.read_or_empty(spark, "gold", "cs_consumption_daily", CONSUMPTION_DAILY_SCHEMA)
    reconciliation = lakehouse.read_or_empty(spark, "gold", "billing_reconciliation", RECONCILIATION_SCHEMA)
    if as_of is None:
        bronze = lakehouse.read_or_empty(spark, "bronze", "events", BRONZE_EVENTS_SCHEMA)
        as_of = bronze.agg(F.max("enqueued_time")).first()[0] or _NO_DATA_CLOCK
    clock = utc_naive(as_of)

    features, split = labelled_features(subscriptions, plan_dimensions, consumption, reconciliation, settings, clock)
    _write(lakehouse, "churn_features", features)
    base = with_components(lakehouse.read(spark, "gold", "churn_features")).withColumn(
        "churned", F.col("churned").cast("double"))
    scored = (
        base.withColumn("heuristic_score", heuristic_score(settings.heuristic_weights))
        .withColumn(f"score_{HEURISTIC}", F.col("heuristic_score"))
        .withColumn(f"score_{RECENCY_BASELINE}", recency_baseline_score())
        .localCheckpoint()  # features x dates: small, and used by every fit and evaluation below
    )
    train = scored.where(F.col("split") == "train")
    train_churners = train.where(F.col("churned") == 1.0).select("subscription_key").distinct().count()
    # With too few churners the model is still fitted and evaluated, for the comparison, but not used.
    evaluated_model = None
    if train_churners >= MIN_CHURNERS_TO_EVALUATE and train.where(F.col("churned") == 0.0).first() is not None:
        evaluated_model = fit_model(train, settings.reg_param, settings.max_iter)
        scored = scored.withColumn(f"score_{MODEL}", evaluated_model.score())
    use_model = evaluated_model is not None and train_churners >= settings.min_churners_for_model

    metrics = _metrics_rows(scored, evaluated_model, use_model, settings, split, clock)
    _write(lakehouse, "churn_model_metrics", spark.createDataFrame(metrics, CHURN_MODEL_METRICS_SCHEMA))

    # The current scores: the same procedure, refitted on every date whose label is known.
    final_model = None
    if use_model:
        final_model = fit_model(scored.where(F.col("label_known")), settings.reg_param, settings.max_iter)
    _write(lakehouse, "churn_risk", current_risk(scored, final_model, settings, clock))

    read = lambda t: lakehouse.read(spark, "gold", t)  # noqa: E731
    holdout = {r[1]: {"roc_auc": r[11], "pr_auc": r[12], "lift_top_decile": r[13]}
               for r in metrics if r[2] == "holdout"}
    return {
        **{f"gold.{t}": read(t).count() for t in GOLD_CHURN_SCHEMAS},
        "scorer": MODEL if final_model is not None else HEURISTIC,
        "train_dates": len(split.train),
        "holdout_dates": len(split.holdout),
        "train_churners": train_churners,
        "min_churners_for_model": settings.min_churners_for_model,
        "holdout": holdout,
        "bands": {r["risk_band"]: r["n"] for r in
                  read("churn_risk").groupBy("risk_band").agg(F.count(F.lit(1)).alias("n")).collect()},
    }


def _write(lakehouse: Lakehouse, table: str, df: DataFrame) -> None:
    lakehouse.overwrite(with_columns_of(df, GOLD_CHURN_SCHEMAS[table]), "gold", table)
