# Databricks notebook source
# MAGIC %md
# MAGIC # Operations analysis
# MAGIC
# MAGIC The Operations persona's questions, each answered twice: with the DataFrame API and a plotly chart
# MAGIC (Python), and as SQL. Tables: `docs/tables.md`; metrics: `docs/metrics.md`; the Operations
# MAGIC dashboard (`dashboards/operations.lvdash.json`) shows the same answers.
# MAGIC
# MAGIC Widgets: `catalog` and `gold_schema` (a development deployment's schema is `dev_<user>_gold`).

# COMMAND ----------

import plotly.express as px
from pyspark.sql import functions as F

from metering_analytics.dashboards.analysis import use_gold

catalog, gold_schema = use_gold(spark, globals().get("dbutils"))
print(f"reading {catalog + '.' if catalog else ''}{gold_schema}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## 1. How many events arrive, of which type, on which partition?
# MAGIC Every Capture record per enqueued day and message type (`unprocessable`: quarantined before parsing).

# COMMAND ----------

events = (
    spark.table("ops_event_totals_daily")
    .groupBy("day", "message_type")
    .agg(F.sum("events").alias("events"), F.sum("quarantined_events").alias("quarantined_events"))
    .orderBy("day")
    .toPandas()
)
px.bar(events, x="day", y="events", color="message_type", title="Events per day by message type").show()

# COMMAND ----------

# MAGIC %sql
# MAGIC SELECT day, message_type, SUM(events) AS events, SUM(quarantined_events) AS quarantined_events
# MAGIC FROM ops_event_totals_daily
# MAGIC GROUP BY day, message_type
# MAGIC ORDER BY day, message_type

# COMMAND ----------

# MAGIC %md
# MAGIC ## 2. How close does ingress come to the Event Hubs capacity?
# MAGIC Busiest minute per day (events per second) against the throughput units' capacity, as headroom.

# COMMAND ----------

throughput = (
    spark.table("ops_throughput")
    .where(F.col("grain") == "day")
    .select(F.to_date("period_start").alias("day"), "peak_events_per_second", "capacity_events_per_second",
            "headroom_percent")
    .orderBy("day")
    .toPandas()
)
px.line(throughput, x="day", y="headroom_percent", title="Daily capacity headroom (%)").show()

# COMMAND ----------

# MAGIC %sql
# MAGIC SELECT CAST(period_start AS DATE) AS day, peak_events_per_second, capacity_events_per_second, headroom_percent
# MAGIC FROM ops_throughput
# MAGIC WHERE grain = 'day'
# MAGIC ORDER BY day

# COMMAND ----------

# MAGIC %md
# MAGIC ## 3. How healthy are the submissions to Marketplace?
# MAGIC Usage hours per Marketplace status (Accepted, Duplicate, Expired, rejected, Pending) and acceptance latency.

# COMMAND ----------

health = (
    spark.table("ops_submission_health_daily")
    .groupBy("status")
    .agg(F.sum("submissions").alias("submissions"), F.sum("usage_hours").alias("usage_hours"),
         F.round(F.avg("median_latency_minutes"), 1).alias("median_latency_minutes"))
    .orderBy(F.desc("usage_hours"))
    .toPandas()
)
px.pie(health, names="status", values="usage_hours", title="Usage hours by submission status").show()

# COMMAND ----------

# MAGIC %sql
# MAGIC SELECT status, SUM(submissions) AS submissions, SUM(usage_hours) AS usage_hours,
# MAGIC        ROUND(AVG(median_latency_minutes), 1) AS median_latency_minutes
# MAGIC FROM ops_submission_health_daily
# MAGIC GROUP BY status
# MAGIC ORDER BY usage_hours DESC

# COMMAND ----------

# MAGIC %md
# MAGIC ## 4. Which subscription types generate the usage?
# MAGIC Usage events per plan, renewal interval and offer type (SaaS or managed application).

# COMMAND ----------

by_type = (
    spark.table("ops_usage_by_subscription_type_daily")
    .groupBy("plan_id", "renewal_interval", "offer_type")
    .agg(F.sum("events").alias("events"), F.sum("quantity").alias("quantity"))
    .orderBy(F.desc("events"))
    .toPandas()
)
px.bar(by_type, x="plan_id", y="events", color="offer_type", facet_col="renewal_interval",
       title="Usage events by subscription type").show()

# COMMAND ----------

# MAGIC %sql
# MAGIC SELECT plan_id, renewal_interval, offer_type, SUM(events) AS events, SUM(quantity) AS quantity
# MAGIC FROM ops_usage_by_subscription_type_daily
# MAGIC GROUP BY plan_id, renewal_interval, offer_type
# MAGIC ORDER BY events DESC

# COMMAND ----------

# MAGIC %md
# MAGIC ## The event totals from Scala
# MAGIC The same gold table read from a Scala cell.

# COMMAND ----------

# MAGIC %scala
# MAGIC import org.apache.spark.sql.functions._
# MAGIC val catalog = dbutils.widgets.get("catalog")
# MAGIC val goldSchema = dbutils.widgets.get("gold_schema")
# MAGIC val eventsByPartition = spark.table(s"$catalog.$goldSchema.ops_event_totals_daily")
# MAGIC   .groupBy("partition_id")
# MAGIC   .agg(sum("events").as("events"), sum("quarantined_events").as("quarantined_events"))
# MAGIC   .orderBy("partition_id")
# MAGIC display(eventsByPartition)
