# Databricks notebook source
# MAGIC %md
# MAGIC # Plan and add-on recommendations
# MAGIC
# MAGIC Suggests, per subscription, another plan or add-on that would cost the customer less (gold.plan_recommendations).
# MAGIC
# MAGIC Parameters come from the widgets (filled by the job's `base_parameters`, see
# MAGIC `resources/models.job.yml`); run locally, from `METERING_<NAME>` environment variables.
# MAGIC The cluster needs the `metering-analytics` wheel (the bundle's job installs it). See docs/databricks.md.

# COMMAND ----------

from metering_analytics import jobs

params = jobs.notebook_params(globals().get("dbutils"))

# COMMAND ----------

result = jobs.run_stage("recommendations", params)
print(result)
