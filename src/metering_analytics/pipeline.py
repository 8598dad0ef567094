"""Runs the stages in order (bronze -> silver -> billing -> gold) and reports what each produced."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from pyspark.sql import SparkSession

from metering_analytics.bronze.snapshots import run_snapshots
from metering_analytics.bronze.stage import run_bronze
from metering_analytics.config import PipelineConfig
from metering_analytics.silver.stage import run_silver

Progress = Callable[[str], None]


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


def _stage_bronze(spark: SparkSession, config: PipelineConfig) -> dict:
    r = run_bronze(spark, config)
    return {"files": r.files_read, "records": r.records_read, "batches": r.batches}


def _stage_silver(spark: SparkSession, config: PipelineConfig) -> dict:
    r = run_silver(spark, config)
    return {"records": r.records, "batches": r.batches, "quarantined": sum(r.quarantined.values())}


STAGES: list[tuple[str, Callable[[SparkSession, PipelineConfig], dict]]] = [
    ("bronze", _stage_bronze),
    ("silver", _stage_silver),
    ("snapshots", run_snapshots),
]


def run_pipeline(spark: SparkSession, config: PipelineConfig, progress: Progress = print) -> PipelineReport:
    report = PipelineReport()
    for name, stage in STAGES:
        progress(f"[{name}] running ...")
        started = time.perf_counter()
        details = stage(spark, config)
        elapsed = time.perf_counter() - started
        report.stages.append(StageReport(name, elapsed, details))
        summary = ", ".join(f"{k}={v}" for k, v in details.items())
        progress(f"[{name}] done in {elapsed:.1f}s ({summary})")
    report.row_counts = config.lakehouse.row_counts(spark)
    quarantine = config.lakehouse.table_name("silver", "quarantine")
    report.quarantined = {
        r["reason"]: r["n"] for r in spark.sql(
            f"SELECT reason, count(*) AS n FROM {quarantine} GROUP BY reason ORDER BY reason").collect()
    }
    return report
