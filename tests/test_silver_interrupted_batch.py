"""A silver batch stopped after any one of its writes, then replayed, ends as if it had never stopped.

A late purchase moves waiting usage from quarantine into silver.usage_events, and a late deletion
moves usage the other way: each move is several Delta commits. The batch is stopped right after the
move's k-th write (the write committed, the next not begun: what a kill between two commits leaves),
for every k, and the stream's replay of the batch must finish the move. The batch's other writes are
MERGEs of its own records, which a replay repeats harmlessly. The kill test
(test_crash_recovery.py) lands at random points; this one visits each point between writes.
"""
from __future__ import annotations

import shutil
from datetime import timedelta

import pytest

from capture_files import flat_path, sequence, write_capture
from pipeline_helpers import local_config, run_ingestion
from metering_analytics.bronze.stage import run_bronze
from metering_analytics.silver import stage as silver_stage
from metering_analytics.silver.stage import run_silver
from test_silver_rules import T0, deletion, purchase, usage

pytestmark = [pytest.mark.slow, pytest.mark.reliability]  # two silver runs per stopping point; make test-reliability

WRITES = ("_merge_new", "_merge_quarantine", "_delete_keys")


class Stop(Exception):
    """Stands for the process dying right after a write."""


def stop_after_write(monkeypatch, k: int) -> list[str]:
    """Make the k-th table write of silver's re-resolution of waiting usage (the move between
    silver.quarantine and silver.usage_events) raise once it has committed."""
    done: list[str] = []
    real_writes = {name: getattr(silver_stage, name) for name in WRITES}

    def counted(name):
        def write(*args):
            real_writes[name](*args)
            done.append(name)
            if len(done) == k:
                raise Stop(f"stopped after write {k} ({name})")
        return write

    real_reresolve = silver_stage._reresolve_usage

    def reresolve(*args):
        with monkeypatch.context() as patch:
            for name in WRITES:
                patch.setattr(silver_stage, name, counted(name))
            real_reresolve(*args)

    monkeypatch.setattr(silver_stage, "_reresolve_usage", reresolve)
    return done


def verdicts(spark, lakehouse):
    usage_keys = sorted((r.partition_id, r.sequence_number) for r in
                        lakehouse.read(spark, "silver", "usage_events").collect())
    quarantined = sorted((r.reason, r.partition_id, r.sequence_number) for r in
                         lakehouse.read(spark, "silver", "quarantine").collect())
    return usage_keys, quarantined


# (what the next files bring, the verdicts once it is processed)
LATE_PURCHASE = ("purchase", ([("1", 0), ("1", 1)], []))
LATE_DELETION = ("deletion", ([("1", 0)], [("after_deletion", "1", 1)]))


def deliver(source, what: str) -> None:
    if what == "purchase":
        write_capture(flat_path(source, 0, T0), sequence(T0, [purchase("id-a")]))
    else:  # enqueued between the two usage events, delivered after both
        write_capture(flat_path(source, 0, T0 + timedelta(hours=1)),
                      sequence(T0 + timedelta(minutes=5, seconds=30), [deletion("id-a")], first_seq=1))


@pytest.mark.parametrize("late", [LATE_PURCHASE, LATE_DELETION], ids=["late_purchase", "late_deletion"])
def test_a_batch_stopped_after_any_write_is_finished_by_its_replay(spark, tmp_path, monkeypatch, late):
    what, expected = late
    source, before = tmp_path / "capture", tmp_path / "before"
    # Usage of id-a arrives first (quarantined: unknown subscription); the purchase next.
    write_capture(flat_path(source, 1, T0), sequence(T0 + timedelta(minutes=5), [usage("id-a"), usage("id-a")],
                                                         step=timedelta(minutes=1)))
    run_ingestion(spark, source, before)
    if what == "deletion":
        deliver(source, "purchase")
        run_ingestion(spark, source, before)
    deliver(source, what)
    run_bronze(spark, local_config(source, before))  # the late message waits in bronze for silver

    k, stopped = 0, True
    while stopped:
        k += 1
        lakehouse = tmp_path / f"stopped_after_{k}"
        shutil.copytree(before, lakehouse)  # tables and stream checkpoints as the last run left them
        config = local_config(source, lakehouse)
        with monkeypatch.context() as patch:
            done = stop_after_write(patch, k)
            try:
                run_silver(spark, config)
                stopped = False  # the batch has fewer than k writes: every point has been visited
            except Exception as exc:  # the stream fails with the batch's error
                assert "stopped after write" in str(exc), exc
        run_silver(spark, config)
        assert verdicts(spark, config.lakehouse) == expected, f"stopped after write {k}: {done}"
    assert k > 2  # the move took two writes (into the new table, out of the old), each a stopping point
