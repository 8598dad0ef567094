# Databricks notebook source
# MAGIC %md
# MAGIC # Customer success analysis
# MAGIC
# MAGIC The Customer success persona's questions, each answered twice: with the DataFrame API and a plotly
# MAGIC chart (Python), and as SQL. Tables: `docs/tables.md`; metrics: `docs/metrics.md`; the Customer
# MAGIC success dashboard (`dashboards/customer_success.lvdash.json`) shows the same answers, and its
# MAGIC "Subscription report" page is the report an account executive shares with one customer.
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
# MAGIC ## 1. How does consumption trend, per plan and meter?
# MAGIC Quantity per day (`cs_consumption_hourly` has the same per hour).

# COMMAND ----------

consumption = (
    spark.table("cs_consumption_daily")
    .groupBy("day", "plan_id")
    .agg(F.sum("quantity").alias("quantity"), F.countDistinct("subscription_key").alias("subscriptions"))
    .orderBy("day")
    .toPandas()
)
px.area(consumption, x="day", y="quantity", color="plan_id", title="Consumption per day by plan").show()

# COMMAND ----------

# MAGIC %sql
# MAGIC SELECT day, plan_id, SUM(quantity) AS quantity, COUNT(DISTINCT subscription_key) AS subscriptions
# MAGIC FROM cs_consumption_daily
# MAGIC GROUP BY day, plan_id
# MAGIC ORDER BY day, plan_id

# COMMAND ----------

# MAGIC %md
# MAGIC ## 2. Who will run out of included quantity this cycle, and by how much will they go over?
# MAGIC Current cycle per subscription and meter: used so far, run-rate projection to the cycle's end.

# COMMAND ----------

at_risk_of_overage = (
    spark.table("cs_current_cycle")
    .where(F.col("projected_overage") > 0)
    .select("subscription_key", "plan_id", "meter_name", "included_quantity", "used_quantity",
            "projected_usage", "projected_overage", "run_out_date")
    .orderBy(F.desc("projected_overage"))
    .toPandas()
)
px.bar(at_risk_of_overage.head(20), x="subscription_key", y="projected_overage", color="meter_name",
       title="Projected overage this cycle").show()

# COMMAND ----------

# MAGIC %sql
# MAGIC SELECT subscription_key, plan_id, meter_name, included_quantity, used_quantity,
# MAGIC        projected_usage, projected_overage, run_out_date
# MAGIC FROM cs_current_cycle
# MAGIC WHERE projected_overage > 0
# MAGIC ORDER BY projected_overage DESC

# COMMAND ----------

# MAGIC %md
# MAGIC ## 3. Which customers use the product less and less?
# MAGIC Active subscriptions by the change of their usage events in the last 4 weeks against the 4 weeks
# MAGIC before, the steepest fall first.

# COMMAND ----------

declining = (
    spark.table("cs_subscription_summary")
    .where((F.col("status") == "active") & F.col("usage_trend_percent").isNotNull())
    .select("subscription_key", "plan_id", "usage_events_last_4_weeks", "usage_events_prior_4_weeks",
            "usage_trend_percent", "last_activity")
    .orderBy("usage_trend_percent")
    .toPandas()
)
px.histogram(declining, x="usage_trend_percent", nbins=20,
             title="Usage trend of active subscriptions (%)").show()
display(declining)

# COMMAND ----------

# MAGIC %sql
# MAGIC SELECT subscription_key, plan_id, usage_events_last_4_weeks, usage_events_prior_4_weeks,
# MAGIC        usage_trend_percent, last_activity
# MAGIC FROM cs_subscription_summary
# MAGIC WHERE status = 'active' AND usage_trend_percent IS NOT NULL
# MAGIC ORDER BY usage_trend_percent

# COMMAND ----------

# MAGIC %md
# MAGIC ## The current cycle from Scala
# MAGIC The same gold table read from a Scala cell.

# COMMAND ----------

# MAGIC %scala
# MAGIC import org.apache.spark.sql.functions._
# MAGIC val catalog = dbutils.widgets.get("catalog")
# MAGIC val goldSchema = dbutils.widgets.get("gold_schema")
# MAGIC val overageByPlan = spark.table(s"$catalog.$goldSchema.cs_current_cycle")
# MAGIC   .groupBy("plan_id", "meter_name")
# MAGIC   .agg(sum("used_quantity").as("used_quantity"), sum("projected_overage").as("projected_overage"))
# MAGIC   .orderBy(desc("projected_overage"))
# MAGIC display(overageByPlan)
