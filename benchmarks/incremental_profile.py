"""Where the seconds of an incremental billing + gold run go: every Spark action, by its call site.

    .venv/bin/python benchmarks/incremental_profile.py --events 100000 --subscriptions 50 --days 60

Builds the same silver and bronze as incremental_scale.py, runs a full billing + gold rebuild, appends ~1%
more usage events and profiles the incremental run: the wall time and Spark job count of each action
(collect / first / count / isEmpty / localCheckpoint, Delta MERGE / DELETE / history / detail, writes,
SQL statements), summed by the project line that called it. Nested actions count once, at the outermost.
"""
from __future__ import annotations

import argparse
import functools
import os
import shutil
import sys
import time
import traceback
from collections import defaultdict
from pathlib import Path

from incremental_scale import add_the_increment, bench_arguments, built_lakehouse

_stats: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0])
_depth = [0]


def _call_site() -> str:
    for frame in reversed(traceback.extract_stack()[:-3]):
        if "metering_analytics" in frame.filename and "/io/lakehouse.py" not in frame.filename:
            return f"{Path(frame.filename).parent.name}/{Path(frame.filename).name}:{frame.lineno} {frame.name}"
    return "other"


def _wrap(owner, name: str, spark_context) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def timed(*args, **kwargs):
        if _depth[0]:
            return original(*args, **kwargs)
        _depth[0] += 1
        jobs_before = _last_job(spark_context)
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            _depth[0] -= 1
            entry = _stats[f"{_call_site()} [{owner.__name__}.{name}]"]
            entry[0] += 1
            entry[1] += time.perf_counter() - started
            entry[2] += _last_job(spark_context) - jobs_before
    setattr(owner, name, timed)


def _last_job(sc) -> int:
    ids = sc.statusTracker().getJobIdsForGroup(None)
    return max(ids) if ids else 0


def instrument(spark) -> None:
    from delta.tables import DeltaMergeBuilder, DeltaTable
    from pyspark.sql import DataFrameWriter, SparkSession
    from pyspark.sql.classic.dataframe import DataFrame  # the class local sessions instantiate

    sc = spark.sparkContext
    for name in ("collect", "first", "count", "isEmpty", "localCheckpoint", "take", "head", "toPandas"):
        _wrap(DataFrame, name, sc)
    for name in ("save", "saveAsTable"):
        _wrap(DataFrameWriter, name, sc)
    _wrap(DeltaMergeBuilder, "execute", sc)
    for name in ("delete", "history", "detail", "isDeltaTable", "forPath"):
        _wrap(DeltaTable, name, sc)
    _wrap(SparkSession, "sql", sc)


def report(total: float) -> None:
    rows = sorted(_stats.items(), key=lambda kv: -kv[1][1])
    accounted = sum(v[1] for v in _stats.values())
    print(f"\ntotal {total:.1f} s, in actions {accounted:.1f} s, "
          f"{sum(v[0] for v in _stats.values())} calls, {sum(v[2] for v in _stats.values())} Spark jobs")
    print(f"{'s':>7} {'calls':>5} {'jobs':>5}  call site")
    for site, (calls, seconds, jobs) in rows:
        print(f"{seconds:7.2f} {calls:5d} {jobs:5d}  {site}")
    _stats.clear()


def main() -> int:
    args = bench_arguments(__doc__, subscriptions=50, days=60, events=100_000)
    from metering_analytics.billing.stage import run_billing
    from metering_analytics.gold.stage import run_gold

    spark, lakehouse, prices, settings, lakehouse_dir, _, as_of = built_lakehouse(args, "incremental_profile")
    started = time.perf_counter()
    run_billing(spark, lakehouse, prices, as_of=as_of, full_rebuild=True)
    run_gold(spark, lakehouse, settings, as_of, prices, full_rebuild=True)
    print(f"full billing + gold {time.perf_counter() - started:.1f} s, load {os.getloadavg()}")

    clock, _ = add_the_increment(spark, lakehouse, args, as_of)
    instrument(spark)
    for stage, run in (("billing", lambda: run_billing(spark, lakehouse, prices, as_of=clock)),
                       ("gold", lambda: run_gold(spark, lakehouse, settings, clock, prices))):
        started = time.perf_counter()
        run()
        print(f"\n== incremental {stage}, load {os.getloadavg()}")
        report(time.perf_counter() - started)
    shutil.rmtree(lakehouse_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
