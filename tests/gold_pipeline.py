"""One small pipeline run, shared by the SQL view and the column comment tests (their slow part)."""
from __future__ import annotations

from datetime import datetime

import pytest

from metering_analytics.config import load_config
from metering_analytics.generate import generate
from metering_analytics.io.lakehouse import Lakehouse
from metering_analytics.pipeline import run_pipeline


# Test modules import the fixture, and pytest then holds one definition per module: the run itself is
# cached here, so it happens once per session however many modules use it.
_BUILT: dict[str, Lakehouse] = {}


@pytest.fixture(scope="session")
def gold_lakehouse(spark, tmp_path_factory) -> Lakehouse:
    if "lakehouse" not in _BUILT:
        _BUILT["lakehouse"] = _build(spark, tmp_path_factory.mktemp("gold_pipeline"))
    return _BUILT["lakehouse"]


def _build(spark, root) -> Lakehouse:
    # Two weeks across a month end, so "this month vs last month" has both; few, large Capture files.
    generate(root / "data", subscriptions=8, days=14, seed=11, start=datetime(2025, 1, 22), partitions=2,
             window_minutes=1440, events_per_subscription_hour=2.0)
    config = load_config().with_overrides(capture_path=str(root / "data" / "capture"),
                                          snapshot_path=str(root / "data" / "snapshots"),
                                          lakehouse_root=str(root / "lakehouse"))
    run_pipeline(spark, config, progress=lambda _: None)
    return config.lakehouse
