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
from datetime import timedelta
from pathlib import Path

from incremental_scale import ROOT, append_usage, build, usage_rows

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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscriptions", type=int, default=50)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--added-percent", type=float, default=1.0)
    parser.add_argument("--workdir", default=str(ROOT / "benchmarks" / "data"))
    args = parser.parse_args()

    from metering_analytics.billing.prices import load_price_catalog
    from metering_analytics.billing.stage import run_billing
    from metering_analytics.config import load_config
    from metering_analytics.gold.settings import load_gold_settings
    from metering_analytics.gold.stage import run_gold
    from metering_analytics.spark import get_spark

    lakehouse_dir = Path(args.workdir) / "incremental_profile"
    shutil.rmtree(lakehouse_dir, ignore_errors=True)
    config = load_config().with_overrides(lakehouse_root=str(lakehouse_dir))
    lakehouse = config.lakehouse
    spark = get_spark(warehouse_dir=lakehouse_dir / "_warehouse")
    prices = load_price_catalog(config.price_catalog)
    settings = load_gold_settings(ROOT / "conf" / "gold.yml")
    build(spark, lakehouse, args.subscriptions, args.days, args.events)
    as_of = lakehouse.read(spark, "silver", "usage_events").agg({"enqueued_time": "max"}).first()[0]
    started = time.perf_counter()
    run_billing(spark, lakehouse, prices, as_of=as_of, full_rebuild=True)
    run_gold(spark, lakehouse, settings, as_of, prices, full_rebuild=True)
    print(f"full billing + gold {time.perf_counter() - started:.1f} s, load {os.getloadavg()}")

    added = int(args.events * args.added_percent / 100)
    from pyspark.sql import functions as F
    new = usage_rows(spark, args.events, added, args.subscriptions, as_of + timedelta(seconds=1), 3600)
    new = new.withColumn("enqueued_time", F.when(F.col("sequence_number") == args.events,
                                                 F.lit(as_of - timedelta(days=40))).otherwise(F.col("enqueued_time")))
    append_usage(spark, lakehouse, new)
    clock = as_of + timedelta(hours=1)
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
