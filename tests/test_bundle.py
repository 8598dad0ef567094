"""The Databricks Asset Bundle (databricks.yml, resources/, notebooks/) and the job entry points.

The bundle checks need no Spark and no workspace: the YAML is loaded, its `${...}` references are
checked against what is declared, and every job is parsed into the Databricks SDK's JobSettings.
One end-to-end test runs every stage notebook locally, as a job would, on a small generated dataset.
"""
from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from databricks.sdk.service import catalog, jobs as sdk_jobs

from metering_analytics import jobs

PROJECT = Path(__file__).resolve().parents[1]
BUNDLE_FILE = PROJECT / "databricks.yml"
NOTEBOOKS = PROJECT / "notebooks"
REFERENCE = re.compile(r"\$\{([^}]*)\}")
# Substitutions the Databricks CLI provides that this bundle uses (besides var.* and resources.*).
BUILT_IN = {"bundle.name", "bundle.target", "workspace.current_user.short_name",
            "workspace.current_user.userName", "workspace.file_path", "workspace.root_path"}
# Job keys that belong to the bundle, not to the Jobs API.
BUNDLE_ONLY_JOB_KEYS = {"permissions"}
# Which job runs which stage notebooks, in this order.
INGESTION_STAGES = ["bronze", "silver", "snapshots", "billing", "gold"]
MODEL_STAGES = ["forecasts", "churn", "recommendations"]


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


@pytest.fixture(scope="module")
def bundle() -> dict:
    return _load(BUNDLE_FILE)


@pytest.fixture(scope="module")
def resource_files(bundle) -> dict[Path, dict]:
    files = {}
    for pattern in bundle["include"]:
        for path in sorted(PROJECT.glob(pattern)):
            files[path] = _load(path)
    return files


@pytest.fixture(scope="module")
def job_resources(resource_files) -> list[tuple[Path, str, dict]]:
    return [(path, key, job) for path, content in resource_files.items()
            for key, job in (content.get("resources", {}).get("jobs") or {}).items()]


def _declared_resources(resource_files) -> set[tuple[str, str]]:
    return {(kind, key) for content in resource_files.values()
            for kind, items in (content.get("resources") or {}).items() for key in items}


def _variable_values(bundle: dict, target: str) -> dict[str, Any]:
    values = {name: spec.get("default") for name, spec in bundle["variables"].items()}
    values.update((bundle["targets"][target] or {}).get("variables") or {})
    return values


def _resolve(node: Any, values: dict[str, Any]) -> Any:
    """Replace `${var.x}` by the target's value (a whole-value complex variable stays a list) and every
    other reference by a placeholder, as `databricks bundle validate` would with real values."""
    if isinstance(node, dict):
        return {k: _resolve(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, values) for v in node]
    if not isinstance(node, str):
        return node

    def lookup(ref: str) -> Any:
        if ref.startswith("var."):
            return _resolve(values[ref[4:]], values)
        return "dummy_" + re.sub(r"\W", "_", ref)

    whole = REFERENCE.fullmatch(node)
    if whole:
        return lookup(whole.group(1))
    return REFERENCE.sub(lambda m: str(lookup(m.group(1))), node)


def _without_empty(node: Any) -> Any:
    """The SDK leaves out empty lists and mappings (an unset complex variable): so does the comparison."""
    if isinstance(node, dict):
        pruned = {k: _without_empty(v) for k, v in node.items()}
        return {k: v for k, v in pruned.items() if v not in ([], {})}
    if isinstance(node, list):
        return [_without_empty(v) for v in node]
    return node


def _tasks_in_order(job: dict) -> list[dict]:
    """The tasks in dependency order; fails on a missing dependency or a cycle."""
    tasks = {t["task_key"]: t for t in job["tasks"]}
    assert len(tasks) == len(job["tasks"]), "duplicate task_key"
    ordered, done = [], set()
    while len(ordered) < len(tasks):
        ready = [k for k, t in tasks.items() if k not in done
                 and all(d["task_key"] in done for d in t.get("depends_on", []))]
        for task in tasks.values():
            for dep in task.get("depends_on", []):
                assert dep["task_key"] in tasks, f"{task['task_key']} depends on unknown {dep['task_key']}"
        assert ready, f"dependency cycle among {sorted(set(tasks) - done)}"
        for key in sorted(ready):
            ordered.append(tasks[key])
            done.add(key)
    return ordered


def _notebook_stage(path: Path) -> str:
    """The stage a notebook runs: the literal first argument of its `jobs.run_stage(...)` call."""
    calls = [node for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and node.func.attr == "run_stage"]
    assert len(calls) == 1, f"{path.name}: expected exactly one jobs.run_stage(...) call"
    return ast.literal_eval(calls[0].args[0])


def _known_stages() -> set[str]:
    return set(jobs.stage_names())


# -- the bundle files ---------------------------------------------------------------------------

def test_bundle_and_resources_are_yaml_with_the_expected_top_level(bundle, resource_files):
    assert bundle["bundle"]["name"] == "metering-analytics"
    assert bundle["include"] == ["resources/*.yml"]
    assert {"ingestion.job.yml", "models.job.yml", "schemas.yml", "dashboards.yml"} <= {p.name for p in resource_files}
    for path, content in resource_files.items():
        assert isinstance(content, dict) and set(content) == {"resources"}, path.name
    artifact = bundle["artifacts"]["python_artifact"]
    assert artifact["type"] == "whl" and "dist" in artifact["build"]
    for name in ("catalog", "bronze_schema", "silver_schema", "gold_schema", "capture_source_path",
                 "snapshot_source_path", "checkpoint_location", "warehouse_id", "notification_emails",
                 "service_principal_name", "sales_group", "operations_group", "customer_success_group"):
        assert name in bundle["variables"], name
    assert bundle["variables"]["notification_emails"]["type"] == "complex"


def test_every_reference_is_declared(bundle, resource_files):
    declared_vars = set(bundle["variables"])
    declared_resources = _declared_resources(resource_files)
    for path, content in [(BUNDLE_FILE, bundle), *resource_files.items()]:
        for text in _strings(content):
            for ref in REFERENCE.findall(text):
                parts = ref.split(".")
                if parts[0] == "var":
                    assert len(parts) == 2 and parts[1] in declared_vars, f"{path.name}: undeclared ${{{ref}}}"
                elif parts[0] == "resources":
                    assert (parts[1], parts[2]) in declared_resources, f"{path.name}: unknown ${{{ref}}}"
                else:
                    assert ref in BUILT_IN, f"{path.name}: unexpected substitution ${{{ref}}}"


def test_every_variable_has_a_value_in_every_target(bundle):
    for target in bundle["targets"]:
        values = _variable_values(bundle, target)
        missing = [name for name, value in values.items() if value is None]
        assert not missing, f"target {target}: no value for {missing}"


def test_targets_dev_and_prod(bundle):
    dev, prod = bundle["targets"]["dev"], bundle["targets"]["prod"]
    assert dev["mode"] == "development" and dev["default"] is True
    assert "workspace.current_user.short_name" in dev["variables"]["checkpoint_location"]
    assert prod["mode"] == "production"
    assert prod["run_as"] == {"service_principal_name": "${var.service_principal_name}"}
    assert prod["workspace"]["root_path"].startswith("/Workspace/")
    levels = {(p.get("group_name") or p.get("service_principal_name")): p["level"] for p in prod["permissions"]}
    assert levels["${var.service_principal_name}"] == "CAN_MANAGE"
    assert levels["${var.operations_group}"] == "CAN_RUN"


# -- jobs -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["dev", "prod"])
def test_jobs_parse_into_sdk_job_settings(bundle, job_resources, target):
    """Round-tripping through JobSettings drops any key the Jobs API does not know."""
    assert job_resources
    values = _variable_values(bundle, target)
    for path, key, job in job_resources:
        api_job = _without_empty({k: v for k, v in _resolve(job, values).items() if k not in BUNDLE_ONLY_JOB_KEYS})
        assert sdk_jobs.JobSettings.from_dict(api_job).as_dict() == api_job, f"{path.name}: {key}"
        assert REFERENCE.search(repr(api_job)) is None


def _check_job_cluster_and_tasks(path: Path, job: dict, bundle: dict) -> list[dict]:
    ordered = _tasks_in_order(job)
    assert job["schedule"]["quartz_cron_expression"] and "pause_status" not in job["schedule"]
    assert job["max_concurrent_runs"] == 1
    assert job["email_notifications"]["on_failure"] == "${var.notification_emails}"
    (cluster,) = job["job_clusters"]
    assert cluster["new_cluster"]["spark_version"] == "${var.spark_version}"
    assert bundle["variables"]["spark_version"]["default"].startswith("18.")
    assert cluster["new_cluster"]["spark_conf"]["spark.sql.session.timeZone"] == "UTC"
    for task in ordered:
        assert task["job_cluster_key"] == cluster["job_cluster_key"]
        assert task["notebook_task"]["base_parameters"]["checkpoint_location"] == "${var.checkpoint_location}"
        assert set(task["notebook_task"]["base_parameters"]) <= set(jobs.PARAMETERS)
        assert task["max_retries"] >= 1 and task["timeout_seconds"] > 0
        assert [lib["whl"] for lib in task["libraries"]] == ["../dist/*.whl"]
        assert _notebook_stage((path.parent / task["notebook_task"]["notebook_path"]).resolve()) == task["task_key"]
    return ordered


def test_ingestion_job_runs_every_stage_notebook_in_pipeline_order(job_resources, bundle):
    (path, _, job), = [(p, k, j) for p, k, j in job_resources if k == "ingestion"]
    ordered = _check_job_cluster_and_tasks(path, job, bundle)
    assert [t["task_key"] for t in ordered] == INGESTION_STAGES


def test_models_job_runs_forecasts_then_churn_and_recommendations_daily(job_resources, bundle):
    (path, _, job), = [(p, k, j) for p, k, j in job_resources if k == "models"]
    ordered = _check_job_cluster_and_tasks(path, job, bundle)
    assert [t["task_key"] for t in ordered] == MODEL_STAGES
    deps = {t["task_key"]: {d["task_key"] for d in t.get("depends_on", [])} for t in ordered}
    assert deps == {"forecasts": set(), "churn": {"forecasts"}, "recommendations": {"forecasts"}}
    # Daily: seconds, minutes and hours fixed, every day of the month.
    seconds, minutes, hours, day_of_month, *_ = job["schedule"]["quartz_cron_expression"].split()
    assert seconds.isdigit() and minutes.isdigit() and hours.isdigit() and day_of_month == "*"


def test_every_stage_is_run_by_exactly_one_job(job_resources):
    stages = [t["task_key"] for _, _, job in job_resources for t in job["tasks"]]
    assert sorted(stages) == sorted(INGESTION_STAGES + MODEL_STAGES)


def test_the_jobs_split_the_pipeline_stages_as_the_library_does():
    from metering_analytics import pipeline

    assert [name for name, _ in pipeline.INGESTION_STAGES] == INGESTION_STAGES
    assert [name for name, _ in pipeline.MODEL_STAGES] == MODEL_STAGES
    assert jobs.stage_names() == INGESTION_STAGES + MODEL_STAGES


def test_tasks_point_at_existing_notebooks_wheels_and_entry_points(bundle, job_resources):
    scripts = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]["scripts"]
    wheel_dir = re.search(r"(?:-w|--wheel-dir)\s+(\S+)", bundle["artifacts"]["python_artifact"]["build"]).group(1)
    for path, key, job in job_resources:
        for task in job["tasks"]:
            where = f"{path.name}: {key}.{task['task_key']}"
            if "notebook_task" in task:
                notebook = (path.parent / task["notebook_task"]["notebook_path"]).resolve()
                assert notebook.is_file(), f"{where}: no notebook {notebook}"
                assert notebook.read_text().startswith("# Databricks notebook source\n"), where
            if "python_wheel_task" in task:
                assert task["python_wheel_task"]["entry_point"] in scripts, where
            for library in task.get("libraries", []):
                if "whl" in library:
                    whl = (path.parent / library["whl"]).resolve()
                    assert whl.parent == (PROJECT / wheel_dir).resolve(), f"{where}: {library['whl']}"


def test_every_notebook_is_a_thin_source_notebook_for_a_stage():
    # Stage notebooks only at the top level; analyst notebooks live in notebooks/analysis/.
    notebooks = sorted(NOTEBOOKS.glob("*.py"))
    assert [p.name for p in notebooks] == ["01_bronze.py", "02_silver.py", "03_snapshots.py",
                                           "04_billing.py", "05_gold.py", "06_forecasts.py",
                                           "07_churn.py", "08_recommendations.py"]
    assert [_notebook_stage(p) for p in notebooks] == INGESTION_STAGES + MODEL_STAGES
    for path in notebooks:
        text = path.read_text(encoding="utf-8")
        assert text.startswith("# Databricks notebook source\n") and "\n# COMMAND ----------\n" in text
        assert "jobs.notebook_params(globals().get(\"dbutils\"))" in text
        assert _notebook_stage(path) in _known_stages(), path.name


def test_job_entry_point_is_registered():
    scripts = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["metering-analytics-job"] == "metering_analytics.jobs:main"
    assert callable(jobs.main)


# -- schemas and grants ----------------------------------------------------------------------------

def test_schemas_and_persona_grants(resource_files):
    schemas = {key: schema for content in resource_files.values()
               for key, schema in (content["resources"].get("schemas") or {}).items()}
    assert set(schemas) == {"bronze", "silver", "gold"}
    privileges = {p.value for p in catalog.Privilege}
    readers = {}
    for key, schema in schemas.items():
        assert schema["name"] == f"${{var.{key}_schema}}" and schema["catalog_name"] == "${var.catalog}"
        assert set(schema) <= {"name", "catalog_name", "comment", "properties", "storage_root", "grants"}
        for grant in schema["grants"]:
            assert set(grant["privileges"]) <= privileges
            assert {"USE_SCHEMA", "SELECT"} <= set(grant["privileges"])
        readers[key] = {g["principal"] for g in schema["grants"]}
    ops, sales, cs = "${var.operations_group}", "${var.sales_group}", "${var.customer_success_group}"
    assert readers == {"bronze": {ops}, "silver": {ops}, "gold": {ops, sales, cs}}


# -- jobs.py: parameters --------------------------------------------------------------------------

class _FakeWidgets:
    def __init__(self, values):
        self.values, self.created = dict(values), {}

    def text(self, name, default, label=None):
        self.created[name] = default
        self.values.setdefault(name, default)

    def get(self, name):
        return self.values[name]


def test_notebook_params_from_widgets_or_environment(monkeypatch):
    for name in jobs.PARAMETERS:
        monkeypatch.delenv(jobs.env_name(name), raising=False)
    dbutils = type("DbUtils", (), {"widgets": _FakeWidgets({"catalog": "prod_catalog"})})()
    monkeypatch.setenv("METERING_CATALOG", "ignored when there are widgets")
    params = jobs.notebook_params(dbutils)
    assert set(dbutils.widgets.created) == set(jobs.PARAMETERS)
    assert params["catalog"] == "prod_catalog" and params["gold_schema"] == "gold"

    monkeypatch.setenv("METERING_CAPTURE_SOURCE_PATH", "/data/capture")
    params = jobs.notebook_params(None, defaults={"silver_schema": "s"})
    assert params["catalog"] == "ignored when there are widgets"
    assert params["capture_source_path"] == "/data/capture" and params["silver_schema"] == "s"


def test_job_config_for_unity_catalog_and_for_a_local_folder(monkeypatch, tmp_path):
    params = {"catalog": "cat", "bronze_schema": "dev_me_bronze", "silver_schema": "", "gold_schema": "g",
              "capture_source_path": "abfss://capture@acct.dfs.core.windows.net/ns/hub",
              "checkpoint_location": "/Volumes/cat/landing/checkpoints/prod"}
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "18.0")
    config = jobs.job_config(params)
    lakehouse = config.lakehouse
    assert lakehouse.root is None and lakehouse.table_name("bronze", "events") == "cat.dev_me_bronze.events"
    assert lakehouse.table_name("silver", "usage_events") == "cat.silver.usage_events"
    assert lakehouse.checkpoint("bronze_events") == "/Volumes/cat/landing/checkpoints/prod/bronze_events"
    assert config.source.capture_path == params["capture_source_path"]
    with pytest.raises(jobs.ConfigError, match="checkpoint_location"):
        jobs.job_config({**params, "checkpoint_location": ""})
    with pytest.raises(jobs.ConfigError, match="unknown job parameters"):
        jobs.job_config({**params, "schema": "x"})

    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION")
    local = jobs.job_config({**params, "lakehouse_root": str(tmp_path), "checkpoint_location": ""})
    assert local.lakehouse.root == str(tmp_path) and local.lakehouse.catalog is None
    assert local.lakehouse.checkpoint("silver") == str(tmp_path / "_checkpoints" / "silver")


def test_main_passes_arguments_over_environment(monkeypatch, capsys):
    seen = {}

    def fake_run_stage(stage, params, spark=None):
        seen.update(stage=stage, params=params)
        return {"stage": stage, "seconds": 0.0, "details": {}}

    monkeypatch.setattr(jobs, "run_stage", fake_run_stage)
    monkeypatch.setenv("METERING_CATALOG", "from_env")
    monkeypatch.setenv("METERING_GOLD_SCHEMA", "gold_env")
    assert jobs.main(["--stage", "billing", "--catalog", "from_args"]) == 0
    assert seen["stage"] == "billing"
    assert seen["params"]["catalog"] == "from_args" and seen["params"]["gold_schema"] == "gold_env"
    assert '"stage": "billing"' in capsys.readouterr().out
    monkeypatch.undo()
    assert jobs.main(["--stage", "no_such_stage"]) == 2


# -- end to end -----------------------------------------------------------------------------------

def test_stage_notebooks_run_locally(spark, pipeline_run):
    """Every stage notebook, run as a file the way a job runs it, with parameters from the environment
    (the shared `pipeline_run` fixture runs them; see tests/pipeline_run.py)."""
    from pipeline_run import run_notebook, stage_notebooks
    from metering_analytics.io.lakehouse import Lakehouse

    data, results = pipeline_run.data, pipeline_run.results
    assert sorted(results) == sorted(jobs.stage_names())
    assert {_notebook_stage(n) for n in stage_notebooks()} == set(results)
    assert results["bronze"]["details"]["records"] == data.events_total
    assert results["silver"]["details"]["records"] == data.events_total
    assert results["snapshots"]["details"]["snapshots"] == len(data.snapshot_files)
    assert results["billing"]["details"]["gold.included_balance"] > 0

    # The checkpoints are where the job said; a second run finds nothing new.
    checkpoints = pipeline_run.checkpoints
    assert (checkpoints / "bronze_events").is_dir() and (checkpoints / "silver").is_dir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(jobs.env_name("capture_source_path"), str(data.capture_dir))
        patch.setenv(jobs.env_name("lakehouse_root"), str(pipeline_run.lakehouse))
        patch.setenv(jobs.env_name("checkpoint_location"), str(checkpoints))
        assert run_notebook(NOTEBOOKS / "01_bronze.py")["details"]["records"] == 0
    tables = Lakehouse(root=str(pipeline_run.lakehouse))
    assert tables.read(spark, "bronze", "events").count() == data.events_total
