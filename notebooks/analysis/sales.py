# Databricks notebook source
# MAGIC %md
# MAGIC # Sales analysis
# MAGIC
# MAGIC The Sales persona's questions, each answered twice: with the DataFrame API and a plotly chart
# MAGIC (Python), and as SQL (use the cell's chart editor for the same chart). The gold tables are
# MAGIC described in `docs/tables.md`, the metrics in `docs/metrics.md`; the Sales dashboard
# MAGIC (`dashboards/sales.lvdash.json`) shows the same answers.
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
# MAGIC ## 1. Which products bring the revenue?
# MAGIC Net revenue (after the Marketplace store fee) per plan and dimension; `(recurring)` is the plan's fee.

# COMMAND ----------

revenue_by_product = (
    spark.table("sales_revenue_by_product_monthly")
    .groupBy("plan_id", "dimension")
    .agg(F.sum("net_revenue").cast("double").alias("net_revenue"))
    .orderBy(F.desc("net_revenue"))
    .toPandas()
)
px.bar(revenue_by_product, x="dimension", y="net_revenue", color="plan_id",
       title="Net revenue by product").show()

# COMMAND ----------

# MAGIC %sql
# MAGIC SELECT plan_id, dimension, CAST(SUM(net_revenue) AS DOUBLE) AS net_revenue
# MAGIC FROM sales_revenue_by_product_monthly
# MAGIC GROUP BY plan_id, dimension
# MAGIC ORDER BY net_revenue DESC

# COMMAND ----------

# MAGIC %md
# MAGIC ## 2. How does MRR move month to month?
# MAGIC MRR per month and plan, and its movements: new, expansion, contraction, churned.

# COMMAND ----------

mrr = (
    spark.table("sales_mrr")
    .groupBy("month")
    .agg(*[F.sum(c).cast("double").alias(c) for c in ("mrr", "new_mrr", "expansion_mrr", "contraction_mrr", "churned_mrr")])
    .orderBy("month")
    .toPandas()
)
px.bar(mrr, x="month", y=["new_mrr", "expansion_mrr", "contraction_mrr", "churned_mrr"],
       title="MRR movements per month").show()

# COMMAND ----------

# MAGIC %sql
# MAGIC SELECT month,
# MAGIC        CAST(SUM(mrr) AS DOUBLE) AS mrr,
# MAGIC        CAST(SUM(new_mrr) AS DOUBLE) AS new_mrr,
# MAGIC        CAST(SUM(expansion_mrr) AS DOUBLE) AS expansion_mrr,
# MAGIC        CAST(SUM(contraction_mrr) AS DOUBLE) AS contraction_mrr,
# MAGIC        CAST(SUM(churned_mrr) AS DOUBLE) AS churned_mrr
# MAGIC FROM sales_mrr
# MAGIC GROUP BY month
# MAGIC ORDER BY month

# COMMAND ----------

# MAGIC %md
# MAGIC ## 3. Which products run into overage, and which alerts are open?
# MAGIC Overage quantity per product, and the alerts of the current period (thresholds in `conf/gold.yml`).

# COMMAND ----------

overage = (
    spark.table("sales_usage_by_product_daily")
    .groupBy("plan_id", "meter_name")
    .agg(F.sum("quantity").alias("quantity"), F.sum("overage_quantity").alias("overage_quantity"))
    .withColumn("overage_share", F.round(F.col("overage_quantity") / F.col("quantity"), 3))
    .orderBy(F.desc("overage_quantity"))
    .toPandas()
)
px.bar(overage, x="meter_name", y="overage_quantity", color="plan_id", title="Overage by product").show()
display(spark.table("overage_alerts").where("is_current"))

# COMMAND ----------

# MAGIC %sql
# MAGIC SELECT plan_id, meter_name, SUM(quantity) AS quantity, SUM(overage_quantity) AS overage_quantity,
# MAGIC        ROUND(SUM(overage_quantity) / SUM(quantity), 3) AS overage_share
# MAGIC FROM sales_usage_by_product_daily
# MAGIC GROUP BY plan_id, meter_name
# MAGIC ORDER BY overage_quantity DESC

# COMMAND ----------

# MAGIC %md
# MAGIC ## 4. When do customers use the products?
# MAGIC Usage events by day of week and hour of day (time zone in `conf/gold.yml`).

# COMMAND ----------

heatmap = (
    spark.table("sales_usage_heatmap")
    .groupBy("day_of_week", "hour_of_day")
    .agg(F.sum("events").alias("events"))
    .toPandas()
    .pivot(index="day_of_week", columns="hour_of_day", values="events")
)
px.imshow(heatmap, labels={"x": "hour of day", "y": "day of week (1 = Monday)", "color": "events"},
          title="Usage events by weekday and hour").show()

# COMMAND ----------

# MAGIC %sql
# MAGIC SELECT day_of_week, hour_of_day, SUM(events) AS events
# MAGIC FROM sales_usage_heatmap
# MAGIC GROUP BY day_of_week, hour_of_day
# MAGIC ORDER BY day_of_week, hour_of_day

# COMMAND ----------

# MAGIC %md
# MAGIC ## 5. Do the plans fit what customers use?
# MAGIC Share of completed billing cycles under 25 %, between 25 and 100 %, and over 100 % of the included quantity.

# COMMAND ----------

plan_fit = (
    spark.table("sales_plan_fit")
    .groupBy("plan_id", "meter_name")
    .agg(F.sum("completed_cycles").alias("completed_cycles"),
         *[F.sum(c).alias(c) for c in ("cycles_under_25pct", "cycles_25_to_100pct", "cycles_over_100pct")])
    .where("completed_cycles > 0")
    .toPandas()
)
for column in ("cycles_under_25pct", "cycles_25_to_100pct", "cycles_over_100pct"):
    plan_fit[column.replace("cycles_", "share_")] = (plan_fit[column] / plan_fit["completed_cycles"]).round(3)
px.bar(plan_fit, x="meter_name", y=["share_under_25pct", "share_25_to_100pct", "share_over_100pct"],
       facet_col="plan_id", title="Plan fit").show()

# COMMAND ----------

# MAGIC %sql
# MAGIC SELECT plan_id, meter_name, SUM(completed_cycles) AS completed_cycles,
# MAGIC        ROUND(SUM(cycles_under_25pct) / SUM(completed_cycles), 3) AS share_under_25pct,
# MAGIC        ROUND(SUM(cycles_25_to_100pct) / SUM(completed_cycles), 3) AS share_25_to_100pct,
# MAGIC        ROUND(SUM(cycles_over_100pct) / SUM(completed_cycles), 3) AS share_over_100pct
# MAGIC FROM sales_plan_fit
# MAGIC GROUP BY plan_id, meter_name
# MAGIC HAVING SUM(completed_cycles) > 0

# COMMAND ----------

# MAGIC %md
# MAGIC ## The MRR table from Scala
# MAGIC The same gold table read from a Scala cell (the session and its current schema are shared).

# COMMAND ----------

# MAGIC %scala
# MAGIC import org.apache.spark.sql.functions._
# MAGIC val catalog = dbutils.widgets.get("catalog")
# MAGIC val goldSchema = dbutils.widgets.get("gold_schema")
# MAGIC val mrrByMonth = spark.table(s"$catalog.$goldSchema.sales_mrr")
# MAGIC   .groupBy("month")
# MAGIC   .agg(sum("mrr").as("mrr"), sum("active_subscriptions").as("active_subscriptions"))
# MAGIC   .orderBy("month")
# MAGIC display(mrrByMonth)
