# Databricks notebook source
# MAGIC %md
# MAGIC # Silver: `bronze.events` -> typed silver tables and `silver.quarantine`
# MAGIC
# MAGIC Streams the bronze records added since the last run (checkpoint under `checkpoint_location`), parses
# MAGIC them with explicit schemas and MERGEs them into the silver tables; every record lands in exactly one.
# MAGIC
# MAGIC Parameters come from the widgets (filled by the job's `base_parameters`, see
# MAGIC `resources/ingestion.job.yml`); run locally, from `METERING_<NAME>` environment variables.
# MAGIC The cluster needs the `metering-analytics` wheel (the bundle's job installs it). See docs/databricks.md.

# COMMAND ----------

from metering_analytics import jobs

params = jobs.notebook_params(globals().get("dbutils"))

# COMMAND ----------

result = jobs.run_stage("silver", params)
print(result)
