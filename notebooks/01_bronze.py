# Databricks notebook source
# MAGIC %md
# MAGIC # Bronze: Event Hubs Capture files -> `bronze.events`
# MAGIC
# MAGIC Reads the Capture files that are new since the last run (Auto Loader on Databricks, a file stream
# MAGIC locally; checkpoint under `checkpoint_location`) and MERGEs their records into `bronze.events`.
# MAGIC
# MAGIC Parameters come from the widgets (filled by the job's `base_parameters`, see
# MAGIC `resources/ingestion.job.yml`); run locally, from `METERING_<NAME>` environment variables.
# MAGIC The cluster needs the `metering-analytics` wheel (the bundle's job installs it). See docs/databricks.md.

# COMMAND ----------

from metering_analytics import jobs

params = jobs.notebook_params(globals().get("dbutils"))

# COMMAND ----------

result = jobs.run_stage("bronze", params)
print(result)
