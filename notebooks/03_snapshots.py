# Databricks notebook source
# MAGIC %md
# MAGIC # Snapshots: accelerator state files -> `bronze.accelerator_snapshots`, silver snapshot tables
# MAGIC
# MAGIC Reads `{partitionId}/latest.json.gz` below `snapshot_source_path`, keeps each distinct content once
# MAGIC and rebuilds `silver.meter_snapshots` and `silver.snapshot_usage_to_be_reported`.
# MAGIC
# MAGIC Parameters come from the widgets (filled by the job's `base_parameters`, see
# MAGIC `resources/ingestion.job.yml`); run locally, from `METERING_<NAME>` environment variables.
# MAGIC The cluster needs the `metering-analytics` wheel (the bundle's job installs it). See docs/databricks.md.

# COMMAND ----------

from metering_analytics import jobs

params = jobs.notebook_params(globals().get("dbutils"))

# COMMAND ----------

result = jobs.run_stage("snapshots", params)
print(result)
