# Databricks notebook source
# MAGIC %md
# MAGIC # Churn risk per subscription
# MAGIC
# MAGIC Scores every active subscription's churn risk with the reasons behind it (gold.churn_risk).
# MAGIC
# MAGIC Parameters come from the widgets (filled by the job's `base_parameters`, see
# MAGIC `resources/models.job.yml`); run locally, from `METERING_<NAME>` environment variables.
# MAGIC The cluster needs the `metering-analytics` wheel (the bundle's job installs it). See docs/databricks.md.

# COMMAND ----------

from metering_analytics import jobs

params = jobs.notebook_params(globals().get("dbutils"))

# COMMAND ----------

result = jobs.run_stage("churn", params)
print(result)
