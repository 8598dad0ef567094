"""Incremental refresh: time of a full billing + gold run against an incremental one after ~1% more events.

    .venv/bin/python benchmarks/incremental_scale.py --subscriptions 100 --days 120 --events 1000000

Builds silver (subscriptions, plan dimensions, usage events with properties, accepted submissions) and
bronze.events directly with Spark (this measures billing and gold, not ingestion), the silver tables with
their change feed on as the silver stage creates them. Then: a full rebuild of billing + gold; ~1% more
usage events (the hour after the last one, one of them late, in an earlier billing cycle) appended as the
silver stage appends them; an incremental billing + gold run. Records both times with the load average.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

from billing_scale import professional_plan_dimensions, professional_subscriptions
from measure import machine, record

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2025, 1, 1)


def usage_rows(spark, first_id: int, count: int, subscriptions: int, start: datetime, seconds: int):
    from pyspark.sql import functions as F

    return spark.range(first_id, first_id + count).select(
        (F.col("id") % 4).cast("string").alias("partition_id"),
        F.col("id").alias("sequence_number"),
        F.concat(F.lit("sub-"), F.col("id") % subscriptions).alias("subscription_key"),
        F.concat(F.lit("sub-"), F.col("id") % subscriptions).alias("resource_id"),
        F.lit(None).cast("string").alias("resource_uri"),
        F.lit("professional").alias("plan_id"),
        F.when(F.col("id") % 5 == 0, "egress").otherwise("api").alias("meter_name"),
        F.when(F.col("id") % 5 == 0, F.lit(None)).otherwise(F.lit("api_calls")).alias("dimension"),
        F.round(F.rand(7) * 20, 3).alias("quantity"),
        (F.lit(start).cast("long") + ((F.col("id") - first_id) * seconds / count).cast("long"))
        .cast("timestamp").alias("enqueued_time"),
        F.lit(None).cast("timestamp").alias("event_timestamp"),
        F.create_map(F.lit("region"), F.element_at(F.array(F.lit("eu"), F.lit("us"), F.lit("asia")),
                                                   (F.col("id") % 3 + 1).cast("int"))).alias("properties"),
    )


def build(spark, lakehouse, subscriptions: int, days: int, events: int) -> datetime:
    from pyspark.sql import functions as F

    from metering_analytics.io.lakehouse import with_columns_of
    from metering_analytics.schemas import (
        BRONZE_EVENTS_SCHEMA,
        SILVER_MARKETPLACE_SUBMISSIONS_SCHEMA,
        SILVER_PLAN_DIMENSIONS_SCHEMA,
        SILVER_SUBSCRIPTIONS_SCHEMA,
    )
    from metering_analytics.silver.stage import ensure_silver_tables

    ensure_silver_tables(spark, lakehouse)
    lakehouse.ensure_table(spark, "bronze", "events", BRONZE_EVENTS_SCHEMA)
    subs = professional_subscriptions(spark, subscriptions, START, offer_type="saas", first_sequence=10**12)
    dims = professional_plan_dimensions(spark, subs)
    lakehouse.overwrite(with_columns_of(subs, SILVER_SUBSCRIPTIONS_SCHEMA), "silver", "subscriptions")
    lakehouse.overwrite(with_columns_of(dims, SILVER_PLAN_DIMENSIONS_SCHEMA), "silver", "plan_dimensions")
    first = START + timedelta(days=28)
    append_usage(spark, lakehouse, usage_rows(spark, 0, events, subscriptions, first, days * 86400))
    # One accepted submission per subscription and day at 10:00, for the reconciliation.
    submissions = spark.range(subscriptions * days).select(
        (F.col("id") % 4).cast("string").alias("partition_id"), (F.lit(2 * 10**12) + F.col("id")).alias("sequence_number"),
        (F.lit(first) + F.expr("make_interval(0, 0, 0, cast(id div %d as int), 11)" % subscriptions)).alias("enqueued_time"),
        F.lit("Accepted").alias("status"), F.concat(F.lit("sub-"), F.col("id") % subscriptions).alias("resource_id"),
        F.lit("professional").alias("plan_id"), F.lit("api_calls").alias("dimension"),
        (F.lit(first) + F.expr("make_interval(0, 0, 0, cast(id div %d as int), 10)" % subscriptions))
        .alias("effective_start_time"), F.lit(1.0).alias("quantity"))
    lakehouse.merge_insert_new(with_columns_of(_fill(submissions, SILVER_MARKETPLACE_SUBMISSIONS_SCHEMA),
                                               SILVER_MARKETPLACE_SUBMISSIONS_SCHEMA),
                               "silver", "marketplace_submissions", keys=("partition_id", "sequence_number"))
    append_bronze(spark, lakehouse, submissions.select("partition_id", "sequence_number", "enqueued_time"))
    return first + timedelta(days=days)


def _fill(df, schema):
    from pyspark.sql import functions as F
    missing = [F.lit(None).cast(f.dataType).alias(f.name) for f in schema.fields if f.name not in df.columns]
    return df.select("*", *missing)


def append_usage(spark, lakehouse, usage) -> None:
    from metering_analytics.io.lakehouse import with_columns_of
    from metering_analytics.schemas import SILVER_USAGE_EVENTS_SCHEMA

    usage = with_columns_of(usage, SILVER_USAGE_EVENTS_SCHEMA).localCheckpoint()
    # as the silver stage writes: a MERGE inserting the records not there yet
    if lakehouse.exists(spark, "silver", "usage_events") and lakehouse.read(spark, "silver", "usage_events").isEmpty():
        usage.write.format("delta").mode("append").save(lakehouse.path("silver", "usage_events"))
    else:
        lakehouse.merge_insert_new(usage, "silver", "usage_events", keys=("partition_id", "sequence_number"))
    append_bronze(spark, lakehouse, usage.select("partition_id", "sequence_number", "enqueued_time"))


def append_bronze(spark, lakehouse, records) -> None:
    from pyspark.sql import functions as F

    from metering_analytics.schemas import BRONZE_EVENTS_SCHEMA

    bronze = records.select(*[
        (F.col(f.name) if f.name in records.columns else F.lit(None)).cast(f.dataType).alias(f.name)
        for f in BRONZE_EVENTS_SCHEMA.fields
    ]).withColumn("source_file", F.lit("bench.avro")).withColumn("ingested_at", F.current_timestamp()) \
        .withColumn("event_hub", F.lit("hub")).withColumn("enqueued_date", F.to_date("enqueued_time"))
    bronze.write.format("delta").mode("append").save(lakehouse.path("bronze", "events"))


def timed(fn) -> tuple[float, str]:
    started = time.perf_counter()
    fn()
    return round(time.perf_counter() - started, 1), " ".join(f"{x:.1f}" for x in os.getloadavg())


def bench_arguments(description: str, subscriptions: int, days: int, events: int) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscriptions", type=int, default=subscriptions)
    parser.add_argument("--days", type=int, default=days)
    parser.add_argument("--events", type=int, default=events)
    parser.add_argument("--added-percent", type=float, default=1.0)
    parser.add_argument("--workdir", default=str(ROOT / "benchmarks" / "data"))
    return parser.parse_args()


def built_lakehouse(args: argparse.Namespace, name: str):
    """A fresh lakehouse under the workdir with silver and bronze built (`build`): (spark, lakehouse,
    prices, gold settings, its folder, the build's seconds, the clock of its last event)."""
    from metering_analytics.billing.prices import load_price_catalog
    from metering_analytics.config import load_config
    from metering_analytics.gold.settings import load_gold_settings
    from metering_analytics.spark import get_spark

    lakehouse_dir = Path(args.workdir) / name
    shutil.rmtree(lakehouse_dir, ignore_errors=True)
    config = load_config().with_overrides(lakehouse_root=str(lakehouse_dir))
    lakehouse = config.lakehouse
    spark = get_spark(warehouse_dir=lakehouse_dir / "_warehouse")
    prices = load_price_catalog(config.price_catalog)
    settings = load_gold_settings(ROOT / "conf" / "gold.yml")
    build_s, _ = timed(lambda: build(spark, lakehouse, args.subscriptions, args.days, args.events))
    as_of = lakehouse.read(spark, "silver", "usage_events").agg({"enqueued_time": "max"}).first()[0]
    return spark, lakehouse, prices, settings, lakehouse_dir, build_s, as_of


def add_the_increment(spark, lakehouse, args: argparse.Namespace, as_of: datetime) -> tuple[datetime, int]:
    """Append `--added-percent` more usage events in the hour after `as_of`, one of them late (enqueued 40
    days earlier, in an earlier billing cycle of its subscription); returns the next run's clock and the
    number of events added."""
    from pyspark.sql import functions as F

    added = int(args.events * args.added_percent / 100)
    new = usage_rows(spark, args.events, added, args.subscriptions, as_of + timedelta(seconds=1), 3600)
    new = new.withColumn("enqueued_time", F.when(F.col("sequence_number") == args.events,
                                                 F.lit(as_of - timedelta(days=40))).otherwise(F.col("enqueued_time")))
    append_usage(spark, lakehouse, new)
    return as_of + timedelta(hours=1), added


def main() -> int:
    args = bench_arguments(__doc__, subscriptions=100, days=120, events=1_000_000)
    from metering_analytics.billing.stage import run_billing
    from metering_analytics.gold.stage import run_gold

    spark, lakehouse, prices, settings, lakehouse_dir, build_s, as_of = built_lakehouse(args, "incremental")

    stage_times: dict[str, float] = {}

    def both(clock, full):
        mode = "full" if full else "incremental"
        stage_times[f"{mode}_billing_s"], _ = timed(
            lambda: run_billing(spark, lakehouse, prices, as_of=clock, full_rebuild=full))
        stage_times[f"{mode}_gold_s"], _ = timed(
            lambda: run_gold(spark, lakehouse, settings, clock, prices, full_rebuild=full))

    full_s, full_load = timed(lambda: both(as_of, True))
    clock, added = add_the_increment(spark, lakehouse, args, as_of)
    incremental_s, incremental_load = timed(lambda: both(clock, False))
    incremental_times = {k: stage_times[k] for k in ("incremental_billing_s", "incremental_gold_s")}
    rerun_s, rerun_load = timed(lambda: both(clock, False))
    result = {
        "date": date.today().isoformat(), "machine": machine(), "subscriptions": args.subscriptions,
        "days": args.days, "usage_events": args.events, "added_events": added, "build_s": build_s,
        "full_billing_gold_s": full_s, "load_average_full": full_load,
        "incremental_billing_gold_s": incremental_s, "load_average_incremental": incremental_load,
        "nothing_new_s": rerun_s, "load_average_nothing_new": rerun_load,
    }
    result.update(full_billing_s=stage_times["full_billing_s"], full_gold_s=stage_times["full_gold_s"],
                  **incremental_times)
    record("incremental", result)
    shutil.rmtree(lakehouse_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
