"""One small pipeline run shared by the SQL view and column comment tests (session-scoped: it costs ~1 min)."""
from __future__ import annotations

import pytest

from metering_analytics.config import load_config
from metering_analytics.generate import generate
from metering_analytics.io.lakehouse import Lakehouse
from metering_analytics.pipeline import run_pipeline


@pytest.fixture(scope="session")
def gold_lakehouse(spark, tmp_path_factory) -> Lakehouse:
    root = tmp_path_factory.mktemp("gold_pipeline")
    # 35 days from Jan 1: two calendar months, so "this month vs last month" has both.
    generate(root / "data", subscriptions=8, days=35, seed=11, window_minutes=720,
             events_per_subscription_hour=2.0)
    config = load_config().with_overrides(capture_path=str(root / "data" / "capture"),
                                          snapshot_path=str(root / "data" / "snapshots"),
                                          lakehouse_root=str(root / "lakehouse"))
    run_pipeline(spark, config, progress=lambda _: None)
    return config.lakehouse
