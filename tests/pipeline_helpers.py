"""Run the real bronze and silver stages over a folder of Capture files, into a temporary lakehouse."""
from __future__ import annotations

from pathlib import Path

from metering_analytics.config import load_config


def local_config(source: Path, lakehouse: Path):
    return load_config().with_overrides(capture_path=str(source), lakehouse_root=str(lakehouse))


def run_ingestion(spark, source: Path, lakehouse: Path):
    from metering_analytics.bronze.stage import run_bronze
    from metering_analytics.silver.stage import run_silver

    config = local_config(source, lakehouse)
    bronze = run_bronze(spark, config)
    silver = run_silver(spark, config)
    return config, bronze, silver
