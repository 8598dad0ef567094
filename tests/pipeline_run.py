"""One small generated dataset, run once through every stage notebook the way a job runs them.

The full pipeline is the slowest thing a test can do, so the suite does it once (the `pipeline_run`
session fixture in conftest.py) and every end-to-end check reads the result: the notebooks' own
results, the CLI re-run, the dashboards, the SQL views, the column comments. Tests must treat the
lakehouse as read-only (copy it to change it); a re-run that changes nothing is allowed.
"""
from __future__ import annotations

import fcntl
import os
import pickle
import runpy
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[1]
NOTEBOOKS = PROJECT / "notebooks"

# Eight subscriptions over ten weeks in daily Capture windows (~7k events, ~150 files; Spark's Avro reader
# costs ~12 ms per file): two complete months for monthly trends, MRR movements and completed cycles,
# weeks of history for the forecasts and churn features, and every message kind.
DATASET = {"subscriptions": 8, "days": 70, "seed": 7, "window_minutes": 1440, "events_per_subscription_hour": 0.5,
           "partitions": 2}


@dataclass
class PipelineRun:
    data: object  # metering_analytics.generate.GeneratedData
    lakehouse: Path
    checkpoints: Path
    config_file: Path  # conf/pipeline.yml of the run's own copy of conf/
    results: dict[str, dict] = field(default_factory=dict)  # stage -> what its notebook returned

    @property
    def source(self) -> Path:
        return Path(self.data.capture_dir).parent

    @property
    def tables(self):
        from metering_analytics.io.lakehouse import Lakehouse

        return Lakehouse(root=str(self.lakehouse))

    def config(self):
        """The run's configuration (its conf/ copy, sources and lakehouse), for running stages again."""
        from metering_analytics.config import load_config

        return load_config(self.config_file).with_overrides(
            capture_path=str(self.data.capture_dir), snapshot_path=str(self.data.snapshot_dir),
            lakehouse_root=str(self.lakehouse))

    def register(self, spark) -> list[str]:
        """Point `<layer>.<table>` in the session at this lakehouse (another test may have run a pipeline
        into its own lakehouse and registered the same names), views included; call it before querying
        by name."""
        from metering_analytics.gold.views import create_views, view_definitions

        names = self.tables.register_all(spark)
        # Views live in the session catalog: a worker that did not build the run has none yet.
        create_views(spark, self.tables, view_definitions(self.config_file.parent.parent / "sql" / "views"))
        return names


def stage_notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))


def run_notebook(notebook: Path) -> dict:
    return runpy.run_path(str(notebook), run_name="__main__")["result"]


def test_conf(root: Path) -> Path:
    """A project folder with a copy of conf/ whose overage thresholds are all 0 (every product has alerts
    to show), and the project's docs/ and sql/."""
    conf = root / "project" / "conf"
    shutil.copytree(PROJECT / "conf", conf)
    gold = yaml.safe_load((conf / "gold.yml").read_text())
    for dimensions in gold["overage_alerts"]["thresholds"].values():
        for kinds in dimensions.values():
            for kind in kinds:
                kinds[kind] = 0
    (conf / "gold.yml").write_text(yaml.safe_dump(gold))
    # Prophet's fits are the forecasts' slow part; its own tests cover it.
    forecast = yaml.safe_load((conf / "forecast.yml").read_text())
    forecast["candidates"]["headline_series"] = [c for c in forecast["candidates"]["headline_series"] if c != "prophet"]
    (conf / "forecast.yml").write_text(yaml.safe_dump(forecast))
    for shared in ("docs", "sql"):  # column comments and SQL views come from the project's files
        (conf.parent / shared).symlink_to(PROJECT / shared)
    return conf / "pipeline.yml"


def shared_pipeline_run(tmp_path_factory, worker_id: str) -> PipelineRun:
    """The pipeline run, built once per test session even with several xdist workers.

    Workers share the parent of their base temp folders: the first to get the lock builds the run there,
    the others wait for it and read its description.
    """
    if worker_id == "master":  # not under xdist
        return build_pipeline_run(tmp_path_factory.mktemp("pipeline_run"))
    root = tmp_path_factory.getbasetemp().parent / "pipeline_run"
    description = root / "run.pickle"
    with open(f"{root}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if description.is_file():
            return pickle.loads(description.read_bytes())
        if root.exists():  # a worker that failed to build left it half done
            shutil.rmtree(root)
        root.mkdir()
        run = build_pipeline_run(root)
        description.write_bytes(pickle.dumps(run))
        return run


def build_pipeline_run(root: Path) -> PipelineRun:
    from metering_analytics import jobs
    from metering_analytics.generate import generate

    data = generate(root / "data", **DATASET)
    lakehouse = root / "lakehouse"
    # The CLI's default place, so `metering-analytics run` on this lakehouse continues the same streams.
    run = PipelineRun(data, lakehouse, lakehouse / "_checkpoints", test_conf(root))
    environment = {
        jobs.env_name("config"): str(run.config_file),
        jobs.env_name("capture_source_path"): str(data.capture_dir),
        jobs.env_name("snapshot_source_path"): str(data.snapshot_dir),
        jobs.env_name("lakehouse_root"): str(lakehouse),
        jobs.env_name("checkpoint_location"): str(run.checkpoints),
    }
    with pytest.MonkeyPatch.context() as patch:
        for name in jobs.PARAMETERS:
            patch.delenv(jobs.env_name(name), raising=False)
        patch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
        for key, value in environment.items():
            patch.setenv(key, value)
        stages = set(jobs.stage_names())
        for notebook in stage_notebooks():
            result = run_notebook(notebook)
            assert result["stage"] in stages, f"{notebook.name} runs unknown stage {result['stage']}"
            run.results[result["stage"]] = result
    assert os.environ.get(jobs.env_name("lakehouse_root")) != str(lakehouse)  # nothing leaks out
    return run


# Columns that record when a row was written, not what it says.
VOLATILE = {"ingested_at", "quarantined_at", "audited_at", "file_modified_at", "last_ingested_at"}


def comparable(df):
    """`df` without the write-time columns, its maps as sorted JSON (maps cannot be sorted or compared)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import MapType

    df = df.drop(*[c for c in df.columns if c in VOLATILE])
    return df.select([F.to_json(F.array_sort(F.map_entries(f.name))).alias(f.name)
                      if isinstance(f.dataType, MapType) else F.col(f.name) for f in df.schema.fields])


def bookkeeping_tables() -> set[str]:
    """Tables that record what a run processed (Delta versions, when), not what the data says: two runs
    that end with the same data may differ there."""
    from metering_analytics.incremental.state import STATE_TABLE
    from metering_analytics.silver.stage import PROCESSED_RANGES

    return {f"gold.{STATE_TABLE}", f"silver.{PROCESSED_RANGES}"}


def table_contents(spark, lakehouse: Path) -> dict:
    """Every data table of a local lakehouse (not the bookkeeping ones), comparable and pinned (so a
    later write cannot change it)."""
    from metering_analytics.io.lakehouse import Lakehouse

    tables = Lakehouse(root=str(lakehouse))
    names = [n for n in tables.register_all(spark) if n not in bookkeeping_tables()]
    return {name: comparable(spark.table(name)).localCheckpoint() for name in names}
