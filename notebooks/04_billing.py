# Databricks notebook source
# MAGIC %md
# MAGIC # Billing: silver -> the gold billing tables
# MAGIC
# MAGIC Recomputes `gold.marketplace_usage`, `gold.included_balance`, `gold.billing_reconciliation` and
# MAGIC `gold.revenue_daily` from silver, with the price catalog in `conf/prices.yml`.
# MAGIC
# MAGIC Parameters come from the widgets (filled by the job's `base_parameters`, see
# MAGIC `resources/ingestion.job.yml`); run locally, from `METERING_<NAME>` environment variables.
# MAGIC The cluster needs the `metering-analytics` wheel (the bundle's job installs it). See docs/databricks.md.

# COMMAND ----------

from metering_analytics import jobs

params = jobs.notebook_params(globals().get("dbutils"))

# COMMAND ----------

result = jobs.run_stage("billing", params)
print(result)
