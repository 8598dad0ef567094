"""Run one pipeline stage from a Databricks job: the library call behind every notebook in notebooks/.

A notebook collects its parameters with `notebook_params` (Databricks widgets when `dbutils` is
there, `METERING_*` environment variables otherwise) and hands them to `run_stage`, which builds the
configuration for that run and calls the stage by name from `pipeline.STAGES`. The same pair backs
the `metering-analytics-job` console script (`main`), usable from a `python_wheel_task`.

Parameters (all strings; an empty string means "not set"):

| name | meaning |
|---|---|
| catalog | Unity Catalog catalog (ignored for a folder lakehouse) |
| bronze_schema, silver_schema, gold_schema | the schema of each layer |
| capture_source_path | root of the Event Hubs Capture output (`abfss://...`, `/Volumes/...` or a local folder) |
| snapshot_source_path | the accelerator's `{partitionId}/latest.json.gz` snapshots |
| checkpoint_location | folder for the streaming checkpoints (`<location>/bronze_events`, `<location>/silver`) |
| config | pipeline settings file (default: the project's conf/pipeline.yml) |
| lakehouse_root | a local folder lakehouse; empty on Databricks, where tables live in Unity Catalog |

Unset source paths fall back to conf/pipeline.yml; an unset checkpoint location falls back to
`<lakehouse_root>/_checkpoints` (a Unity Catalog lakehouse has no default and must be given one).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, Mapping

from metering_analytics.config import ConfigError, PipelineConfig, load_config
from metering_analytics.io.lakehouse import LAYERS, Lakehouse

ENV_PREFIX = "METERING_"

# name -> (default, description); the order is the order of the notebook widgets.
PARAMETERS: dict[str, tuple[str, str]] = {
    "catalog": ("", "Unity Catalog catalog"),
    "bronze_schema": ("bronze", "schema of the bronze tables"),
    "silver_schema": ("silver", "schema of the silver tables"),
    "gold_schema": ("gold", "schema of the gold tables"),
    "capture_source_path": ("", "Event Hubs Capture root (abfss://, /Volumes/ or a folder)"),
    "snapshot_source_path": ("", "accelerator state snapshots folder"),
    "checkpoint_location": ("", "streaming checkpoints folder"),
    "config": ("", "pipeline settings file (default conf/pipeline.yml)"),
    "lakehouse_root": ("", "local folder lakehouse (empty on Databricks)"),
}

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/")


def env_name(parameter: str) -> str:
    return ENV_PREFIX + parameter.upper()


def notebook_params(dbutils: Any = None, defaults: Mapping[str, str] | None = None) -> dict[str, str]:
    """The stage parameters of a notebook run.

    With `dbutils` (a Databricks notebook passes `globals().get("dbutils")`): one text widget per
    parameter, so a job's `base_parameters` fill them and an analyst sees them at the top of the
    notebook. Without it (a local run): the `METERING_<NAME>` environment variables. Both fall back
    to `defaults`, then to the defaults in `PARAMETERS`.
    """
    values = {name: default for name, (default, _) in PARAMETERS.items()}
    values.update(defaults or {})
    params = {}
    for name, (_, label) in PARAMETERS.items():
        if dbutils is not None:
            dbutils.widgets.text(name, values[name], label)
            params[name] = dbutils.widgets.get(name)
        else:
            params[name] = os.environ.get(env_name(name), values[name])
    return params


@dataclasses.dataclass(frozen=True)
class JobLakehouse(Lakehouse):
    """A lakehouse whose streaming checkpoints live under an explicit location.

    Unity Catalog tables have no folder to put checkpoints in, so a job names one (a Volume or a
    cloud path). The stages ask `lakehouse.checkpoint(name)` as usual and get `<location>/<name>`.
    """

    checkpoint_root: str | None = None

    def checkpoint(self, name: str) -> str:
        if self.checkpoint_root:
            return f"{self.checkpoint_root.rstrip('/')}/{name}"
        return super().checkpoint(name)


def _location(value: str) -> str:
    """A URI (abfss://, dbfs:/, s3://) as given; a local path made absolute."""
    return value if _URI.match(value) else str(Path(value).expanduser().resolve())


def _workspace_file(value: str) -> str:
    """Workspace files are read through /Workspace on a cluster (older CLIs give `/Users/...` paths)."""
    from metering_analytics.spark import on_databricks

    if on_databricks() and value.startswith(("/Users/", "/Shared/", "/Repos/")):
        return "/Workspace" + value
    return value


def _param(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    return "" if value is None else str(value).strip()


def job_config(params: Mapping[str, str]) -> PipelineConfig:
    """conf/pipeline.yml (or `config`) with the run's catalog, schemas, sources and checkpoints."""
    from metering_analytics.spark import on_databricks

    unknown = set(params) - set(PARAMETERS)
    if unknown:
        raise ConfigError(f"unknown job parameters {sorted(unknown)}; expected {list(PARAMETERS)}")
    config_file = _param(params, "config")
    config = load_config(_workspace_file(config_file) if config_file else None)

    source = config.source
    capture, snapshots = _param(params, "capture_source_path"), _param(params, "snapshot_source_path")
    source = dataclasses.replace(
        source,
        capture_path=_location(capture) if capture else source.capture_path,
        snapshot_path=_location(snapshots) if snapshots else source.snapshot_path,
    )

    root = _param(params, "lakehouse_root")
    if root:
        root = _location(root)
    elif not on_databricks():
        root = config.lakehouse.root
    checkpoint = _param(params, "checkpoint_location")
    if not root and not checkpoint:
        raise ConfigError("checkpoint_location is required for a Unity Catalog lakehouse")
    schemas = {layer: _param(params, f"{layer}_schema") or config.lakehouse.schema(layer) for layer in LAYERS}
    lakehouse = JobLakehouse(
        root=root or None,
        # A folder lakehouse registers `<schema>.<table>` in the session catalog: no catalog part.
        catalog=None if root else (_param(params, "catalog") or config.lakehouse.catalog),
        schemas=schemas,
        checkpoint_root=_location(checkpoint) if checkpoint else None,
    )
    return dataclasses.replace(config, source=source, lakehouse=lakehouse)


def stage_names() -> list[str]:
    from metering_analytics.pipeline import STAGES

    return [name for name, _ in STAGES]


def run_stage(stage: str, params: Mapping[str, str], spark=None) -> dict:
    """Run one stage of the pipeline (see `pipeline.STAGES`) with the given job parameters.

    Returns `{"stage", "seconds", "details"}`, where details are what the stage reports (rows read,
    batches, table sizes); JSON-serialisable, so a notebook or a wheel task can print it.
    """
    from metering_analytics.pipeline import STAGES, load_run_context
    from metering_analytics.spark import get_spark

    stages = dict(STAGES)
    if stage not in stages:
        raise ConfigError(f"unknown stage {stage!r}; the pipeline has {list(stages)}")
    config = job_config(params)
    if spark is None:
        root = config.lakehouse.root
        spark = get_spark(warehouse_dir=Path(root) / "_warehouse") if root else get_spark()
    ctx = load_run_context(spark, config)  # validates settings and prices before any table changes
    started = time.perf_counter()
    details = stages[stage](ctx)
    return {
        "stage": stage,
        "seconds": round(time.perf_counter() - started, 1),
        "details": json.loads(json.dumps(details, default=str)),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="metering-analytics-job",
        description="Run one pipeline stage as a job task (Databricks python_wheel_task or locally).",
    )
    parser.add_argument("--stage", required=True, help="a stage of the pipeline: bronze, silver, ...")
    for name, (default, help_text) in PARAMETERS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, default=None,
                            help=f"{help_text} (env {env_name(name)}; default {default!r})")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    params = notebook_params()  # environment variables and defaults ...
    params.update({name: value for name, value in vars(args).items()
                   if name in PARAMETERS and value is not None})  # ... overridden by the arguments
    try:
        result = run_stage(args.stage, params)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
