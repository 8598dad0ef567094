"""Accounting at scale: time and peak memory of the billing stage on N silver usage events.

    .venv/bin/python benchmarks/billing_scale.py --events 10000000

Builds silver.subscriptions / plan_dimensions / usage_events directly with Spark (no Capture files:
this measures the accounting, not ingestion), on the `professional` plan of conf/prices.yml (a simple meter and a 3-tier waterfall), then runs
`run_billing` and records the time and the peak memory of the process tree.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from datetime import date, datetime
from pathlib import Path

from measure import PeakMemory, machine, record

ROOT = Path(__file__).resolve().parents[1]


def professional_subscriptions(spark, count: int, start: datetime, *, offer_type: str, first_sequence: int):
    """`count` silver.subscriptions rows on the `professional` plan (every third annual), all purchased at
    `start`, their cycles starting over the following four weeks."""
    from pyspark.sql import functions as F

    return spark.range(count).select(
        F.concat(F.lit("sub-"), F.col("id")).alias("subscription_key"),
        F.concat(F.lit("sub-"), F.col("id")).alias("resource_id"),
        F.lit(None).cast("string").alias("resource_uri"),
        F.lit("professional").alias("plan_id"),
        F.when(F.col("id") % 3 == 0, "Annually").otherwise("Monthly").alias("renewal_interval"),
        F.when(F.col("id") % 3 == 0, 12).otherwise(1).alias("renewal_months"),
        (F.lit(start) + F.expr("make_interval(0, 0, 0, cast(id % 28 as int), cast(id % 24 as int))"))
        .alias("subscription_start"),
        F.lit(start).alias("purchased_at"),
        F.lit(None).cast("timestamp").alias("deleted_at"),
        F.lit(None).cast("string").alias("deleted_partition_id"),
        F.lit(None).cast("long").alias("deleted_sequence_number"),
        F.lit(offer_type).alias("offer_type"),
        (F.col("id") % 4).cast("string").alias("partition_id"),
        (F.lit(first_sequence) + F.col("id")).alias("sequence_number"),
    )


def professional_plan_dimensions(spark, subs):
    """The `professional` plan's meters for every subscription: a simple meter with 10,000 included and a
    three-tier waterfall."""
    from pyspark.sql import functions as F

    tiers = F.array(*[F.struct(F.lit(i).alias("tier_index"), F.lit(d).alias("dimension"), F.lit(t).alias("threshold"))
                      for i, (d, t) in enumerate((("egress_tier_1", 1000.0), ("egress_tier_2", 10000.0),
                                                  ("egress_overage", 50000.0)))])
    meters = spark.createDataFrame([("api", "simple", "api_calls", 10000.0), ("egress", "waterfall", None, None)],
                                   "meter_name string, dimension_type string, dimension string, included_quantity double")
    return subs.select("subscription_key", "plan_id").crossJoin(meters).select(
        "subscription_key", "plan_id", "meter_name", "dimension_type", "dimension", "included_quantity",
        F.lit(False).alias("included_infinite"), F.when(F.col("dimension_type") == "waterfall", tiers).alias("tiers"))


def build_silver(spark, lakehouse, events: int, subscriptions: int) -> None:
    from pyspark.sql import functions as F

    from metering_analytics.io.lakehouse import with_columns_of
    from metering_analytics.schemas import (
        SILVER_MARKETPLACE_SUBMISSIONS_SCHEMA,
        SILVER_PLAN_DIMENSIONS_SCHEMA,
        SILVER_SUBSCRIPTIONS_SCHEMA,
        SILVER_USAGE_EVENTS_SCHEMA,
    )

    start = datetime(2025, 1, 1)
    subs = professional_subscriptions(spark, subscriptions, start, offer_type="unknown", first_sequence=0)
    dims = professional_plan_dimensions(spark, subs)
    seconds_in_year = 365 * 24 * 3600
    usage = spark.range(events).select(
        (F.col("id") % 4).cast("string").alias("partition_id"),
        F.col("id").alias("sequence_number"),
        F.concat(F.lit("sub-"), F.col("id") % subscriptions).alias("subscription_key"),
        F.lit(None).cast("string").alias("resource_id"),
        F.lit(None).cast("string").alias("resource_uri"),
        F.lit("professional").alias("plan_id"),
        F.when(F.col("id") % 5 == 0, "egress").otherwise("api").alias("meter_name"),
        F.when(F.col("id") % 5 == 0, F.lit(None)).otherwise(F.lit("api_calls")).alias("dimension"),
        (F.rand(7) * 20).alias("quantity"),
        (F.lit(start).cast("long") + F.lit(28 * 86400) + (F.col("id") * seconds_in_year / events).cast("long"))
        .cast("timestamp").alias("enqueued_time"),
        F.lit(None).cast("timestamp").alias("event_timestamp"),
        F.create_map().cast("map<string,string>").alias("properties"),
    )
    lakehouse.overwrite(with_columns_of(subs, SILVER_SUBSCRIPTIONS_SCHEMA), "silver", "subscriptions")
    lakehouse.overwrite(with_columns_of(dims, SILVER_PLAN_DIMENSIONS_SCHEMA), "silver", "plan_dimensions")
    lakehouse.overwrite(with_columns_of(usage, SILVER_USAGE_EVENTS_SCHEMA), "silver", "usage_events")
    lakehouse.overwrite(spark.createDataFrame([], SILVER_MARKETPLACE_SUBMISSIONS_SCHEMA), "silver",
                        "marketplace_submissions")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--subscriptions", type=int, default=1000)
    parser.add_argument("--workdir", default=str(ROOT / "benchmarks" / "data"))
    args = parser.parse_args()

    from metering_analytics.billing.prices import load_price_catalog
    from metering_analytics.billing.stage import run_billing
    from metering_analytics.config import load_config
    from metering_analytics.spark import get_spark

    lakehouse_dir = Path(args.workdir) / f"billing-{args.events}"
    shutil.rmtree(lakehouse_dir, ignore_errors=True)
    config = load_config().with_overrides(lakehouse_root=str(lakehouse_dir))
    spark = get_spark(warehouse_dir=lakehouse_dir / "_warehouse")
    started = time.perf_counter()
    build_silver(spark, config.lakehouse, args.events, args.subscriptions)
    build_s = time.perf_counter() - started
    prices = load_price_catalog(config.price_catalog)
    with PeakMemory() as memory:
        started = time.perf_counter()
        counts = run_billing(spark, config.lakehouse, prices, as_of=datetime(2026, 1, 1))
        billing_s = time.perf_counter() - started
    result = {
        "date": date.today().isoformat(), "machine": machine(), "usage_events": args.events,
        "subscriptions": args.subscriptions, "build_silver_s": round(build_s, 1),
        "billing_s": round(billing_s, 1), "usage_events_per_s": round(args.events / billing_s),
        "peak_memory_gib": round(memory.peak / 2**30, 2), "rows": counts,
    }
    record("billing", result)
    shutil.rmtree(lakehouse_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
