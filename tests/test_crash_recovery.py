"""A run killed (SIGKILL, driver and JVM) inside its bronze, silver and gold writes, then run again,
ends with the same tables as the uninterrupted run of the same input (the shared `pipeline_run`).

Each run is `metering-analytics run --stages ingestion` in its own process group. A kill is placed by
watching the run: after its `[<stage>] running ...` line, it waits for the k-th new Delta commit of
that stage's tables (k drawn at random below the number of commits the stage makes) and a random
fraction of a second more, then kills the whole group. The seed is printed; METERING_CRASH_SEED
replays a failure.
"""
from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from chispa import assert_approx_df_equality

from metering_analytics.billing.resume import CYCLE_USAGE
from metering_analytics.billing.stage import GOLD_BILLING_SCHEMAS
from metering_analytics.gold.stage import GOLD_PERSONA_SCHEMAS, PROPERTY_TOTALS
from metering_analytics.silver.stage import SILVER_TABLES
from pipeline_run import PROJECT, table_contents

pytestmark = [pytest.mark.slow, pytest.mark.reliability]  # make test-reliability

RUN_TIMEOUT = 900  # seconds for one run; a hang is a failure, not a wait
WAIT_FOR_EXIT = 30


@dataclass(frozen=True)
class KillPoint:
    stage: str
    tables: tuple[Path, ...]  # the Delta tables whose commits place the kill
    commits: range  # k: kill after the k-th new commit of those tables...
    max_delay: float  # ...plus up to this many seconds


@dataclass
class Outcome:
    stage: str
    commit: int
    delay: float
    landed_in: str  # the stage the run was in when killed
    output: str


def commit_files(tables: tuple[Path, ...]) -> set[Path]:
    # Only finished commits: Delta writes `<version>.json` by renaming a temporary file.
    return {p for t in tables for p in (t / "_delta_log").glob("[0-9]*.json")}


def count_commits(tables: tuple[Path, ...]) -> int:
    return len(commit_files(tables))


class Run:
    """One CLI run in its own session (process group), its output read line by line."""

    def __init__(self, args: list[str], cwd: Path):
        environment = {**os.environ, "PYTHONPATH": str(PROJECT / "src"), "PYTHONUNBUFFERED": "1",
                       "METERING_DRIVER_MEMORY": "2g"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "metering_analytics.cli", *args], cwd=cwd, env=environment,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True)
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def poll_lines(self) -> None:
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                return
            if line is not None:
                self.lines.append(line)

    @property
    def output(self) -> str:
        self.poll_lines()
        return "".join(self.lines)

    def current_stage(self) -> str | None:
        started = [line.split("]")[0].lstrip("[") for line in self.lines if line.endswith("] running ...\n")]
        return started[-1] if started else None

    def wait_for_line(self, text: str, deadline: float) -> None:
        while text not in self.output:
            if self.process.poll() is not None and self._queue.empty():
                time.sleep(0.2)  # let the reader thread hand over the last lines
                if text in self.output:
                    return
                raise AssertionError(f"run ended (exit {self.process.returncode}) before {text!r}:\n{self.output}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} within {RUN_TIMEOUT}s:\n{self.output}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the whole group (the Python driver, the Spark JVM, Python workers) and wait until it is gone."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=WAIT_FOR_EXIT)
        deadline = time.monotonic() + WAIT_FOR_EXIT
        while True:
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                return
            assert time.monotonic() < deadline, "processes of the killed run are still alive"
            time.sleep(0.1)

    def finish(self) -> int:
        try:
            return self.process.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise


def run_and_kill(args: list[str], cwd: Path, point: KillPoint, rng: random.Random) -> Outcome:
    commit, delay = rng.choice(point.commits), rng.uniform(0, point.max_delay)
    run = Run(args, cwd)
    deadline = time.monotonic() + RUN_TIMEOUT
    try:
        run.wait_for_line(f"[{point.stage}] running ...", deadline)
        before = commit_files(point.tables)
        while len(commit_files(point.tables) - before) < commit:
            assert run.process.poll() is None, f"run ended before the kill point:\n{run.output}"
            assert time.monotonic() < deadline, f"no commit {commit} in {point.stage}:\n{run.output}"
            time.sleep(0.02)
        time.sleep(delay)
        landed_in = run.current_stage() if f"[{point.stage}] done" not in run.output else "after " + point.stage
    finally:
        if run.process.poll() is None:
            run.kill()
    return Outcome(point.stage, commit, delay, landed_in, run.output)


def kill_and_recover(pipeline_run, root: Path, seed: int) -> tuple[Path, list[Outcome]]:
    """Run the pipeline_run's input into `root`/lakehouse, killed once in each stage, then to the end."""
    rng = random.Random(seed)
    lakehouse = root / "lakehouse"
    # The reference's own input and settings: the Capture paths it records (source_file) are the same,
    # and the pipeline only reads them.
    args = ["run", "--source", str(pipeline_run.source), "--lakehouse", str(lakehouse),
            "--config", str(pipeline_run.config_file), "--stages", "ingestion"]
    reference = pipeline_run.lakehouse
    bronze = tuple(lakehouse / "bronze" / t for t in ("events", "capture_files"))
    silver = tuple(lakehouse / "silver" / t for t in SILVER_TABLES)
    gold = tuple(lakehouse / "gold" / t for t in GOLD_PERSONA_SCHEMAS)
    # The uninterrupted run's commits bound k: the kill comes before the stage's last commit. The first
    # two bronze commits and the first len(silver) silver commits only create empty tables.
    bronze_commits = count_commits(tuple(reference / "bronze" / t.name for t in bronze))
    silver_commits = count_commits(tuple(reference / "silver" / t.name for t in silver))
    points = [
        KillPoint("bronze", bronze, range(len(bronze), bronze_commits - 1), 0.5),
        KillPoint("silver", silver, range(len(silver) + 1, silver_commits), 0.3),
        KillPoint("gold", gold, range(1, len(gold)), 0.3),
    ]
    outcomes = []
    for point in points:
        outcome = run_and_kill(args, root, point, rng)
        print(f"killed in {outcome.landed_in} (aimed: {point.stage}) after its commit {outcome.commit} "
              f"+ {outcome.delay:.2f}s")
        outcomes.append(outcome)
    started = time.monotonic()
    final = Run(args, root)
    code = final.finish()
    assert code == 0, f"the run after the kills failed (exit {code}):\n{final.output}"
    print(f"final run: {time.monotonic() - started:.0f}s")
    return lakehouse, outcomes


@pytest.fixture(scope="module")
def crashed_lakehouse(pipeline_run, tmp_path_factory):
    seed = int(os.environ.get("METERING_CRASH_SEED", random.SystemRandom().randrange(2**31)))
    print(f"\ncrash recovery seed: {seed} (METERING_CRASH_SEED={seed} replays these kill points)")
    return kill_and_recover(pipeline_run, tmp_path_factory.mktemp("crash"), seed)


def test_each_kill_lands_in_its_stage(crashed_lakehouse):
    _, outcomes = crashed_lakehouse
    assert [o.landed_in for o in outcomes] == [o.stage for o in outcomes], "\n\n".join(o.output for o in outcomes)


def test_killed_and_rerun_tables_equal_an_uninterrupted_run(spark, pipeline_run, crashed_lakehouse):
    lakehouse, _ = crashed_lakehouse
    reference = table_contents(spark, pipeline_run.lakehouse)
    recovered = table_contents(spark, lakehouse)
    pipeline_run.register(spark)  # the shared names point at the shared run again
    ingestion_gold = {f"gold.{t}" for t in (*GOLD_BILLING_SCHEMAS, CYCLE_USAGE, *GOLD_PERSONA_SCHEMAS, PROPERTY_TOTALS)}
    expected = {n for n in reference if not n.startswith("gold.")} | ingestion_gold
    assert set(recovered) == expected
    for name in sorted(expected):
        # Sums of doubles may differ in the last bits: the runs shuffle into different partition counts.
        assert_approx_df_equality(reference[name], recovered[name], 1e-9, ignore_row_order=True,
                                  ignore_nullable=True)
