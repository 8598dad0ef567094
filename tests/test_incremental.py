"""Incremental billing and gold: after runs on data A, runs after data B arrives (new usage, a late event in
an older open cycle, a new subscription, a deletion, submissions; the top value of a property key changes)
and after data C (one event; no top value changes, no quarantine) give every table a full rebuild on
A + B + C gives; a run with nothing new writes nothing; changed settings rebuild in full."""
from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from chispa import assert_df_equality

from incremental_helpers import PRICES, SETTINGS, clock, part_a, part_b, part_c, write_part
from metering_analytics.billing.prices import PlanPrices
from metering_analytics.billing.stage import GOLD_BILLING_SCHEMAS, run_billing
from metering_analytics.gold.stage import GOLD_PERSONA_SCHEMAS, PROPERTY_TOTALS, run_gold
from metering_analytics.io.lakehouse import Lakehouse

# Many small Delta commits (minutes on 2 cores): make test-reliability, not make test.
pytestmark = [pytest.mark.slow, pytest.mark.reliability]

SCHEMAS = {**GOLD_BILLING_SCHEMAS, **GOLD_PERSONA_SCHEMAS}
# the per-value totals the incremental ranking of usage_by_property reads must be exact too
COMPARED = [*SCHEMAS, PROPERTY_TOTALS]


def _snapshot(spark, lakehouse):
    return {t: spark.createDataFrame(lakehouse.read(spark, "gold", t).collect(), lakehouse.read(spark, "gold", t).schema)
            for t in COMPARED}


def _versions(spark, lakehouse):
    return {t: lakehouse.version(spark, "gold", t) for t in [*COMPARED, "incremental_state"]}


def _last_operation(spark, lakehouse, table):
    return lakehouse.delta_table(spark, "gold", table).history(1).select("operation").first()[0]


def _operations_since(spark, lakehouse, table, version):
    """{operation, or "REPLACE PERIODS" for an overwrite with a replaceWhere predicate} since `version`."""
    history = lakehouse.delta_table(spark, "gold", table).history()
    return {_operation(r) for r in history.where(history.version > version).collect()}


def _operation(row) -> str:
    predicate = (row["operationParameters"] or {}).get("predicate", "[]")
    return "REPLACE PERIODS" if row["operation"] == "WRITE" and predicate not in ("", "[]") else row["operation"]


def _replaced_periods(spark, lakehouse, table) -> bool:
    """The table's last commit replaced some periods (hours or days) only."""
    return _operation(lakehouse.delta_table(spark, "gold", table).history(1).collect()[0]) == "REPLACE PERIODS"


def test_incremental_runs_equal_a_full_rebuild(spark, tmp_path):
    lakehouse = Lakehouse(root=str(tmp_path / "lakehouse"))
    a = part_a()
    b = part_b(a)
    write_part(spark, lakehouse, a)
    run_billing(spark, lakehouse, PRICES, as_of=clock(a))
    run_gold(spark, lakehouse, SETTINGS, clock(a), PRICES)
    write_part(spark, lakehouse, b)
    run_billing(spark, lakehouse, PRICES, as_of=clock(b))
    run_gold(spark, lakehouse, SETTINGS, clock(b), PRICES)
    for table in ("marketplace_usage", "included_balance", PROPERTY_TOTALS):
        assert _last_operation(spark, lakehouse, table) == "MERGE", table
    for table in ("cs_consumption_hourly", "ops_event_totals_hourly", "ops_throughput", "usage_by_property"):
        assert _replaced_periods(spark, lakehouse, table), table

    # C: the days of the new usage only (no top value moves); tables whose sources did not move are kept
    c = part_c(b)
    write_part(spark, lakehouse, c)
    before_c = _versions(spark, lakehouse)
    run_billing(spark, lakehouse, PRICES, as_of=clock(c))
    run_gold(spark, lakehouse, SETTINGS, clock(c), PRICES)
    after_c = _versions(spark, lakehouse)
    assert _replaced_periods(spark, lakehouse, "usage_by_property")
    assert _last_operation(spark, lakehouse, PROPERTY_TOTALS) == "MERGE"
    assert after_c["ops_data_quality_daily"] == before_c["ops_data_quality_daily"]
    incremental = _snapshot(spark, lakehouse)

    # nothing new: no table gets a commit
    versions = _versions(spark, lakehouse)
    run_billing(spark, lakehouse, PRICES, as_of=clock(c))
    run_gold(spark, lakehouse, SETTINGS, clock(c), PRICES)
    assert _versions(spark, lakehouse) == versions

    # settings that change no row here (an unused plan's prices, a longer top-N list than there are
    # customers) still rebuild in full: the reference to compare with
    prices = dataclasses.replace(PRICES, plans={**PRICES.plans, "unused": PlanPrices({"Monthly": Decimal(1)}, {"x": Decimal(1)})})
    settings = dataclasses.replace(SETTINGS, top_customers=SETTINGS.top_customers + 1)
    run_billing(spark, lakehouse, prices, as_of=clock(c))
    run_gold(spark, lakehouse, settings, clock(c), prices)
    for table in ("marketplace_usage", "revenue_daily", "cs_consumption_hourly", "ops_throughput"):
        # an overwrite, and no MERGE nor replaced periods (the gold stage then comments the billing
        # tables' columns again)
        operations = _operations_since(spark, lakehouse, table, versions[table])
        assert "WRITE" in operations and not {"MERGE", "REPLACE PERIODS"} & operations, (table, operations)
    full = _snapshot(spark, lakehouse)
    for table in COMPARED:
        assert_df_equality(incremental[table], full[table], ignore_row_order=True, ignore_nullable=True,
                           ignore_metadata=True)
    for table in ("marketplace_usage", "included_balance", "billing_reconciliation", "revenue_daily",
                  "cs_consumption_hourly", "sales_usage_by_product_hourly", "ops_event_totals_hourly",
                  "ops_events_by_subscription_daily", "ops_throughput", "usage_by_property"):
        assert full[table].count() > 0, table
