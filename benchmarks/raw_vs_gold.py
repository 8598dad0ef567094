"""Persona questions answered from the gold tables vs straight from the raw Capture Avro, same session.

    .venv/bin/python benchmarks/raw_vs_gold.py --capture data/demo/capture --lakehouse lakehouse

The accelerator's own analytics approach is Spark SQL over the Capture files: every query reads the
Avro, casts `Body` to a string and pulls `$.type`, `$.value.meterName`, `$.value.quantity` out of the
JSON. This runs a handful of persona questions both ways in one SparkSession, each `--repeats` times
(nothing cached between runs: each raw query reads the files again, as such a query does), records
the median times and their ratio, and compares the answers.

The raw answers are approximations of the gold ones: no deduplication of records Capture delivered
twice, no quarantine (unknown meters, unknown or deleted subscriptions, invalid quantities are
counted), no resolution of a subscription named by id in one message and by URI in another, and no
plan (a usage message names only the meter). The script reports how far apart the answers are.

Both sources are only read: the gold tables are loaded as temporary views (nothing is registered in
a catalog next to them) and the session's warehouse is a temporary folder.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from measure import machine

ROOT = Path(__file__).resolve().parents[1]

# The accelerator-style reading of one Capture record: the Body as JSON text, the enqueued time parsed.
# try_cast: under Spark's ANSI mode a plain CAST fails the whole query on the first quantity like "abc".
RAW_RECORDS = """
SELECT to_timestamp(EnqueuedTimeUtc, 'M/d/yyyy h:mm:ss a') AS enqueued_time,
       get_json_object(CAST(Body AS STRING), '$.type') AS message_type,
       get_json_object(CAST(Body AS STRING), '$.value.meterName') AS meter_name,
       try_cast(get_json_object(CAST(Body AS STRING), '$.value.quantity') AS DOUBLE) AS quantity,
       coalesce(get_json_object(CAST(Body AS STRING), '$.value.resourceUri'),
                get_json_object(CAST(Body AS STRING), '$.value.resourceId')) AS subscription
FROM capture
"""


def question_sql(subscription: str) -> dict[str, dict[str, str]]:
    """{question: {"gold": SQL over gold table names, "raw": SQL over the `capture` view}}."""
    key = subscription.replace("'", "''")
    return {
        # sales dashboard `usage_daily` (per meter: a usage message names no plan)
        "usage_per_meter_per_day_last_30_days": {
            "gold": """
                SELECT day, meter_name, sum(events) AS events, sum(quantity) AS quantity
                FROM sales_usage_by_product_daily
                WHERE day > date_sub((SELECT max(day) FROM sales_usage_by_product_daily), 30)
                GROUP BY day, meter_name""",
            "raw": f"""
                WITH usage AS (SELECT to_date(enqueued_time) AS day, meter_name, quantity
                               FROM ({RAW_RECORDS}) WHERE message_type = 'UsageReported')
                SELECT day, meter_name, count(*) AS events, sum(quantity) AS quantity
                FROM usage
                WHERE day > date_sub((SELECT max(day) FROM usage), 30)
                GROUP BY day, meter_name""",
        },
        # operations dashboard `events_hourly` (last 14 days of data)
        "events_per_hour_by_type_last_14_days": {
            "gold": """
                SELECT hour, message_type, sum(events) AS events
                FROM ops_event_totals_hourly
                WHERE hour >= (SELECT max(hour) FROM ops_event_totals_hourly) - INTERVAL 14 DAYS
                GROUP BY hour, message_type""",
            "raw": f"""
                WITH events AS (SELECT date_trunc('hour', enqueued_time) AS hour,
                                       coalesce(message_type, '(unreadable)') AS message_type
                                FROM ({RAW_RECORDS}))
                SELECT hour, message_type, count(*) AS events
                FROM events
                WHERE hour >= (SELECT max(hour) FROM events) - INTERVAL 14 DAYS
                GROUP BY hour, message_type""",
        },
        # sql/views/v_sales_top_customers_this_month.sql, usage rankings
        "top_10_customers_by_usage_this_month": {
            "gold": """
                SELECT meter_name, rank, subscription_key AS subscription, value AS quantity
                FROM sales_top_customers
                WHERE month = (SELECT max(month) FROM sales_top_customers) AND ranking = 'usage' AND rank <= 10""",
            "raw": f"""
                WITH usage AS (SELECT trunc(enqueued_time, 'MM') AS month, meter_name, subscription, quantity
                               FROM ({RAW_RECORDS}) WHERE message_type = 'UsageReported'),
                totals AS (SELECT meter_name, subscription, sum(quantity) AS quantity
                           FROM usage WHERE month = (SELECT max(month) FROM usage)
                           GROUP BY meter_name, subscription)
                SELECT * FROM (
                  SELECT meter_name, row_number() OVER (PARTITION BY meter_name ORDER BY quantity DESC) AS rank,
                         subscription, quantity
                  FROM totals) WHERE rank <= 10""",
        },
        # sql/views/v_cs_subscription_consumption_daily.sql for one subscription
        "one_subscription_consumption_per_day_by_meter": {
            "gold": f"""
                SELECT d.day, d.meter_name, sum(d.events) AS events, sum(d.quantity) AS quantity
                FROM cs_consumption_daily d
                WHERE d.subscription_key = '{key}'
                GROUP BY d.day, d.meter_name""",
            "raw": f"""
                SELECT to_date(enqueued_time) AS day, meter_name, count(*) AS events, sum(quantity) AS quantity
                FROM ({RAW_RECORDS})
                WHERE message_type = 'UsageReported' AND subscription = '{key}'
                GROUP BY to_date(enqueued_time), meter_name""",
        },
    }


GOLD_TABLES = ("sales_usage_by_product_daily", "ops_event_totals_hourly", "sales_top_customers",
               "cs_consumption_daily")


def timed(spark, sql: str, repeats: int) -> tuple[list[float], list]:
    times, rows = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        rows = spark.sql(sql).collect()
        times.append(time.perf_counter() - started)
    return times, rows


def agreement(question: str, gold: list, raw: list) -> dict:
    """How close the raw answer is to the gold one, in the terms that question is read in."""
    def totals(rows, column):
        return sum(r[column] or 0 for r in rows)

    if question == "top_10_customers_by_usage_this_month":
        meters = sorted({r["meter_name"] for r in gold})
        overlap = {}
        for m in meters:
            top = {r["subscription"] for r in gold if r["meter_name"] == m}
            overlap[m] = f"{len(top & {r['subscription'] for r in raw if r['meter_name'] == m})} of {len(top)}"
        same_first = sum(1 for m in meters if {r["subscription"] for r in gold if r["meter_name"] == m and r["rank"] == 1}
                         == {r["subscription"] for r in raw if r["meter_name"] == m and r["rank"] == 1})
        return {"meters": len(meters), "top10_overlap_per_meter": overlap, "same_number_one": same_first,
                "raw_meters": sorted({str(r["meter_name"]) for r in raw})}
    out = {"gold_rows": len(gold), "raw_rows": len(raw),
           "gold_events": totals(gold, "events"), "raw_events": totals(raw, "events")}
    if "quantity" in gold[0].asDict() if gold else False:
        out |= {"gold_quantity": round(totals(gold, "quantity"), 3), "raw_quantity": round(totals(raw, "quantity"), 3)}
    if question == "events_per_hour_by_type_last_14_days":
        by_type = lambda rows: {t: sum(r["events"] for r in rows if r["message_type"] == t)  # noqa: E731
                                for t in sorted({r["message_type"] for r in rows})}
        out |= {"gold_by_type": by_type(gold), "raw_by_type": by_type(raw)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--capture", required=True, help="the Capture root the lakehouse was built from")
    parser.add_argument("--lakehouse", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--subscription", default=None, help="default: the revenue rank 1 of the latest month")
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results.jsonl"))
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT / "src"))
    from metering_analytics.spark import get_spark

    warehouse = tempfile.mkdtemp(prefix="raw_vs_gold_")
    spark = get_spark("raw-vs-gold", warehouse_dir=warehouse)
    for table in GOLD_TABLES:
        spark.read.format("delta").load(str(Path(args.lakehouse, "gold", table))).createOrReplaceTempView(table)
    # How the accelerator's docs read Capture: the Avro files as they are, every file below the root.
    (spark.read.format("avro").option("recursiveFileLookup", "true").option("pathGlobFilter", "*.avro")
     .load(args.capture).createOrReplaceTempView("capture"))
    files = len(spark.read.format("avro").option("recursiveFileLookup", "true")
                .option("pathGlobFilter", "*.avro").load(args.capture).inputFiles())

    subscription = args.subscription or spark.sql(
        "SELECT subscription_key FROM sales_top_customers WHERE ranking = 'revenue' AND rank = 1 "
        "ORDER BY month DESC LIMIT 1").first()[0]
    load_before = os.getloadavg()
    results = []
    for question, sql in question_sql(subscription).items():
        gold_times, gold_rows = timed(spark, sql["gold"], args.repeats)
        raw_times, raw_rows = timed(spark, sql["raw"], args.repeats)
        gold_s, raw_s = statistics.median(gold_times), statistics.median(raw_times)
        result = {"question": question, "gold_median_s": round(gold_s, 3), "raw_median_s": round(raw_s, 3),
                  "ratio": round(raw_s / gold_s, 1), "gold_times_s": [round(t, 3) for t in gold_times],
                  "raw_times_s": [round(t, 3) for t in raw_times],
                  "agreement": agreement(question, gold_rows, raw_rows)}
        results.append(result)
        print(json.dumps(result, default=str), flush=True)
    record = {"benchmark": "raw_vs_gold", "date": date.today().isoformat(), "machine": machine(),
              "capture_files": files, "lakehouse": str(args.lakehouse), "repeats": args.repeats,
              "subscription": subscription, "load_average_before": [round(x, 1) for x in load_before],
              "load_average_after": [round(x, 1) for x in os.getloadavg()], "questions": results}
    with open(args.results, "a", encoding="utf-8") as out:
        out.write(json.dumps(record, default=str) + "\n")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
