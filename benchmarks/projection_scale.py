"""Per-subscription cycle projections at scale: time of the applyInPandas path for N subscriptions.

    .venv/bin/python benchmarks/projection_scale.py --subscriptions 1000

Builds the projection input directly with Spark (PROJECTION_INPUT_SCHEMA: each subscription's current
cycle of three meters - two simple, one 3-tier waterfall - and 28 days of synthetic daily usage with a
weekly pattern), then runs `projection.project` + `priced` (one pandas group per subscription) and
writes the result to a Delta table, as the forecasts stage does. Appends a line to results.jsonl.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from datetime import date, datetime
from pathlib import Path

from measure import PeakMemory, machine

ROOT = Path(__file__).resolve().parents[1]
AS_OF = datetime(2025, 3, 29, 12)
# The generator's professional egress meter: free up to 1,000, then egress_tier_1, _tier_2, _overage.
TIERS = ('[{"tier_index":0,"dimension":"egress_tier_1","threshold":1000},{"tier_index":1,"dimension":'
         '"egress_tier_2","threshold":10000},{"tier_index":2,"dimension":"egress_overage","threshold":50000}]')


def build_input(spark, subscriptions: int, lookback_days: int):
    from pyspark.sql import functions as F

    from metering_analytics.models.forecasting.projection import PROJECTION_INPUT_SCHEMA

    meters = spark.createDataFrame(
        [("api", "simple", "api_calls", 100000.0, None, 3000.0),
         ("compute", "simple", "compute_hours", 500.0, None, 15.0),
         ("egress", "waterfall", None, 1000.0, TIERS, 200.0)],
        "meter_name string, dimension_type string, dimension string, included_quantity double, "
        "tiers_json string, daily_mean double")
    subs = spark.range(subscriptions).select(
        F.concat(F.lit("sub-"), F.col("id")).alias("subscription_key"),
        (F.col("id") % 28).cast("int").alias("start_offset"), F.col("id").alias("sid"))
    days = spark.range(lookback_days).select(F.col("id").cast("int").alias("d"))
    cycle_start = F.to_timestamp(F.date_sub(F.lit(AS_OF.date()), F.col("start_offset")))
    cycles = subs.crossJoin(meters).select(
        "subscription_key", "sid", F.lit("professional").alias("plan_id"), F.lit("Monthly").alias("renewal_interval"),
        "meter_name", "dimension_type", "dimension", F.lit(1).alias("cycle_index"),
        cycle_start.alias("cycle_start"), F.to_timestamp(F.add_months(cycle_start, 1)).alias("cycle_end"),
        "included_quantity", F.lit(False).alias("included_infinite"), "tiers_json", "daily_mean")
    day = F.date_sub(F.lit(AS_OF.date()), F.col("d") + 1)
    weekly = 1.0 + 0.4 * F.when(F.dayofweek(day).isin(1, 7), -1).otherwise(1)  # quieter weekends
    noise = 0.5 + F.rand(seed=7)
    usage = cycles.crossJoin(days).select(
        *[c for c in cycles.columns if c != "daily_mean"], day.alias("day"),
        F.round(F.col("daily_mean") * weekly * noise * (1 + F.col("sid") % 5), 3).alias("quantity"))
    used = usage.where(F.col("day") >= F.to_date("cycle_start")).groupBy("subscription_key", "meter_name") \
        .agg(F.sum("quantity").alias("used_quantity"))
    return usage.join(used, ["subscription_key", "meter_name"], "left") \
        .withColumn("used_quantity", F.coalesce("used_quantity", F.lit(0.0))) \
        .select(*PROJECTION_INPUT_SCHEMA.fieldNames())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=1000)
    parser.add_argument("--lookback-days", type=int, default=28)
    parser.add_argument("--work", default="/tmp/metering-projection-bench")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from metering_analytics.billing.prices import load_price_catalog, unit_price_frame
    from metering_analytics.config import load_config
    from metering_analytics.models.forecasting.projection import priced, project
    from metering_analytics.spark import get_spark

    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    spark = get_spark(warehouse_dir=work / "_warehouse")
    lakehouse = load_config().with_overrides(lakehouse_root=str(work / "lakehouse")).lakehouse
    prices = load_price_catalog(ROOT / "conf" / "prices.yml")
    started = time.perf_counter()
    inputs = build_input(spark, args.subscriptions, args.lookback_days).localCheckpoint()
    input_rows = inputs.count()
    build_s = time.perf_counter() - started
    with PeakMemory() as memory:
        started = time.perf_counter()
        result = priced(project(inputs, AS_OF, args.lookback_days), unit_price_frame(spark, prices), prices.currency)
        lakehouse.overwrite(result, "gold", "subscription_usage_projection")
        projected = lakehouse.read(spark, "gold", "subscription_usage_projection")
        rows = projected.count()
        subscriptions_out = projected.select("subscription_key").distinct().count()
        projection_s = time.perf_counter() - started
    record = {
        "benchmark": "projection", "date": date.today().isoformat(), "machine": machine(),
        "subscriptions": args.subscriptions, "input_rows": input_rows, "build_input_s": round(build_s, 1),
        "projection_s": round(projection_s, 1), "rows": rows, "subscriptions_projected": subscriptions_out,
        "groups_failed": args.subscriptions - subscriptions_out, "peak_memory_gib": round(memory.peak / 2 ** 30, 2),
    }
    print(json.dumps(record))
    with (ROOT / "benchmarks" / "results.jsonl").open("a") as out:
        out.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
