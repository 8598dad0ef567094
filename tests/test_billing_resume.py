"""Continuing running totals (billing.resume): an incremental billing run numbers a changed cycle from its
earliest changed hour, starting at the kept usage before that hour, and must give every event, hour and
cycle exactly what numbering the whole history gives."""
from __future__ import annotations

from datetime import datetime as dt
from datetime import timedelta

from chispa import assert_df_equality
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from billing_helpers import subscription, subscriptions_df, usage, usage_df
from incremental_helpers import PRICES, usage_row, write_part
from metering_analytics.billing.balances import cycle_usage
from metering_analytics.billing.overage import usage_cycles, with_running_totals
from metering_analytics.billing.resume import (
    CYCLE_USAGE,
    changed_cycle_usage,
    changed_cycles,
    continued_cycle_usage,
    usage_bases,
    usage_ranges,
    with_usage_bases,
)
from metering_analytics.billing.stage import GOLD_BILLING_SCHEMAS, run_billing
from metering_analytics.incremental.changes import SIGN, in_ranges
from metering_analytics.io.lakehouse import Lakehouse

SUBSCRIPTIONS = [subscription("m", dt(2024, 1, 15, 9, 30)), subscription("a", dt(2024, 1, 1), "Annually")]
FIRST = dt(2024, 2, 10)
EVENT = st.tuples(
    st.sampled_from(["m", "a"]),
    st.sampled_from(["api", "egress"]),
    st.sampled_from([0.1, 0.2, 0.3, 1.0, 2.5, 7.25, 10.0]),
    # minutes after FIRST: up to ~14 days, across m's cycle boundary (Feb 15), several per hour
    st.integers(0, 14 * 24 * 60).map(lambda m: m - m % 7),
)


def _rows(events, first_sequence):
    return [usage(key, meter_name, quantity, FIRST + timedelta(minutes=minutes), first_sequence + i,
                  partition=str(i % 2))
            for i, (key, meter_name, quantity, minutes) in enumerate(events)]


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(old=st.lists(EVENT, min_size=1, max_size=25), new=st.lists(EVENT, min_size=1, max_size=10),
       appended=st.booleans())
def test_numbering_from_the_earliest_changed_hour_equals_numbering_the_whole_history(spark, old, new, appended):
    if appended:  # the usual case: new usage at or after the last old event (often in the same hour)
        last = max(minutes for *_, minutes in old)
        new = [(k, m, q, last + minutes % 180) for k, m, q, minutes in new]
    old_rows, new_rows = _rows(old, 1), _rows(new, 1000)
    subs = subscriptions_df(spark, SUBSCRIPTIONS)
    everything = usage_df(spark, old_rows + new_rows)
    kept = cycle_usage(usage_cycles(usage_df(spark, old_rows), subs)).localCheckpoint()
    changed = changed_cycle_usage(usage_df(spark, new_rows).withColumn(SIGN, F.lit(1)), subs).localCheckpoint()
    no_subscriptions = subs.select("subscription_key").limit(0)
    cycles_changed = changed_cycles(changed, subs, no_subscriptions).localCheckpoint()
    assert cycles_changed.where(~F.col("resumed")).isEmpty()  # only rows entered: every cycle is resumed
    ranges = usage_ranges(cycles_changed)
    resumed = cycles_changed.select("subscription_key", "cycle_index")
    again = usage_cycles(in_ranges(everything, ranges, "subscription_key", "enqueued_time"), subs).localCheckpoint()

    numbered = with_running_totals(with_usage_bases(again, usage_bases(again, resumed, kept, changed)))
    whole = with_running_totals(usage_cycles(everything, subs))
    columns = ["partition_id", "sequence_number", "usage_before", "usage_after"]
    assert_df_equality(numbered.select(*columns),
                       whole.join(again.select("partition_id", "sequence_number"), ["partition_id", "sequence_number"],
                                  "left_semi").select(*columns),
                       ignore_row_order=True)
    # every new event is numbered again, and the old events of its cycle only from its hour on
    assert again.join(usage_df(spark, new_rows), ["partition_id", "sequence_number"], "left_semi").count() == len(new)
    first_hours = changed.groupBy("subscription_key", "cycle_index").agg(F.min("first_hour").alias("first_hour"))
    assert again.join(first_hours, ["subscription_key", "cycle_index"]).where(
        F.col("enqueued_time") < F.col("first_hour")).isEmpty()

    assert_df_equality(continued_cycle_usage(kept, changed, resumed),
                       cycle_usage(usage_cycles(everything, subs)).join(resumed, ["subscription_key", "cycle_index"],
                                                                        "left_semi"),
                       ignore_row_order=True, ignore_nullable=True, ignore_column_order=True)


def _part(subs, usage_rows):
    return dict(subscriptions=subs, usage=usage_rows, submissions=[], pings=[], quarantine=[])


def _billing_tables(spark, lakehouse):
    return {t: spark.createDataFrame(lakehouse.read(spark, "gold", t).collect(), lakehouse.read(spark, "gold", t).schema)
            for t in [*GOLD_BILLING_SCHEMAS, CYCLE_USAGE]}


def test_incremental_billing_continues_cycles_and_equals_a_full_rebuild(spark, tmp_path):
    """Usage appended in the hour of the last event and later, across the included quantity and the
    waterfall tiers (api: 10 included; egress: 5 free, then 5 on t1, then t2), late usage in an earlier
    monthly cycle and in the middle of an annual one (both resumed), a deleted event (its cycle numbered
    whole), then one more append on top of the kept usage those runs left."""
    subs = [subscription("m", dt(2024, 1, 15), plan="p"), subscription("a", dt(2024, 1, 1), "Annually", plan="p")]
    lakehouse = Lakehouse(root=str(tmp_path / "lakehouse"))
    start = dt(2024, 1, 16, 3)
    a_rows, seq = [], 100
    for i in range(40):  # every 26 h 20 min from Jan 16: to Mar 1
        at = start + timedelta(minutes=1580 * i)
        for key in ("m", "a"):
            seq += 1
            a_rows.append(usage_row(seq, key, ("api", "egress")[seq % 2], (1.5, 0.25, 3.0)[seq % 3], at))
    last = max(r["enqueued_time"] for r in a_rows)
    write_part(spark, lakehouse, _part(subs, a_rows))
    run_billing(spark, lakehouse, PRICES, as_of=last)

    b_rows = [
        usage_row(1001, "m", "api", 4.0, last + timedelta(minutes=5)),  # the same hour as the last event
        usage_row(1002, "m", "egress", 6.5, last + timedelta(minutes=10)),
        usage_row(1003, "a", "egress", 12.0, last + timedelta(minutes=15)),
        usage_row(1004, "a", "api", 0.75, last + timedelta(hours=2)),
        usage_row(1005, "m", "api", 2.0, dt(2024, 3, 15)),  # m's next cycle, on its first instant
        usage_row(1006, "m", "egress", 1.0, dt(2024, 1, 20, 7, 45)),  # late, in m's first cycle
        usage_row(1007, "a", "api", 5.0, dt(2024, 2, 2, 11, 5)),  # late, mid annual cycle
    ]
    write_part(spark, lakehouse, _part(subs, b_rows))
    # a row leaving silver (a rewrite): m's Feb 15 - Mar 15 cycle is numbered from its start
    removed = next(r for r in a_rows if r["subscription_key"] == "m" and r["enqueued_time"] > dt(2024, 2, 20))
    lakehouse.delta_table(spark, "silver", "usage_events").delete(
        (F.col("partition_id") == removed["partition_id"]) & (F.col("sequence_number") == removed["sequence_number"]))
    run_billing(spark, lakehouse, PRICES, as_of=dt(2024, 3, 15, 1))
    assert lakehouse.delta_table(spark, "gold", "marketplace_usage").history(1).first()["operation"] == "MERGE"

    c_rows = [usage_row(1101, "a", "egress", 3.5, dt(2024, 3, 15, 0, 30)),
              usage_row(1102, "m", "api", 9.5, dt(2024, 3, 15, 0, 40))]
    write_part(spark, lakehouse, _part(subs, c_rows))
    run_billing(spark, lakehouse, PRICES, as_of=dt(2024, 3, 15, 2))
    incremental = _billing_tables(spark, lakehouse)

    run_billing(spark, lakehouse, PRICES, as_of=dt(2024, 3, 15, 2), full_rebuild=True)
    full = _billing_tables(spark, lakehouse)
    for table, rows in full.items():
        assert rows.count() > 0, table
        assert_df_equality(incremental[table], rows, ignore_row_order=True, ignore_nullable=True)
