"""The gold stage: silver facts and the gold billing tables -> the persona tables, refreshed incrementally.

A full rebuild overwrites every persona table in one Delta commit each. silver.usage_events is
aggregated once per grain: the hourly consumption table is written first and the daily, product and
subscription-type tables are rolled up from what was written, so they all agree with each other.

After that, a run reads what changed since its last run (Delta Change Data Feed of silver, bronze.events,
gold.marketplace_usage and gold.billing_reconciliation) and recomputes, with the same functions, only
the hours and days of the time-grained tables that those changes touch, replacing those periods in one
commit per table.
usage_by_property ranks values from per-value totals kept from the usage feed; ops_data_freshness adds
the appended bronze records to its own rows. The small tables that summarise the whole history or
depend on the report clock are recomputed whole from the (already refreshed) gold tables and
overwritten, unless none of their sources moved. The result is identical to a full rebuild; a run with
nothing new writes nothing (see docs/incremental.md).
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Callable, Mapping

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from metering_analytics.billing.prices import PriceCatalog, unit_price_frame
from metering_analytics.billing.reconciliation import attribute_to_subscriptions
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
from metering_analytics.gold.properties import (
    USAGE_BY_PROPERTY_SCHEMA,
    VALUE_TOTALS_SCHEMA,
    add_totals,
    fold_properties,
    property_details,
    top_values,
    value_totals,
)
from metering_analytics.gold.settings import GoldSettings, thresholds_frame
from metering_analytics.config import PROJECT_ROOT
from metering_analytics.gold.views import create_views, view_definitions
from metering_analytics.incremental.changes import (
    SIGN,
    ChangesUnavailable,
    changed_rows,
    union_all,
)
from metering_analytics.incremental.periods import (
    DAY,
    HOUR,
    collect_periods,
    days_of,
    in_periods,
    period_text,
    replace_periods,
    restricted,
    sql_string,
)
from metering_analytics.incremental.state import clear_state, load_state, save_state, settings_hash
from metering_analytics.incremental.subscriptions import subscription_changes_since
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
STAGE = "gold"
# Raise when a change of the gold code must rebuild the tables it wrote before.
# 2: gold.incremental_property_totals.
CODE_VERSION = 2
# Per property key and value over the whole history: the top-N ranking of usage_by_property.
PROPERTY_TOTALS = "incremental_property_totals"
# Sources whose change feed the incremental run reads (the subscriptions are compared whole).
_FEEDS = ("silver.usage_events", "silver.marketplace_submissions", "silver.pings", "silver.maintenance",
          "silver.subscription_lifecycle", "silver.quarantine", "bronze.events", "gold.marketplace_usage",
          "gold.billing_reconciliation")
# Tables recomputed whole, and what each one reads ("as_of": the report clock). A run whose sources
# and clock are those of the last run for a table leaves the table as it is: its rows cannot differ.
# gold.cs_consumption_* are functions of silver.usage_events and stand for it.
_WHOLE_INPUTS: dict[str, tuple[str, ...]] = {
    "cs_current_cycle": ("gold.included_balance", "as_of"),
    "cs_subscription_summary": ("silver.subscriptions", "gold.included_balance", "silver.usage_events", "as_of"),
    "sales_revenue_by_product_daily": ("gold.revenue_daily",),
    "sales_revenue_by_product_monthly": ("gold.revenue_daily",),
    "sales_mrr": ("silver.subscriptions", "gold.billing_reconciliation", "as_of"),
    "sales_top_customers": ("silver.subscriptions", "gold.billing_reconciliation", "silver.usage_events", "as_of"),
    OVERAGE_ALERTS: ("gold.marketplace_usage", "gold.included_balance", "silver.plan_dimensions", "as_of"),
    "sales_usage_heatmap": ("silver.usage_events", "as_of"),
    "sales_trends": ("silver.usage_events", "gold.revenue_daily", "as_of"),
    "sales_plan_fit": ("silver.subscriptions", "silver.plan_dimensions", "gold.included_balance", "as_of"),
    "ops_data_quality_daily": ("silver.quarantine",),
}
# Tables refreshed by the hours or days that changed (usage_by_property: also every day of a key whose
# top values moved; ops_data_freshness from its own rows); every other persona table is recomputed whole.
TIME_GRAINED = ("cs_consumption_hourly", "cs_consumption_daily", "sales_usage_by_product_hourly",
                "sales_usage_by_product_daily", "ops_event_totals_hourly", "ops_event_totals_daily",
                "ops_events_by_subscription_daily", "ops_usage_by_subscription_type_daily", "ops_throughput",
                "ops_submission_health_daily", "usage_by_property")
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
             prices: PriceCatalog, project: Path | None = None, full_rebuild: bool = False) -> dict[str, int]:
    """Bring every persona table up to date; returns {"gold.<table>": row count}.

    `as_of` is the report clock (naive means UTC); the pipeline passes the latest enqueued time. None
    takes that from bronze.events here. `prices` values MRR and submissions (billing's catalog).
    `project` holds docs/ (table and column comments of every gold table) and sql/views/ (the SQL views
    created at the end); default: project_dir(settings). The run is incremental when the last run's
    state is usable (same settings, prices and code, change feeds readable); otherwise, or with
    `full_rebuild`, every table is rebuilt.
    """
    project = project or project_dir(settings)
    docs = load_table_docs(project / "docs")
    require_utc_session(spark)
    # bronze.events is created without a change feed (the silver tables have one): switched on here,
    # once, before its version is taken, so the next run can read what was added since.
    if lakehouse.exists(spark, "bronze", "events"):
        lakehouse.enable_change_feed(spark, "bronze", "events")
    versions = {f"silver.{t}": lakehouse.version(spark, "silver", t) for t in _SILVER}
    versions["bronze.events"] = lakehouse.version(spark, "bronze", "events")
    versions.update({f"gold.{t}": lakehouse.version(spark, "gold", t) for t in GOLD_BILLING_SCHEMAS})
    silver = {t: _read_at(spark, lakehouse, "silver", t, schema, versions[f"silver.{t}"])
              for t, schema in _SILVER.items()}
    billing = {t: lakehouse.read_or_empty(spark, "gold", t, schema) for t, schema in GOLD_BILLING_SCHEMAS.items()}
    bronze = _read_at(spark, lakehouse, "bronze", "events", BRONZE_EVENTS_SCHEMA, versions["bronze.events"])
    if as_of is None:
        as_of = bronze.agg(F.max("enqueued_time")).first()[0] or _NO_DATA_CLOCK
    as_of = utc_naive(as_of)
    hash_ = settings_hash(CODE_VERSION, settings, prices)
    state = None if full_rebuild else load_state(spark, lakehouse, STAGE)
    tables_exist = all(lakehouse.exists(spark, "gold", t) for t in [*GOLD_PERSONA_SCHEMAS, PROPERTY_TOTALS])
    usable = state is not None and state.settings_hash == hash_ and tables_exist
    if not (usable and dict(state.versions) == versions and state.as_of == as_of):  # else nothing new
        changes = None
        if usable:
            try:
                changes = _gold_changes(spark, lakehouse, state, versions, silver)
            except ChangesUnavailable:
                changes = None
        clear_state(spark, lakehouse, STAGE)
        if changes is None:
            _write_time_grained(spark, lakehouse, docs, settings, prices, silver, billing, bronze)
            _write_properties(spark, lakehouse, docs, settings, silver["usage_events"])
            _writer(lakehouse, docs)("ops_data_freshness", ops.data_freshness(bronze, as_of))
            unchanged = set()
        else:
            _refresh_time_grained(spark, lakehouse, docs, settings, prices, silver, billing, bronze, changes)
            _refresh_properties(spark, lakehouse, docs, settings, silver["usage_events"], changes["usage_signed"])
            _refresh_freshness(spark, lakehouse, docs, bronze, changes["bronze_signed"], as_of)
            unchanged = _unchanged_whole(state, versions, as_of)
        _write_whole(spark, lakehouse, docs, settings, prices, silver, billing, as_of, skip=unchanged)
        save_state(spark, lakehouse, STAGE, versions, hash_, as_of)
    finish_gold_layer(spark, lakehouse, docs, project / "sql" / "views")
    return {f"gold.{table}": lakehouse.read(spark, "gold", table).count() for table in GOLD_PERSONA_SCHEMAS}


def _unchanged_whole(state, versions: dict, as_of: datetime) -> set[str]:
    """The whole tables none of whose sources (nor the clock, where it matters) moved since the last run."""
    same = {source for source, version in versions.items() if state.versions.get(source) == version}
    if state.as_of == as_of:
        same.add("as_of")
    return {table for table, inputs in _WHOLE_INPUTS.items() if set(inputs) <= same}


def _read_at(spark: SparkSession, lakehouse: Lakehouse, layer: str, table: str, schema, version: int | None):
    if version is None:
        return spark.createDataFrame([], schema)
    return lakehouse.read(spark, layer, table, version=version)


def _write_time_grained(spark, lakehouse, docs, settings, prices, silver, billing, bronze) -> None:
    """Full rebuild of the time-grained tables."""
    write = _writer(lakehouse, docs)
    read = lambda table: lakehouse.read(spark, "gold", table)  # noqa: E731
    usage, subscriptions = silver["usage_events"], silver["subscriptions"]
    # Customer success first: its hourly consumption is the base of every usage table.
    write("cs_consumption_hourly", cs.consumption_hourly(usage))
    write("cs_consumption_daily", cs.consumption_daily(read("cs_consumption_hourly")))
    write("sales_usage_by_product_hourly", sales.usage_by_product_hourly(
        read("cs_consumption_hourly"), billing["marketplace_usage"], silver["plan_dimensions"]))
    write("sales_usage_by_product_daily", sales.usage_by_product_daily(read("sales_usage_by_product_hourly")))
    write("ops_event_totals_hourly", ops.event_totals_hourly(bronze, _classified(silver)))
    write("ops_event_totals_daily", ops.event_totals_daily(read("ops_event_totals_hourly")))
    daily = read("cs_consumption_daily")
    write("ops_events_by_subscription_daily",
          ops.events_by_subscription_daily(daily, silver["marketplace_submissions"], subscriptions))
    write("ops_usage_by_subscription_type_daily", ops.usage_by_subscription_type_daily(daily, subscriptions))
    write("ops_throughput", ops.throughput(bronze, settings.capacity_events_per_second))
    write("ops_submission_health_daily",
          ops.submission_health_daily(silver["marketplace_submissions"], billing["billing_reconciliation"],
                                      unit_price_frame(spark, prices), prices.currency))


_RECORD_TABLES = ("usage_events", "marketplace_submissions", "pings", "maintenance", "subscription_lifecycle",
                  "quarantine")


def _classified(silver: dict[str, DataFrame]) -> DataFrame:
    return ops.classified_messages(silver["usage_events"], silver["marketplace_submissions"], silver["pings"],
                                   silver["maintenance"], silver["subscription_lifecycle"], silver["quarantine"])


def _gold_changes(spark: SparkSession, lakehouse: Lakehouse, state, versions: dict,
                  silver: dict[str, DataFrame]) -> dict | None:
    """Every source's changed rows since the state's versions; None when only a full rebuild is exact."""
    before = state.versions
    compared = subscription_changes_since(spark, lakehouse, before, silver)
    if compared is None:
        return None
    subs_before, subs_changed = compared
    if subs_changed.needs_full_rebuild:
        return None
    changes = {"dirty": subs_changed.dirty,
               "dirty_before": subs_before.join(subs_changed.dirty, "subscription_key", "left_semi")}
    signed = {"silver.usage_events": "usage_signed", "bronze.events": "bronze_signed"}
    for source in _FEEDS:
        layer, table = source.split(".")
        rows = changed_rows(spark, lakehouse, layer, table, before.get(source), versions[source],
                            signed=source in signed)
        if source in signed:
            changes[signed[source]] = rows
            rows = rows.drop(SIGN)
        changes[source] = rows
    return changes


def _refresh_time_grained(spark, lakehouse, docs, settings, prices, silver, billing, bronze, changes) -> None:
    """Recompute only the hours and days of the time-grained tables that the changes touch."""
    gold = lambda table: lakehouse.read(spark, "gold", table)  # noqa: E731
    replace = _replacer(lakehouse, docs)
    usage, subscriptions, submissions = silver["usage_events"], silver["subscriptions"], silver["marketplace_submissions"]
    periods = _changed_periods(silver, changes)

    # Consumption, usage by product and by subscription type: the hours and days with changed usage
    # (usage by product also those with changed expected overage).
    usage_hours = periods.get("usage", frozenset())
    usage_days = days_of(usage_hours)
    replace("cs_consumption_hourly", "hour", HOUR, usage_hours,
            cs.consumption_hourly(restricted(usage, "enqueued_time", HOUR, usage_hours)))
    replace("cs_consumption_daily", "day", DAY, usage_days, cs.consumption_daily(
        gold("cs_consumption_hourly").where(F.expr(in_periods("to_date(hour)", DAY, usage_days)))))
    product_hours = usage_hours | periods.get("expected", frozenset())
    product_days = days_of(product_hours)
    in_product_hours = in_periods("hour", HOUR, product_hours)
    replace("sales_usage_by_product_hourly", "hour", HOUR, product_hours, sales.usage_by_product_hourly(
        gold("cs_consumption_hourly").where(F.expr(in_product_hours)),
        billing["marketplace_usage"].where(F.expr(in_periods("effective_start_time", HOUR, product_hours))),
        silver["plan_dimensions"]))
    replace("sales_usage_by_product_daily", "day", DAY, product_days, sales.usage_by_product_daily(
        gold("sales_usage_by_product_hourly").where(F.expr(in_periods("to_date(hour)", DAY, product_days)))))
    daily = gold("cs_consumption_daily")
    replace("ops_usage_by_subscription_type_daily", "day", DAY, usage_days, ops.usage_by_subscription_type_daily(
        daily.where(F.expr(in_periods("day", DAY, usage_days))), subscriptions))

    # Submissions and lifecycle per subscription and day: days of changed usage or submissions, the
    # purchase and deletion days of new or newly deleted subscriptions, and the days of submissions
    # that name them (attribution).
    subscription_days = usage_days | periods.get("subscription_day", frozenset())
    replace("ops_events_by_subscription_daily", "day", DAY, subscription_days, ops.events_by_subscription_daily(
        daily.where(F.expr(in_periods("day", DAY, subscription_days))),
        restricted(submissions, "enqueued_time", DAY, subscription_days), subscriptions))

    # Records per hour: the hours of any changed record, in bronze or in a silver table.
    record_hours = periods.get("record", frozenset())
    in_hours = {t: restricted(silver[t], "enqueued_time", HOUR, record_hours) for t in _RECORD_TABLES}
    replace("ops_event_totals_hourly", "hour", HOUR, record_hours, ops.event_totals_hourly(
        restricted(bronze, "enqueued_time", HOUR, record_hours), _classified(in_hours)))
    record_days = days_of(record_hours)
    replace("ops_event_totals_daily", "day", DAY, record_days, ops.event_totals_daily(
        gold("ops_event_totals_hourly").where(F.expr(in_periods("to_date(hour)", DAY, record_days)))))

    # Throughput: a day's row needs all its hours, so whole days of changed bronze records.
    bronze_days = periods.get("bronze_day", frozenset())
    replace("ops_throughput", "to_date(period_start)", DAY, bronze_days, ops.throughput(
        restricted(bronze, "enqueued_time", DAY, bronze_days), settings.capacity_events_per_second))

    # Submission health per day of the usage hour: the days of changed submissions and of changed
    # reconciliation rows (pending usage hours), from those days' submissions and reconciliation.
    health_days = periods.get("health_day", frozenset())
    replace("ops_submission_health_daily", "day", DAY, health_days, ops.submission_health_daily(
        restricted(submissions, "effective_start_time", DAY, health_days),
        restricted(billing["billing_reconciliation"], "effective_start_time", DAY, health_days),
        unit_price_frame(spark, prices), prices.currency))


def _changed_periods(silver: dict[str, DataFrame], changes: dict) -> dict:
    """Every set of hours and days the time-grained tables recompute, from the changes, in one Spark job:
    usage (hours of changed usage), expected (hours of changed gold.marketplace_usage rows),
    subscription_day (days of changed submissions, of submissions naming a new or newly deleted
    subscription, and of their purchase and deletion), record (hours of any changed record) and
    bronze_day (days of changed bronze records) and health_day (days of the usage hour of changed
    submissions and reconciliation rows)."""
    def tagged(tag: str, df: DataFrame, at: str, grain: str) -> DataFrame:
        return df.select(F.lit(tag).alias("tag"), period_text(at, grain).alias("period"))

    dirty = silver["subscriptions"].join(changes["dirty"], "subscription_key", "left_semi")
    positions = ["partition_id", "sequence_number"]
    naming_dirty = attribute_to_subscriptions(
        silver["marketplace_submissions"].select(*positions, "enqueued_time", "resource_id", "resource_uri"),
        dirty, positions,
    ).where(F.col("subscription_key").isNotNull())
    deleted = lambda df: df.where(F.col("deleted_at").isNotNull())  # noqa: E731
    parts = [
        tagged("usage", changes["silver.usage_events"], "enqueued_time", HOUR),
        tagged("expected", changes["gold.marketplace_usage"], "effective_start_time", HOUR),
        tagged("subscription_day", changes["silver.marketplace_submissions"], "enqueued_time", DAY),
        tagged("subscription_day", naming_dirty, "enqueued_time", DAY),
        tagged("subscription_day", dirty, "purchased_at", DAY),
        tagged("subscription_day", deleted(dirty), "deleted_at", DAY),
        tagged("subscription_day", deleted(changes["dirty_before"]), "deleted_at", DAY),
        *[tagged("record", changes[source], "enqueued_time", HOUR)
          for source in ("bronze.events", "silver.usage_events", "silver.marketplace_submissions", "silver.pings",
                         "silver.maintenance", "silver.subscription_lifecycle", "silver.quarantine")],
        tagged("bronze_day", changes["bronze.events"], "enqueued_time", DAY),
        tagged("health_day", changes["silver.marketplace_submissions"], "effective_start_time", DAY),
        tagged("health_day", changes["gold.billing_reconciliation"], "effective_start_time", DAY),
    ]
    return collect_periods(union_all(parts))


def _replacer(lakehouse: Lakehouse, docs: Mapping[str, TableDoc]) -> Callable:
    def replace(table: str, period: str, grain: str, periods, recomputed: DataFrame) -> None:
        if not periods:
            return
        shaped = documented(with_columns_of(recomputed, GOLD_PERSONA_SCHEMAS[table]), docs.get(f"gold.{table}"))
        replace_periods(lakehouse, "gold", table, shaped, in_periods(period, grain, periods))
    return replace


def _write_whole(spark, lakehouse, docs, settings, prices, silver, billing, as_of, skip=frozenset()) -> None:
    """The tables over the whole history or the report clock, recomputed from the refreshed gold tables
    and overwritten (one commit each): they are small, and comparing them row by row to write only the
    differences cost more Spark jobs than the write itself. A run with nothing new does not get here;
    the tables in `skip` (none of their sources moved) are left as they are."""
    overwrite = _writer(lakehouse, docs)

    def write(table: str, df: DataFrame) -> None:
        if table not in skip:
            overwrite(table, df)
    read = lambda table: lakehouse.read(spark, "gold", table)  # noqa: E731
    usage, subscriptions, plan_dimensions = silver["usage_events"], silver["subscriptions"], silver["plan_dimensions"]
    included_balance, revenue = billing["included_balance"], billing["revenue_daily"]
    hourly, daily = read("cs_consumption_hourly"), read("cs_consumption_daily")
    write("cs_current_cycle", cs.current_cycle(included_balance, as_of))
    write("cs_subscription_summary", cs.subscription_summary(subscriptions, included_balance, hourly, as_of))
    write("sales_revenue_by_product_daily", sales.revenue_by_product_daily(revenue))
    write("sales_revenue_by_product_monthly", sales.revenue_by_product_monthly(revenue))
    # Small (subscriptions x months) and used twice: computed once.
    months = subscription_mrr(subscriptions, billing["billing_reconciliation"], prices, as_of)
    if not {"sales_mrr", "sales_top_customers"} <= set(skip):
        months = months.localCheckpoint()
    write("sales_mrr", sales_mrr(months, prices.currency))
    write("sales_top_customers", sales.top_customers(months, daily, settings.top_customers))
    write(OVERAGE_ALERTS, overage_alerts(billing["marketplace_usage"], included_balance, plan_dimensions,
                                         thresholds_frame(spark, settings), as_of))
    write("sales_usage_heatmap",
          sales.usage_heatmap(usage, settings.heatmap_timezone, settings.heatmap_lookback_days, as_of))
    write("sales_trends", sales.trends(daily, revenue, as_of))
    write("sales_plan_fit", sales.plan_fit(subscriptions, plan_dimensions, included_balance, as_of))
    write("ops_data_quality_daily", ops.data_quality_daily(silver["quarantine"]))


def _write_properties(spark, lakehouse, docs, settings, usage: DataFrame) -> None:
    """Full rebuild of usage_by_property and of the per-value totals its ranking reads."""
    keys, write = settings.property_keys, _writer(lakehouse, docs)
    if not keys:
        lakehouse.overwrite(spark.createDataFrame([], VALUE_TOTALS_SCHEMA), "gold", PROPERTY_TOTALS)
        write("usage_by_property", spark.createDataFrame([], USAGE_BY_PROPERTY_SCHEMA))
        return
    details = property_details(usage, keys).localCheckpoint()  # one scan of usage for both tables
    lakehouse.overwrite(with_columns_of(value_totals(details), VALUE_TOTALS_SCHEMA), "gold", PROPERTY_TOTALS)
    totals = lakehouse.read(spark, "gold", PROPERTY_TOTALS)
    write("usage_by_property", fold_properties(details, top_values(totals, settings.property_top_values)))


def _refresh_properties(spark, lakehouse, docs, settings, usage: DataFrame, usage_changes: DataFrame) -> None:
    """usage_by_property from the usage change feed (signed): the per-value totals are updated, and
    recomputed are the days of changed usage, and every day of a key whose top-N values changed (one
    new event can fold a value into '(other)' on every day). Equal to a full rebuild."""
    keys, top_n = settings.property_keys, settings.property_top_values
    if not keys:
        return
    days = frozenset(r[0] for r in usage_changes.select(period_text("enqueued_time", DAY)).distinct().collect()
                     if r[0] is not None)
    if not days:
        return
    change = value_totals(property_details(usage_changes, keys, sign=SIGN)).localCheckpoint()
    totals = lakehouse.read(spark, "gold", PROPERTY_TOTALS)
    tops = (
        top_values(totals, top_n).withColumn("_after", F.lit(False))
        .unionByName(top_values(add_totals(totals, change), top_n).withColumn("_after", F.lit(True)))
        .collect()
    )
    before = {(r[0], r[1]) for r in tops if not r[2]}
    after = sorted((r[0], r[1]) for r in tops if r[2])
    reranked = sorted({key for key, _ in before.symmetric_difference(after)})
    (
        lakehouse.delta_table(spark, "gold", PROPERTY_TOTALS).alias("t")
        .merge(change.alias("s"), "t.property_key = s.property_key AND t.property_value = s.property_value")
        .whenMatchedDelete(condition="t.events + s.events = 0")
        .whenMatchedUpdate(set={"events": "t.events + s.events",
                                "quantity": "CAST(t.quantity + s.quantity AS DECIMAL(32, 12))"})
        .whenNotMatchedInsert(condition="s.events != 0", values={c: f"s.{c}" for c in change.columns})
        .execute()
    )
    kept = spark.createDataFrame(after, "property_key string, property_value string")
    in_slice = in_periods("day", DAY, days)
    if reranked:  # every day of those keys: all of usage is read
        in_slice += " OR property_key IN (" + ", ".join(sql_string(k) for k in reranked) + ")"
        source = usage
    else:
        source = restricted(usage, "enqueued_time", DAY, days)
    recomputed = fold_properties(property_details(source, keys), kept)
    replace_periods(lakehouse, "gold", "usage_by_property",
                    documented(with_columns_of(recomputed, USAGE_BY_PROPERTY_SCHEMA), docs.get("gold.usage_by_property")),
                    in_slice)


def _refresh_freshness(spark, lakehouse, docs, bronze: DataFrame, bronze_changes: DataFrame, as_of) -> None:
    """ops_data_freshness from its own rows and the bronze records appended since: bronze only appends,
    so counts add up and the latest times are maxima of maxima. A record that left bronze (a rewrite)
    makes it a scan of all of bronze."""
    added = ops.partition_latest(bronze_changes.where(F.col(SIGN) > 0)).select(
        "*", F.lit(None).cast("int").alias("_left"))
    left = bronze_changes.where(F.col(SIGN) < 0).limit(1).select(
        *[F.lit(None).cast(f.dataType).alias(f.name) for f in added.schema.fields[:-1]], F.lit(1).alias("_left"))
    rows = added.unionByName(left).collect()
    if any(r["_left"] for r in rows):
        latest = ops.partition_latest(bronze)
    else:
        previous = lakehouse.read(spark, "gold", "ops_data_freshness")
        appended = spark.createDataFrame([r[:-1] for r in rows], added.drop("_left").schema)
        latest = ops.add_latest(previous, appended).localCheckpoint()  # read before the table is replaced
    _writer(lakehouse, docs)("ops_data_freshness", ops.freshness(latest, as_of))


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
