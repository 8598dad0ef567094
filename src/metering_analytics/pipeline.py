"""Runs the stages in order and reports what each produced.

Ingestion (the hourly job): bronze -> silver -> snapshots -> billing -> gold.
Models (the daily job): forecasts -> churn -> recommendations, all reading gold.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from metering_analytics.billing.prices import PriceCatalog, PriceCatalogError, load_price_catalog
from metering_analytics.billing.stage import run_billing
from metering_analytics.bronze.snapshots import run_snapshots
from metering_analytics.bronze.stage import run_bronze
from metering_analytics.config import ConfigError, PipelineConfig
from metering_analytics.gold.settings import GoldSettings, check_against_catalog, load_gold_settings
from metering_analytics.gold.stage import project_dir, report_overage_alerts, run_gold
from metering_analytics.io.table_docs import comment_tables, load_table_docs
from metering_analytics.models.churn.settings import ChurnSettings, load_churn_settings
from metering_analytics.models.churn.stage import run_churn
from metering_analytics.models.forecasting.settings import ForecastSettings, load_forecast_settings
from metering_analytics.models.forecasting.stage import run_forecasts
from metering_analytics.models.recommendations.settings import RecommendationSettings, load_recommendation_settings
from metering_analytics.models.recommendations.stage import run_recommendations
from metering_analytics.silver.stage import run_silver

Progress = Callable[[str], None]
# Settings files, relative to the project root (config.base_dir).
GOLD_SETTINGS = "conf/gold.yml"
FORECAST_SETTINGS = "conf/forecast.yml"
CHURN_SETTINGS = "conf/churn.yml"  # its `churn` and `recommendations` sections


@dataclass(frozen=True)
class RunContext:
    spark: SparkSession
    config: PipelineConfig
    prices: PriceCatalog
    gold: GoldSettings
    forecast: ForecastSettings
    churn: ChurnSettings
    recommendations: RecommendationSettings
    progress: Progress = print  # where a stage reports what it finds (the gold stage: overage alerts)


@dataclass
class StageReport:
    name: str
    seconds: float
    details: dict = field(default_factory=dict)


@dataclass
class PipelineReport:
    stages: list[StageReport] = field(default_factory=list)
    row_counts: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)


def data_clock(spark: SparkSession, config: PipelineConfig) -> datetime | None:
    """The latest enqueued time seen: "now" as far as the data knows.

    Reports are computed as of this instant rather than the wall clock, so the same input always
    gives the same tables, and a replay of old data reports as of its own end.
    """
    lakehouse = config.lakehouse
    if not lakehouse.exists(spark, "bronze", "events"):
        return None
    return lakehouse.read(spark, "bronze", "events").agg(F.max("enqueued_time")).first()[0]


def _bronze(ctx: RunContext) -> dict:
    r = run_bronze(ctx.spark, ctx.config)
    for damaged in r.damaged_files:
        ctx.progress(f"damaged Capture file {damaged['source_file']}: {damaged['problem']} "
                     f"({damaged['records_kept']} records kept)")
    return {"records": r.records_read, "added": r.records_added, "batches": r.batches,
            "files": r.files_audited, "damaged_files": len(r.damaged_files)}


def _silver(ctx: RunContext) -> dict:
    r = run_silver(ctx.spark, ctx.config)
    return {"records": r.records, "batches": r.batches}


def _snapshots(ctx: RunContext) -> dict:
    return run_snapshots(ctx.spark, ctx.config)


def _billing(ctx: RunContext) -> dict:
    return run_billing(ctx.spark, ctx.config.lakehouse, ctx.prices, as_of=data_clock(ctx.spark, ctx.config))


def _gold(ctx: RunContext) -> dict:
    lakehouse = ctx.config.lakehouse
    counts = run_gold(ctx.spark, lakehouse, ctx.gold, data_clock(ctx.spark, ctx.config), ctx.prices)
    report_overage_alerts(ctx.spark, lakehouse, ctx.gold, ctx.progress)
    return counts


def _documented(ctx: RunContext, details: dict) -> dict:
    """A model stage's tables get their table and column comments from docs/ as the gold stage's do."""
    docs = load_table_docs(project_dir(ctx.gold) / "docs")
    undocumented = comment_tables(ctx.spark, ctx.config.lakehouse, "gold", docs)["undocumented_columns"]
    return {**details, **({"undocumented_columns": undocumented} if undocumented else {})}


def _forecasts(ctx: RunContext) -> dict:
    as_of = data_clock(ctx.spark, ctx.config)
    return _documented(ctx, run_forecasts(ctx.spark, ctx.config.lakehouse, ctx.forecast, as_of, ctx.prices))


INGESTION_STAGES: list[tuple[str, Callable[[RunContext], dict]]] = [
    ("bronze", _bronze),
    ("silver", _silver),
    ("snapshots", _snapshots),
    ("billing", _billing),
    ("gold", _gold),
]
def _churn(ctx: RunContext) -> dict:
    return _documented(ctx, run_churn(ctx.spark, ctx.config.lakehouse, ctx.churn, data_clock(ctx.spark, ctx.config)))


def _recommendations(ctx: RunContext) -> dict:
    as_of = data_clock(ctx.spark, ctx.config)
    return _documented(ctx, run_recommendations(ctx.spark, ctx.config.lakehouse, ctx.prices, as_of,
                                                ctx.recommendations))


MODEL_STAGES: list[tuple[str, Callable[[RunContext], dict]]] = [
    ("forecasts", _forecasts),
    ("churn", _churn),
    ("recommendations", _recommendations),
]
STAGES = INGESTION_STAGES + MODEL_STAGES


def load_run_context(spark: SparkSession, config: PipelineConfig, progress: Progress = print) -> RunContext:
    """Validate every setting the run needs before any table is touched."""
    try:
        prices = load_price_catalog(config.price_catalog)
    except PriceCatalogError as exc:
        raise ConfigError(str(exc)) from exc
    gold = load_gold_settings(config.base_dir / GOLD_SETTINGS)
    check_against_catalog(gold, prices)
    forecast = load_forecast_settings(config.base_dir / FORECAST_SETTINGS, gold)
    churn = load_churn_settings(config.base_dir / CHURN_SETTINGS)
    recommendations = load_recommendation_settings(config.base_dir / CHURN_SETTINGS)
    return RunContext(spark, config, prices, gold, forecast, churn, recommendations, progress)


def run_pipeline(spark: SparkSession, config: PipelineConfig, progress: Progress = print,
                 stages: list[str] | None = None) -> PipelineReport:
    ctx = load_run_context(spark, config, progress)
    report = PipelineReport()
    for name, stage in STAGES:
        if stages is not None and name not in stages:
            continue
        progress(f"[{name}] running ...")
        started = time.perf_counter()
        details = stage(ctx)
        elapsed = time.perf_counter() - started
        report.stages.append(StageReport(name, elapsed, details))
        summary = ", ".join(f"{k}={v}" for k, v in details.items())
        progress(f"[{name}] done in {elapsed:.1f}s ({summary})")
    report.row_counts = config.lakehouse.row_counts(spark)
    quarantine = config.lakehouse.table_name("silver", "quarantine")
    if spark.catalog.tableExists(quarantine):
        report.quarantined = {
            r["reason"]: r["n"] for r in spark.sql(
                f"SELECT reason, count(*) AS n FROM {quarantine} GROUP BY reason ORDER BY reason").collect()
        }
    return report
