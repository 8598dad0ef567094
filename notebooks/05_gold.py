# Databricks notebook source
# MAGIC %md
# MAGIC # Gold: the persona tables (sales, operations, customer success)
# MAGIC
# MAGIC Rebuilds the persona tables behind the dashboards from silver and the gold billing tables.
# MAGIC
# MAGIC Parameters come from the widgets (filled by the job's `base_parameters`, see
# MAGIC `resources/ingestion.job.yml`); run locally, from `METERING_<NAME>` environment variables.
# MAGIC The cluster needs the `metering-analytics` wheel (the bundle's job installs it). See docs/databricks.md.

# COMMAND ----------

from metering_analytics import jobs

params = jobs.notebook_params(globals().get("dbutils"))

# COMMAND ----------

result = jobs.run_stage("gold", params)
print(result)
