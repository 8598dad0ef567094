# Databricks notebook source
# MAGIC %md
# MAGIC # Forecasts
# MAGIC
# MAGIC  event totals per hour and day, with intervals:Fits the forecast models on the gold event totals and writes their forecasts and the capacity plan (gold.forecast_event_totals, gold.capacity_plan, gold.subscription_usage_projection).
# MAGIC
# MAGIC Parameters come from the widgets (filled by the job's `base_parameters`, see
# MAGIC `resources/models.job.yml`); run locally, from `METERING_<NAME>` environment variables.
# MAGIC The cluster needs the `metering-analytics` wheel (the bundle's job installs it). See docs/databricks.md.

# COMMAND ----------

from metering_analytics import jobs

params = jobs.notebook_params(globals().get("dbutils"))

# COMMAND ----------

result = jobs.run_stage("forecasts", params)
print(result)
