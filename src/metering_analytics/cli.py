"""Local entry point: `metering-analytics setup | generate | run | demo`."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from metering_analytics.config import ConfigError, load_config


def _source_dirs(source: str) -> tuple[str, str | None]:
    """A generator output folder holds capture/ and snapshots/; any other folder is the Capture root."""
    root = Path(source)
    if (root / "capture").is_dir():
        snapshots = root / "snapshots"
        return str(root / "capture"), str(snapshots) if snapshots.is_dir() else None
    return str(root), None


def cmd_setup(_args: argparse.Namespace) -> int:
    from metering_analytics.spark import CONNECTOR_PACKAGES, get_spark, jar_cache_dir

    started = time.perf_counter()
    spark = get_spark("metering-analytics-setup")
    print(f"Spark {spark.version} with {', '.join(CONNECTOR_PACKAGES)}")
    print(f"connector jars cached in {jar_cache_dir()} ({time.perf_counter() - started:.0f}s)")
    spark.stop()
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from metering_analytics.generate import generate

    summary = generate(args.out, subscriptions=args.subscriptions, days=args.days, seed=args.seed,
                       partitions=args.partitions, window_minutes=args.window_minutes,
                       events_per_subscription_hour=args.events_per_subscription_hour)
    print(summary)
    return 0


def _print_report(report, lakehouse_root: str | None, started: float) -> None:
    print("\nRows per table:")
    for name, n in sorted(report.row_counts.items()):
        print(f"  {name:<40} {n:>12,}")
    total_q = sum(report.quarantined.values())
    print(f"\nQuarantined records: {total_q:,}" + (
        " (" + ", ".join(f"{k}={v:,}" for k, v in sorted(report.quarantined.items())) + ")" if total_q else ""))
    print(f"Pipeline time: {time.perf_counter() - started:.1f}s")
    if lakehouse_root:
        print(f"Tables: {lakehouse_root}/<layer>/<table> (Delta)")


def _write_dashboards(spark, lakehouse_root: str, out_dir: str | None) -> None:
    """The persona dashboards and the customer reports as local HTML (see docs/dashboards.md)."""
    from metering_analytics.dashboards.render import write_local_dashboards
    from metering_analytics.io.lakehouse import Lakehouse

    out = out_dir or str(Path(lakehouse_root).resolve().parent / "dashboards_out")
    result = write_local_dashboards(spark, Lakehouse(root=lakehouse_root), out)
    print(f"\nDashboards ({result['seconds']:.0f}s):")
    for name, path in result["dashboards"].items():
        print(f"  {name:<20} {path}")
    if result.get("reports_index"):
        print(f"  {len(result['reports'])} customer reports: {result['reports_index']}")
    for item in result["pending"]:
        print(f"  pending (table not built yet): {item}")


def cmd_dashboards(args: argparse.Namespace) -> int:
    from metering_analytics.spark import get_spark

    if not Path(args.lakehouse, "gold").is_dir():
        raise ConfigError(f"no gold tables in {args.lakehouse}: run the pipeline first")
    spark = get_spark(warehouse_dir=Path(args.lakehouse) / "_warehouse")
    _write_dashboards(spark, args.lakehouse, args.out)
    return 0


def _stage_list(value: str | None) -> list[str] | None:
    """`ingestion`, `models` or stage names separated by commas; None runs every stage."""
    from metering_analytics.pipeline import INGESTION_STAGES, MODEL_STAGES, STAGES

    if not value:
        return None
    groups = {"ingestion": INGESTION_STAGES, "models": MODEL_STAGES}
    names: list[str] = []
    for part in (p.strip() for p in value.split(",") if p.strip()):
        names += [n for n, _ in groups[part]] if part in groups else [part]
    unknown = sorted(set(names) - {n for n, _ in STAGES})
    if unknown:
        raise ConfigError(f"unknown stages {unknown}; the pipeline has {[n for n, _ in STAGES]}")
    return names


def _run(source: str, lakehouse: str, config_path: str | None, dashboards_out: str | None = None,
         dashboards: bool = False, stages: str | None = None) -> int:
    from metering_analytics.pipeline import run_pipeline
    from metering_analytics.spark import get_spark

    started = time.perf_counter()
    capture, snapshots = _source_dirs(source)
    config = load_config(config_path).with_overrides(capture_path=capture, lakehouse_root=lakehouse,
                                                     snapshot_path=snapshots)
    selected = _stage_list(stages)
    if not Path(config.source.capture_path).is_dir():
        raise ConfigError(f"source folder not found: {config.source.capture_path}")
    spark = get_spark(warehouse_dir=Path(lakehouse) / "_warehouse")
    report = run_pipeline(spark, config, stages=selected)
    _print_report(report, config.lakehouse.root, started)
    if dashboards:
        _write_dashboards(spark, lakehouse, dashboards_out)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    return _run(args.source, args.lakehouse, args.config, stages=args.stages)


def cmd_demo(args: argparse.Namespace) -> int:
    data = Path(args.data)
    if not (data / "capture").is_dir():
        from metering_analytics.generate import generate

        print(f"Generating sample data: {args.subscriptions} subscriptions x {args.days} days -> {data}")
        started = time.perf_counter()
        summary = generate(str(data), subscriptions=args.subscriptions, days=args.days, seed=args.seed,
                           window_minutes=args.window_minutes,
                           events_per_subscription_hour=args.events_per_subscription_hour)
        print(f"  {summary.events_total:,} events in {summary.files_written:,} Capture files "
              f"({time.perf_counter() - started:.0f}s)")
    else:
        print(f"Using existing sample data in {data} (delete it to generate anew)")
    return _run(str(data), args.lakehouse, args.config, args.dashboards_out, dashboards=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="metering-analytics", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("setup", help="resolve and cache the Spark connector jars (Delta, Avro)")
    p.set_defaults(func=cmd_setup)

    p = sub.add_parser("generate", help="write realistic Event Hubs Capture Avro sample data")
    p.add_argument("--out", required=True)
    p.add_argument("--subscriptions", type=int, default=50)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--window-minutes", type=int, default=60, help="Capture time window per file")
    p.add_argument("--events-per-subscription-hour", type=float, default=1.6)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("run", help="run every pipeline stage over a Capture folder into a local lakehouse")
    p.add_argument("--source", required=True, help="Capture root, or a generator output folder")
    p.add_argument("--lakehouse", required=True)
    p.add_argument("--config", default=None, help="pipeline settings (default conf/pipeline.yml)")
    p.add_argument("--stages", default=None,
                   help="ingestion, models, or stage names separated by commas (default: every stage)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="generate sample data if there is none, then run the pipeline")
    p.add_argument("--data", default="data/demo")
    p.add_argument("--lakehouse", default="lakehouse")
    p.add_argument("--subscriptions", type=int, default=300)
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--seed", type=int, default=42)
    # Daily Capture windows keep a year to ~1,500 files (hourly would be 35,000: Spark pays ~10 ms
    # per file), and half an event per subscription-hour keeps the demo near a million events.
    p.add_argument("--window-minutes", type=int, default=1440)
    p.add_argument("--events-per-subscription-hour", type=float, default=0.5)
    p.add_argument("--config", default=None)
    p.add_argument("--dashboards-out", default=None,
                   help="folder of the HTML dashboards and customer reports (default: dashboards_out/ next to the lakehouse)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("dashboards", help="write the persona dashboards and customer reports as local HTML")
    p.add_argument("--lakehouse", default="lakehouse")
    p.add_argument("--out", default=None, help="default: dashboards_out/ next to the lakehouse")
    p.set_defaults(func=cmd_dashboards)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
