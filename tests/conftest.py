"""One session-scoped SparkSession for the whole suite (local, Delta + Avro, 2 shuffle partitions)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "accelerator-samples"


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    from metering_analytics.spark import get_spark

    warehouse = tmp_path_factory.mktemp("warehouse")
    session = get_spark("metering-analytics-tests", shuffle_partitions=2, warehouse_dir=warehouse)
    if os.environ.get("METERING_TEST_SPARK_TUNING", "1") == "1":
        # Tests run hundreds of small queries on tiny data: compiling Java code for each plan and
        # re-planning at run time cost more than they save there.
        session.conf.set("spark.sql.codegen.wholeStage", "false")
        session.conf.set("spark.sql.adaptive.enabled", "false")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The accelerator's real sample messages (../shared/accelerator-samples), when present."""
    if not SHARED_SAMPLES.is_dir():
        pytest.skip(f"accelerator samples not found at {SHARED_SAMPLES}")
    return SHARED_SAMPLES


@pytest.fixture(scope="session")
def pipeline_run(spark, tmp_path_factory, worker_id):
    """A small generated dataset run once through every stage notebook (see pipeline_run.py); read-only,
    shared by the xdist workers."""
    from pipeline_run import shared_pipeline_run

    return shared_pipeline_run(tmp_path_factory, worker_id)


@pytest.fixture()
def gold_lakehouse(spark, pipeline_run):
    """The shared pipeline run's lakehouse, its tables (and the views over them) resolvable by name."""
    pipeline_run.register(spark)
    return pipeline_run.tables


def pytest_collection_modifyitems(config, items):
    """Modules that use the shared pipeline run go last: each xdist worker first runs the tests that do
    not need it, so the worker that builds it keeps the other one busy instead of waiting."""
    needs_run = {item.module.__name__ for item in items if "pipeline_run" in item.fixturenames}
    items.sort(key=lambda item: item.module.__name__ in needs_run)  # stable: order kept within each group
