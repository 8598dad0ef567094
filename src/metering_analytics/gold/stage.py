"""The gold stage: silver facts and the gold billing tables -> the persona tables, rebuilt on every run.

Like billing, every persona table is a function of the whole history (runs, trends, cycles), so each
is overwritten in one Delta commit. silver.usage_events is aggregated once per grain: the hourly
consumption table is written first and the daily, product and subscription-type tables are rolled up
from what was written, so they all agree with each other.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Callable, Mapping

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from metering_analytics.billing.prices import PriceCatalog, unit_price_frame
from metering_analytics.billing.stage import GOLD_BILLING_SCHEMAS, require_utc_session, utc_naive
from metering_analytics.gold import customer_success as cs
from metering_analytics.gold import operations as ops
from metering_analytics.gold import sales
from metering_analytics.gold.alerts import (
    OVERAGE_ALERTS_SCHEMA,
    assert_no_overage_alerts,
    format_alerts,
    overage_alerts,
)
from metering_analytics.gold.mrr import SALES_MRR_SCHEMA, sales_mrr, subscription_mrr
from metering_analytics.gold.properties import USAGE_BY_PROPERTY_SCHEMA, usage_by_property
from metering_analytics.gold.settings import GoldSettings, thresholds_frame
from metering_analytics.config import PROJECT_ROOT
from metering_analytics.gold.views import create_views, view_definitions
from metering_analytics.io.lakehouse import Lakehouse, with_columns_of
from metering_analytics.io.table_docs import TableDoc, comment_tables, documented, load_table_docs
from metering_analytics.schemas import (
    BRONZE_EVENTS_SCHEMA,
    SILVER_MAINTENANCE_SCHEMA,
    SILVER_MARKETPLACE_SUBMISSIONS_SCHEMA,
    SILVER_PINGS_SCHEMA,
    SILVER_PLAN_DIMENSIONS_SCHEMA,
    SILVER_QUARANTINE_SCHEMA,
    SILVER_SUBSCRIPTION_LIFECYCLE_SCHEMA,
    SILVER_SUBSCRIPTIONS_SCHEMA,
    SILVER_USAGE_EVENTS_SCHEMA,
)

OVERAGE_ALERTS = "overage_alerts"
# In the order they are written.
GOLD_PERSONA_SCHEMAS: dict[str, StructType] = {
    "cs_consumption_hourly": cs.CONSUMPTION_HOURLY_SCHEMA,
    "cs_consumption_daily": cs.CONSUMPTION_DAILY_SCHEMA,
    "cs_current_cycle": cs.CURRENT_CYCLE_SCHEMA,
    "cs_subscription_summary": cs.SUBSCRIPTION_SUMMARY_SCHEMA,
    "sales_usage_by_product_hourly": sales.USAGE_BY_PRODUCT_HOURLY_SCHEMA,
    "sales_usage_by_product_daily": sales.USAGE_BY_PRODUCT_DAILY_SCHEMA,
    "sales_revenue_by_product_daily": sales.REVENUE_BY_PRODUCT_DAILY_SCHEMA,
    "sales_revenue_by_product_monthly": sales.REVENUE_BY_PRODUCT_MONTHLY_SCHEMA,
    "sales_mrr": SALES_MRR_SCHEMA,
    "sales_top_customers": sales.TOP_CUSTOMERS_SCHEMA,
    OVERAGE_ALERTS: OVERAGE_ALERTS_SCHEMA,
    "sales_usage_heatmap": sales.HEATMAP_SCHEMA,
    "sales_trends": sales.TRENDS_SCHEMA,
    "sales_plan_fit": sales.PLAN_FIT_SCHEMA,
    "usage_by_property": USAGE_BY_PROPERTY_SCHEMA,
    "ops_event_totals_hourly": ops.EVENT_TOTALS_HOURLY_SCHEMA,
    "ops_event_totals_daily": ops.EVENT_TOTALS_DAILY_SCHEMA,
    "ops_events_by_subscription_daily": ops.EVENTS_BY_SUBSCRIPTION_DAILY_SCHEMA,
    "ops_usage_by_subscription_type_daily": ops.USAGE_BY_SUBSCRIPTION_TYPE_DAILY_SCHEMA,
    "ops_throughput": ops.THROUGHPUT_SCHEMA,
    "ops_submission_health_daily": ops.SUBMISSION_HEALTH_DAILY_SCHEMA,
    "ops_data_quality_daily": ops.DATA_QUALITY_DAILY_SCHEMA,
    "ops_data_freshness": ops.DATA_FRESHNESS_SCHEMA,
}

_SILVER = {
    "subscriptions": SILVER_SUBSCRIPTIONS_SCHEMA,
    "plan_dimensions": SILVER_PLAN_DIMENSIONS_SCHEMA,
    "usage_events": SILVER_USAGE_EVENTS_SCHEMA,
    "marketplace_submissions": SILVER_MARKETPLACE_SUBMISSIONS_SCHEMA,
    "pings": SILVER_PINGS_SCHEMA,
    "maintenance": SILVER_MAINTENANCE_SCHEMA,
    "subscription_lifecycle": SILVER_SUBSCRIPTION_LIFECYCLE_SCHEMA,
    "quarantine": SILVER_QUARANTINE_SCHEMA,
}
# The clock when there is no data at all: every table is then empty.
_NO_DATA_CLOCK = datetime(1970, 1, 1)


def project_dir(settings: GoldSettings) -> Path:
    """The project folder the settings were read from (`<project>/conf/gold.yml`): where docs/ and sql/
    are, also on Databricks, where the bundle syncs the repository. Else this package's project."""
    source = Path(settings.source)
    if source.is_file() and source.resolve().parent.name == "conf":
        return source.resolve().parent.parent
    return PROJECT_ROOT


def run_gold(spark: SparkSession, lakehouse: Lakehouse, settings: GoldSettings, as_of: datetime | None,
             prices: PriceCatalog, project: Path | None = None) -> dict[str, int]:
    """Rebuild every persona table; returns {"gold.<table>": row count}.

    `as_of` is the report clock (naive means UTC); the pipeline passes the latest enqueued time. None
    takes that from bronze.events here. `prices` values MRR and submissions (billing's catalog).
    `project` holds docs/ (table and column comments of every gold table) and sql/views/ (the SQL views
    created at the end); default: project_dir(settings).
    """
    project = project or project_dir(settings)
    docs = load_table_docs(project / "docs")
    require_utc_session(spark)
    silver = {t: lakehouse.read_or_empty(spark, "silver", t, schema) for t, schema in _SILVER.items()}
    billing = {t: lakehouse.read_or_empty(spark, "gold", t, schema) for t, schema in GOLD_BILLING_SCHEMAS.items()}
    bronze = lakehouse.read_or_empty(spark, "bronze", "events", BRONZE_EVENTS_SCHEMA)
    if as_of is None:
        as_of = bronze.agg(F.max("enqueued_time")).first()[0] or _NO_DATA_CLOCK
    as_of = utc_naive(as_of)
    write = _writer(lakehouse, docs)
    read = lambda table: lakehouse.read(spark, "gold", table)  # noqa: E731
    usage, subscriptions, plan_dimensions = silver["usage_events"], silver["subscriptions"], silver["plan_dimensions"]
    included_balance, revenue = billing["included_balance"], billing["revenue_daily"]

    # Customer success first: its hourly consumption is the base of every usage table.
    write("cs_consumption_hourly", cs.consumption_hourly(usage))
    hourly = read("cs_consumption_hourly")
    write("cs_consumption_daily", cs.consumption_daily(hourly))
    daily = read("cs_consumption_daily")
    write("cs_current_cycle", cs.current_cycle(included_balance, as_of))
    write("cs_subscription_summary", cs.subscription_summary(subscriptions, included_balance, hourly, as_of))

    write("sales_usage_by_product_hourly",
          sales.usage_by_product_hourly(hourly, billing["marketplace_usage"], plan_dimensions))
    write("sales_usage_by_product_daily", sales.usage_by_product_daily(read("sales_usage_by_product_hourly")))
    write("sales_revenue_by_product_daily", sales.revenue_by_product_daily(revenue))
    write("sales_revenue_by_product_monthly", sales.revenue_by_product_monthly(revenue))
    # Small (subscriptions x months) and used twice: computed once.
    months = subscription_mrr(subscriptions, billing["billing_reconciliation"], prices, as_of).localCheckpoint()
    write("sales_mrr", sales_mrr(months, prices.currency))
    write("sales_top_customers", sales.top_customers(months, daily, settings.top_customers))
    write(OVERAGE_ALERTS, overage_alerts(billing["marketplace_usage"], included_balance, plan_dimensions,
                                         thresholds_frame(spark, settings), as_of))
    write("sales_usage_heatmap",
          sales.usage_heatmap(usage, settings.heatmap_timezone, settings.heatmap_lookback_days, as_of))
    write("sales_trends", sales.trends(daily, revenue, as_of))
    write("sales_plan_fit", sales.plan_fit(subscriptions, plan_dimensions, included_balance, as_of))
    write("usage_by_property", usage_by_property(usage, settings.property_keys, settings.property_top_values))

    classified = ops.classified_messages(usage, silver["marketplace_submissions"], silver["pings"],
                                         silver["maintenance"], silver["subscription_lifecycle"], silver["quarantine"])
    write("ops_event_totals_hourly", ops.event_totals_hourly(bronze, classified))
    write("ops_event_totals_daily", ops.event_totals_daily(read("ops_event_totals_hourly")))
    write("ops_events_by_subscription_daily",
          ops.events_by_subscription_daily(daily, silver["marketplace_submissions"], subscriptions))
    write("ops_usage_by_subscription_type_daily", ops.usage_by_subscription_type_daily(daily, subscriptions))
    write("ops_throughput", ops.throughput(bronze, settings.capacity_events_per_second))
    write("ops_submission_health_daily",
          ops.submission_health_daily(silver["marketplace_submissions"], billing["billing_reconciliation"],
                                      unit_price_frame(spark, prices), prices.currency))
    write("ops_data_quality_daily", ops.data_quality_daily(silver["quarantine"]))
    write("ops_data_freshness", ops.data_freshness(bronze, as_of))
    finish_gold_layer(spark, lakehouse, docs, project / "sql" / "views")
    return {f"gold.{table}": read(table).count() for table in GOLD_PERSONA_SCHEMAS}


def finish_gold_layer(spark: SparkSession, lakehouse: Lakehouse, docs: Mapping[str, TableDoc],
                      views_dir: Path) -> dict:
    """Comment every gold table present from the docs (billing's and any other stage's too), then
    create the SQL views; returns what was done, for a report."""
    comments = comment_tables(spark, lakehouse, "gold", docs)
    views = create_views(spark, lakehouse, view_definitions(views_dir))
    return {**comments, "views": views}


def report_overage_alerts(spark: SparkSession, lakehouse: Lakehouse, settings: GoldSettings,
                          progress: Callable[[str], None]) -> None:
    """Print the current overage alerts; with overage_alerts.fail_on_alert, fail like a job's check."""
    alerts = lakehouse.read(spark, "gold", OVERAGE_ALERTS)
    for line in format_alerts(alerts):
        progress(line)
    if settings.fail_on_overage_alert:
        assert_no_overage_alerts(alerts)


def _writer(lakehouse: Lakehouse, docs: Mapping[str, TableDoc]) -> Callable[[str, DataFrame], None]:
    def write(table: str, df: DataFrame) -> None:
        # The column comments travel in the schema: the write stores them, no extra commit.
        shaped = documented(with_columns_of(df, GOLD_PERSONA_SCHEMAS[table]), docs.get(f"gold.{table}"))
        lakehouse.overwrite(shaped, "gold", table)
    return write
