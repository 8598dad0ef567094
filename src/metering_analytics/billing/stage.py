"""The billing stage: silver facts -> the gold billing tables, refreshed incrementally.

Billing is a function of a subscription's whole history (running totals per cycle). A full rebuild
overwrites each table in one Delta commit. After that, a run reads what changed in silver since the
last run (Delta Change Data Feed), recomputes only what those changes and the move of the report clock
can alter (a changed cycle's usage from its earliest changed hour on, continuing the running totals kept
in gold.incremental_cycle_usage; the balances of the cycles involved; the usage hours and days after
them), with the same functions, and replaces just those rows (see docs/incremental.md). The result is
identical to a full rebuild.
Prices are checked before any table changes.
"""
from __future__ import annotations

from datetime import datetime, timezone

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from metering_analytics.billing.balances import INCLUDED_BALANCE_SCHEMA, balances_of_cycle_usage, cycle_usage
from metering_analytics.billing.marketplace import MARKETPLACE_USAGE_SCHEMA, marketplace_usage
from metering_analytics.billing.overage import event_overage, usage_cycles
from metering_analytics.billing.prices import PriceCatalog, require_prices_for_silver
from metering_analytics.billing.reconciliation import (
    RECONCILIATION_SCHEMA,
    billed_hour,
    billed_requests,
    billing_reconciliation,
)
from metering_analytics.billing.resume import (
    CYCLE_USAGE,
    CYCLE_USAGE_SCHEMA,
    changed_cycle_usage,
    changed_cycles,
    continued_cycle_usage,
    cycle_ranges,
    usage_bases,
    usage_ranges,
    with_usage_bases,
)
from metering_analytics.billing.revenue import REVENUE_DAILY_SCHEMA, revenue_daily
from metering_analytics.billing.scope import (
    clock_cycles,
    revenue_days,
    whole_subscriptions,
)
from metering_analytics.incremental.changes import (
    ChangesUnavailable,
    changed_rows,
    in_ranges,
    in_values,
    literal_bounds,
    replace_rows,
    union_all,
    value_bounds,
    within,
)
from metering_analytics.incremental.state import StageState, clear_state, load_state, save_state, settings_hash
from metering_analytics.incremental.subscriptions import subscription_changes_since
from metering_analytics.io.lakehouse import Lakehouse, with_columns_of
from metering_analytics.schemas import (
    SILVER_MARKETPLACE_SUBMISSIONS_SCHEMA,
    SILVER_PLAN_DIMENSIONS_SCHEMA,
    SILVER_SUBSCRIPTIONS_SCHEMA,
    SILVER_USAGE_EVENTS_SCHEMA,
)

MARKETPLACE_USAGE = "marketplace_usage"
INCLUDED_BALANCE = "included_balance"
BILLING_RECONCILIATION = "billing_reconciliation"
REVENUE_DAILY = "revenue_daily"
GOLD_BILLING_SCHEMAS = {
    MARKETPLACE_USAGE: MARKETPLACE_USAGE_SCHEMA,
    INCLUDED_BALANCE: INCLUDED_BALANCE_SCHEMA,
    BILLING_RECONCILIATION: RECONCILIATION_SCHEMA,
    REVENUE_DAILY: REVENUE_DAILY_SCHEMA,
}
# Each table's time: its files are written in this order and every refresh replaces a range of it.
TIME_COLUMNS = {
    MARKETPLACE_USAGE: "effective_start_time",
    INCLUDED_BALANCE: "cycle_start",
    BILLING_RECONCILIATION: "effective_start_time",
    REVENUE_DAILY: "day",
}

STAGE = "billing"
# Raise when a change of the billing code must rebuild the tables it wrote before.
CODE_VERSION = 3
_SILVER = {
    "subscriptions": SILVER_SUBSCRIPTIONS_SCHEMA,
    "plan_dimensions": SILVER_PLAN_DIMENSIONS_SCHEMA,
    "usage_events": SILVER_USAGE_EVENTS_SCHEMA,
    "marketplace_submissions": SILVER_MARKETPLACE_SUBMISSIONS_SCHEMA,
}

_UTC_ZONES = {"UTC", "Etc/UTC", "GMT", "Etc/GMT", "Z", "+00:00", "UTC+0", "GMT+0", "Etc/UCT", "UCT", "Zulu"}


def require_utc_session(spark: SparkSession) -> None:
    """Cycles and hours are calendar arithmetic in the session time zone: it must be UTC."""
    zone = spark.conf.get("spark.sql.session.timeZone")
    if zone not in _UTC_ZONES:
        raise ValueError(f"billing needs spark.sql.session.timeZone=UTC, the session has {zone!r}")


def utc_naive(at: datetime | None) -> datetime:
    if at is None:
        return datetime.now(timezone.utc).replace(tzinfo=None)
    return at if at.tzinfo is None else at.astimezone(timezone.utc).replace(tzinfo=None)


def run_billing(spark: SparkSession, lakehouse: Lakehouse, prices: PriceCatalog,
                as_of: datetime | None = None, full_rebuild: bool = False) -> dict[str, int]:
    """Bring the gold billing tables up to date with silver; returns {"gold.<table>": row count}.

    `as_of` (default: now, UTC; naive means UTC) decides the current billing cycle in
    gold.included_balance and the last day of recognised recurring revenue. The run is incremental
    when the last run's state is usable (same prices and billing code, change feed readable);
    otherwise, or with `full_rebuild`, every table is rebuilt from the whole of silver.
    """
    require_utc_session(spark)
    as_of = utc_naive(as_of)
    versions = {f"silver.{t}": lakehouse.version(spark, "silver", t) for t in _SILVER}
    silver = {t: _read_at(spark, lakehouse, "silver", t, schema, versions[f"silver.{t}"])
              for t, schema in _SILVER.items()}
    require_prices_for_silver(prices, silver["subscriptions"], silver["plan_dimensions"],
                              silver["marketplace_submissions"])
    hash_ = settings_hash(CODE_VERSION, prices)
    state = None if full_rebuild else load_state(spark, lakehouse, STAGE)
    tables_exist = all(lakehouse.exists(spark, "gold", t) for t in [*GOLD_BILLING_SCHEMAS, CYCLE_USAGE])
    usable = state is not None and state.settings_hash == hash_ and tables_exist
    if usable and dict(state.versions) == versions and state.as_of == as_of:
        return _counts(spark, lakehouse)  # nothing new: nothing written
    refreshed = False
    if usable:
        try:
            changes = _billing_changes(spark, lakehouse, state, versions, silver, as_of)
        except ChangesUnavailable:
            changes = None
        if changes is not None:
            clear_state(spark, lakehouse, STAGE)
            _refresh(spark, lakehouse, prices, as_of, state, silver, changes)
            refreshed = True
    if not refreshed:
        clear_state(spark, lakehouse, STAGE)
        _rebuild(spark, lakehouse, prices, as_of, silver)
    save_state(spark, lakehouse, STAGE, versions, hash_, as_of)
    return _counts(spark, lakehouse)


def _counts(spark: SparkSession, lakehouse: Lakehouse) -> dict[str, int]:
    return {f"gold.{table}": lakehouse.read(spark, "gold", table).count() for table in GOLD_BILLING_SCHEMAS}


def _read_at(spark: SparkSession, lakehouse: Lakehouse, layer: str, table: str, schema, version: int | None):
    """The table at `version` (what the state will record as consumed), or empty when it does not exist."""
    if version is None:
        return spark.createDataFrame([], schema)
    return lakehouse.read(spark, layer, table, version=version)


def _rebuild(spark: SparkSession, lakehouse: Lakehouse, prices: PriceCatalog, as_of: datetime,
             silver: dict[str, DataFrame]) -> None:
    subscriptions, plan_dimensions = silver["subscriptions"], silver["plan_dimensions"]
    event_cycles = usage_cycles(silver["usage_events"], subscriptions)
    write = _writer(lakehouse)
    write(MARKETPLACE_USAGE, marketplace_usage(event_overage(event_cycles, plan_dimensions), subscriptions))
    lakehouse.overwrite(with_columns_of(cycle_usage(event_cycles), CYCLE_USAGE_SCHEMA), "gold", CYCLE_USAGE)
    write(INCLUDED_BALANCE, balances_of_cycle_usage(lakehouse.read(spark, "gold", CYCLE_USAGE), subscriptions,
                                                    plan_dimensions, as_of))
    # Later tables read the written ones back: each is computed once and all agree with each other.
    expected = lakehouse.read(spark, "gold", MARKETPLACE_USAGE)
    write(BILLING_RECONCILIATION, billing_reconciliation(expected, silver["marketplace_submissions"], subscriptions))
    reconciliation = lakehouse.read(spark, "gold", BILLING_RECONCILIATION)
    write(REVENUE_DAILY, revenue_daily(subscriptions, reconciliation, prices, as_of))
    # The gold stage reads what changed in these tables since its last run. No deletion vectors: other
    # Delta readers (delta-rs) cannot read tables that have them.
    for table in GOLD_BILLING_SCHEMAS:
        lakehouse.enable_change_feed(spark, "gold", table)


def _billing_changes(spark: SparkSession, lakehouse: Lakehouse, state: StageState, versions: dict,
                     silver: dict[str, DataFrame], as_of: datetime) -> dict | None:
    """What changed since the state's versions; None when only a full rebuild is exact. Everything
    is read before any table changes, so an unreadable feed leaves the tables as they were."""
    before = {t: state.versions.get(f"silver.{t}") for t in _SILVER}
    compared = subscription_changes_since(spark, lakehouse, state.versions, silver)
    if compared is None:
        return None
    _, subs_changed = compared
    if subs_changed.needs_full_rebuild:
        return None
    usage = changed_rows(spark, lakehouse, "silver", "usage_events", before["usage_events"],
                         versions["silver.usage_events"], signed=True)
    submissions = changed_rows(spark, lakehouse, "silver", "marketplace_submissions",
                               before["marketplace_submissions"], versions["silver.marketplace_submissions"])
    return {"dirty": subs_changed.dirty, "usage": usage, "submissions": submissions}


def _refresh(spark: SparkSession, lakehouse: Lakehouse, prices: PriceCatalog, as_of: datetime,
             state: StageState, silver: dict[str, DataFrame], changes: dict) -> None:
    usage_changes = _refresh_usage_and_balances(spark, lakehouse, as_of, state, silver, changes)
    _refresh_reconciliation_and_revenue(spark, lakehouse, prices, as_of, state, silver, changes, usage_changes)


def _gold(spark: SparkSession, lakehouse: Lakehouse):
    return lambda table: lakehouse.read(spark, "gold", table)


def _shaped(df: DataFrame, table: str) -> DataFrame:
    return with_columns_of(df, GOLD_BILLING_SCHEMAS[table])


def _refresh_usage_and_balances(spark: SparkSession, lakehouse: Lakehouse, as_of: datetime, state: StageState,
                                silver: dict[str, DataFrame], changes: dict) -> DataFrame:
    """gold.marketplace_usage, the kept cycle usage and gold.included_balance; returns the rows of
    gold.marketplace_usage that changed (replace_rows)."""
    subscriptions, plan_dimensions = silver["subscriptions"], silver["plan_dimensions"]
    dirty = changes["dirty"]
    gold, shaped = _gold(spark, lakehouse), _shaped

    # Usage to number again (see billing.resume): each changed cycle from its earliest changed hour when
    # it only gained rows, else whole; new and newly deleted subscriptions whole.
    changed = changed_cycle_usage(changes["usage"], subscriptions).localCheckpoint()
    cycles_changed = changed_cycles(changed, subscriptions, dirty).localCheckpoint()
    ranges = union_all([usage_ranges(cycles_changed), whole_subscriptions(dirty)])
    resumed = cycles_changed.where("resumed").select("subscription_key", "cycle_index")
    kept = gold(CYCLE_USAGE)
    kept_before = (
        kept.join(cycles_changed.select("subscription_key", "cycle_index"), ["subscription_key", "cycle_index"],
                  "left_semi")
        .unionByName(kept.join(dirty, "subscription_key", "left_semi"))
    ).localCheckpoint()
    event_cycles = usage_cycles(in_ranges(silver["usage_events"], ranges, "subscription_key", "enqueued_time"),
                                subscriptions).localCheckpoint()
    numbered = with_usage_bases(event_cycles, usage_bases(event_cycles, resumed, kept_before, changed))
    usage_changes = replace_rows(
        lakehouse, "gold", MARKETPLACE_USAGE,
        in_ranges(gold(MARKETPLACE_USAGE), ranges, "subscription_key", "effective_start_time"),
        shaped(marketplace_usage(event_overage(numbered, plan_dimensions), subscriptions), MARKETPLACE_USAGE),
        bound=TIME_COLUMNS[MARKETPLACE_USAGE])

    recounted = cycle_usage(event_cycles.join(resumed, ["subscription_key", "cycle_index"], "left_anti"))
    replace_rows(lakehouse, "gold", CYCLE_USAGE, kept_before,
                 with_columns_of(recounted.unionByName(continued_cycle_usage(kept_before, changed, resumed)),
                                 CYCLE_USAGE_SCHEMA))
    # Balances are per cycle: every changed cycle, the cycles whose "current" mark the move of the clock
    # changes, and new or newly deleted subscriptions whole, from the kept usage just updated.
    balance_scope = union_all([
        cycle_ranges(cycles_changed),
        clock_cycles(subscriptions, state.as_of, as_of),
        whole_subscriptions(dirty),
    ]).distinct().localCheckpoint()
    balances = balances_of_cycle_usage(gold(CYCLE_USAGE), subscriptions, plan_dimensions, as_of)
    replace_rows(
        lakehouse, "gold", INCLUDED_BALANCE,
        in_ranges(gold(INCLUDED_BALANCE), balance_scope, "subscription_key", "cycle_start"),
        in_ranges(shaped(balances, INCLUDED_BALANCE), balance_scope, "subscription_key", "cycle_start"),
        bound=TIME_COLUMNS[INCLUDED_BALANCE])
    return usage_changes


def _refresh_reconciliation_and_revenue(spark: SparkSession, lakehouse: Lakehouse, prices: PriceCatalog,
                                        as_of: datetime, state: StageState, silver: dict[str, DataFrame],
                                        changes: dict, usage_changes: DataFrame) -> None:
    subscriptions = silver["subscriptions"]
    dirty_subs = subscriptions.join(changes["dirty"], "subscription_key", "left_semi").localCheckpoint()
    gold, shaped = _gold(spark, lakehouse), _shaped

    # Reconciliation rows are keyed by the usage hour (effective_start_time): recompute every hour whose
    # expected usage or submissions changed, or whose submissions name a new or newly deleted subscription.
    changed_hours = [
        usage_changes.select(F.col("effective_start_time").alias("value")),
        billed_requests(changes["submissions"]).select(F.col("effective_start_time").alias("value")),
    ]
    if not dirty_subs.isEmpty():
        ids = dirty_subs.select(F.col("resource_id").alias("_id"), F.col("resource_uri").alias("_uri"))
        naming_dirty = billed_requests(silver["marketplace_submissions"]).join(
            F.broadcast(ids), (F.col("resource_id") == F.col("_id")) | (F.col("resource_uri") == F.col("_uri")),
            "left_semi")
        changed_hours.append(naming_dirty.select(F.col("effective_start_time").alias("value")))
    hours = union_all(changed_hours).distinct().localCheckpoint()
    reconciliation_changes = replace_rows(
        lakehouse, "gold", BILLING_RECONCILIATION, _in_hours(gold(BILLING_RECONCILIATION), hours),
        shaped(billing_reconciliation(_in_hours(gold(MARKETPLACE_USAGE), hours),
                                      _submissions_in_hours(silver["marketplace_submissions"], hours),
                                      subscriptions), BILLING_RECONCILIATION),
        bound=TIME_COLUMNS[BILLING_RECONCILIATION])

    days = revenue_days(reconciliation_changes.select(F.col("effective_start_time").alias("value")),
                        dirty_subs, state.as_of, as_of).localCheckpoint()
    reconciliation = in_values(value_bounds(gold(BILLING_RECONCILIATION), days, "effective_start_time", width="1 DAY"),
                               days, F.to_date("effective_start_time"))
    replace_rows(
        lakehouse, "gold", REVENUE_DAILY,
        in_values(gold(REVENUE_DAILY), days, "day"),
        in_values(shaped(revenue_daily(subscriptions, reconciliation, prices, as_of), REVENUE_DAILY), days, "day"),
        bound=TIME_COLUMNS[REVENUE_DAILY])


def _in_hours(df: DataFrame, hours: DataFrame) -> DataFrame:
    """Rows whose effective_start_time is one of `hours`; the literal bounds first let Delta skip the
    files outside them (the tables are written in time order)."""
    return in_values(value_bounds(df, hours, "effective_start_time"), hours, "effective_start_time")


def _submissions_in_hours(submissions: DataFrame, hours: DataFrame) -> DataFrame:
    """Submissions billed for one of `hours`: a Duplicate bills the hour of its accepted message."""
    limits = literal_bounds(hours)
    if limits is not None:
        submissions = submissions.where(within("effective_start_time", limits)
                                        | within("accepted_effective_start_time", limits))
    return in_values(submissions, hours, billed_hour())


def _writer(lakehouse: Lakehouse):
    def write(table: str, df) -> None:
        lakehouse.overwrite(with_columns_of(df, GOLD_BILLING_SCHEMAS[table]), "gold", table,
                            sort_by=TIME_COLUMNS[table])
    return write
