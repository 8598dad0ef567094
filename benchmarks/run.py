"""Scale benchmark: generate N events of accelerator traffic, run the pipeline, record the numbers.

    .venv/bin/python benchmarks/run.py                      # make bench: 1M and 10M, 1% held back
    .venv/bin/python benchmarks/run.py --events 1000000 --held-back-percent 0

For each size: generation time, per-stage time, events/s end to end, and peak memory of the whole
process tree (Python driver + Spark JVM), sampled from /proc. With `--held-back-percent P` (default 1)
the Capture files of the last days holding about P% of the bytes are moved aside before the full run
and put back after it, and the hourly job's stages (bronze to gold) run again: the incremental run's
time is recorded beside the full run's. Results are appended to benchmarks/results.jsonl and printed as
a Markdown table row for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
from datetime import date
from pathlib import Path

from measure import PeakMemory, machine

ROOT = Path(__file__).resolve().parents[1]
EVENTS_PER_SUBSCRIPTION_YEAR = 11_270  # measured on the generator's defaults (1.6 events/subscription-hour)


def _capture_day(path: Path) -> tuple[int, int, int]:
    """The day a Capture file covers, from its path: `.../2025/06/27/...`, `p0--2025-06-27--...` or
    `p=0/y=2025/m=06/d=27/...` (the generator writes both layouts of the design brief)."""
    text = str(path)
    found = (re.search(r"y=(\d{4})/m=(\d{1,2})/d=(\d{1,2})", text)
             or re.search(r"(\d{4})[-/](\d{2})[-/](\d{2})", text))
    if not found:
        raise ValueError(f"no day in the Capture path {text}")
    year, month, day = (int(g) for g in found.groups())
    return year, month, day


def hold_back(capture: Path, percent: float, aside: Path) -> list[tuple[Path, Path]]:
    """Move the Capture files of the last days, about `percent`% of the bytes, from `capture` to `aside`;
    returns (original, moved) pairs for `put_back`."""
    files = sorted(capture.rglob("*.avro"), key=lambda f: (_capture_day(f.relative_to(capture)), str(f)))
    budget, moved = sum(f.stat().st_size for f in files) * percent / 100, []
    for file in reversed(files):
        if budget <= 0:
            break
        budget -= file.stat().st_size
        target = aside / file.relative_to(capture)
        target.parent.mkdir(parents=True, exist_ok=True)
        file.rename(target)
        moved.append((file, target))
    return moved


def put_back(moved: list[tuple[Path, Path]]) -> None:
    for original, target in moved:
        if target.exists():
            target.rename(original)


def _timed_run(spark, config, stages):
    from metering_analytics.pipeline import run_pipeline

    stage_peaks = {}

    def progress(line: str) -> None:
        print("   ", line, flush=True)
        if line.startswith("[") and "] " in line:  # "[stage] running ..." / "[stage] done in ..."
            total, workers = memory.take()
            if "] done in" in line:
                stage_peaks[line[1:line.index("]")]] = [round(total / 2**30, 2), round(workers / 2**30, 2)]

    with PeakMemory() as memory:
        started = time.perf_counter()
        report = run_pipeline(spark, config, progress=progress, stages=stages)
        seconds = time.perf_counter() - started
    # stage_peaks: {stage: [GiB of the process tree, GiB of Spark's Python workers]}
    return report, seconds, memory.peak, stage_peaks


def run_size(events: int, workdir: Path, days: int, keep: bool, stages: list[str] | None, jvm_run: int = 1,
             held_back_percent: float = 0.0, profile: bool = False) -> dict:
    from metering_analytics.config import load_config
    from metering_analytics.generate import generate
    from metering_analytics.pipeline import INGESTION_STAGES
    from metering_analytics.spark import get_spark

    subscriptions = max(5, round(events / EVENTS_PER_SUBSCRIPTION_YEAR * 365 / days))
    data, lakehouse = workdir / f"data-{events}", workdir / f"lakehouse-{events}"
    aside = workdir / f"held-back-{events}"
    put_back([(data / "capture" / f.relative_to(aside), f) for f in aside.rglob("*.avro")])  # an interrupted run's
    shutil.rmtree(lakehouse, ignore_errors=True)
    started = time.perf_counter()
    if not (data / "capture").is_dir():
        summary = generate(str(data), subscriptions=subscriptions, days=days, seed=7, window_minutes=1440)
        generated = summary.events_total
    else:
        generated = None
    generation_s = time.perf_counter() - started

    config = load_config().with_overrides(capture_path=str(data / "capture"), lakehouse_root=str(lakehouse),
                                          snapshot_path=str(data / "snapshots"))
    spark = get_spark(warehouse_dir=lakehouse / "_warehouse")
    moved = hold_back(data / "capture", held_back_percent, aside) if held_back_percent else []
    try:
        report, total_s, peak, stage_peaks = _timed_run(spark, config, stages)
        incremental = None
        if moved:
            put_back(moved)
            hourly = [name for name, _ in INGESTION_STAGES if stages is None or name in stages]
            if profile:  # every Spark action of the incremental run, by call site
                from incremental_profile import instrument
                instrument(spark)
            again, again_s, again_peak, again_stage_peaks = _timed_run(spark, config, hourly)
            if profile:
                from incremental_profile import report as print_profile
                print_profile(again_s)
            full_hourly_s = sum(s.seconds for s in report.stages if s.name in hourly)
            incremental = {
                "files": len(moved),
                "added_events": again.row_counts.get("bronze.events", 0) - report.row_counts.get("bronze.events", 0),
                "stages_s": {s.name: round(s.seconds, 1) for s in again.stages},
                "pipeline_s": round(again_s, 1),
                "full_same_stages_s": round(full_hourly_s, 1),
                "share_of_full": round(again_s / full_hourly_s, 3),
                "peak_memory_gib": round(again_peak / 2**30, 2),
                "stage_peak_memory_gib": again_stage_peaks,
            }
    finally:
        put_back(moved)
    records = report.row_counts.get("bronze.events", 0)
    result = {
        "date": date.today().isoformat(),
        "machine": machine(),
        "target_events": events,
        "events": records,
        "subscriptions": subscriptions,
        "days": days,
        "generation_s": round(generation_s, 1) if generated else None,
        "stages_s": {s.name: round(s.seconds, 1) for s in report.stages},
        "pipeline_s": round(total_s, 1),
        "events_per_s": round(records / total_s),
        "peak_memory_gib": round(peak / 2**30, 2),
        "stage_peak_memory_gib": stage_peaks,  # [process tree, Spark's Python workers]
        # 1: the first run in a fresh JVM (a scheduled job's case: classes loaded, code compiled as it
        # goes); 2+: the same run again in the same JVM, on a fresh lakehouse (steady state).
        "jvm_run": jvm_run,
        "incremental": incremental,
        "load_average": [round(x, 1) for x in os.getloadavg()],
    }
    if not keep:
        shutil.rmtree(lakehouse, ignore_errors=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, action="append",
                        help="approximate events per dataset (default: 1,000,000 and 10,000,000)")
    parser.add_argument("--held-back-percent", type=float, default=1.0,
                        help="hold back the last days' Capture files (about this share of the bytes) for an "
                             "incremental run after the full one; 0: no incremental run")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--workdir", default=str(ROOT / "benchmarks" / "data"))
    parser.add_argument("--keep", action="store_true", help="keep the lakehouse after the run")
    parser.add_argument("--profile", action="store_true",
                        help="print the wall time and Spark jobs of every action of the incremental run, by call site")
    parser.add_argument("--stages", default=None, help="comma-separated stages to run (default: all)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each size this many times in the same JVM (the first run pays the JVM's warm-up)")
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    results_file = ROOT / "benchmarks" / "results.jsonl"
    for events, jvm_run in ((e, r) for e in args.events or [1_000_000, 10_000_000]
                            for r in range(1, args.repeat + 1)):
        print(f"== {events:,} events (run {jvm_run} in this JVM)", flush=True)
        result = run_size(events, workdir, args.days, args.keep,
                          args.stages.split(",") if args.stages else None, jvm_run, args.held_back_percent,
                          args.profile)
        print(json.dumps(result), flush=True)
        with results_file.open("a") as out:
            out.write(json.dumps(result) + "\n")
        stages = ", ".join(f"{k} {v}s" for k, v in result["stages_s"].items())
        print(f"| {result['date']} | {result['events']:,} | run {jvm_run} | {result['pipeline_s']} s | "
              f"{result['events_per_s']:,} | {result['peak_memory_gib']} GiB | {stages} |")
        if result["incremental"]:
            again = result["incremental"]
            print(f"  incremental: +{again['added_events']:,} events ({again['files']} files): {again['pipeline_s']} s "
                  f"against {again['full_same_stages_s']} s for the same stages in full ({again['share_of_full']:.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
