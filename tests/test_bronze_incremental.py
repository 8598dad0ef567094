"""Bronze ingestion is incremental and exactly once: re-runs, duplicated files and new files."""
from __future__ import annotations

import shutil
from datetime import datetime, timedelta

import pytest

from capture_files import flat_path, hive_path, sequence, write_capture
from pipeline_helpers import local_config

T0 = datetime(2025, 3, 1, 10, 0, 0)


def _usage(i: int) -> dict:
    return {"type": "UsageReported", "value": {"resourceId": "r1", "timestamp": "2025-03-01T10:00:00Z",
                                               "meterName": "api", "quantity": i}}


@pytest.fixture()
def capture(tmp_path):
    source = tmp_path / "capture"
    write_capture(flat_path(source, 0, T0), sequence(T0, [_usage(i) for i in range(5)]))
    write_capture(hive_path(source, 1, T0), sequence(T0, [_usage(i) for i in range(3)] + [b"\x00\xff junk", None]))
    write_capture(flat_path(source, 2, T0), [])  # Capture writes empty files for idle windows
    return source, tmp_path / "lakehouse"


def _bronze(spark, source, lakehouse):
    from metering_analytics.bronze.stage import run_bronze

    config = local_config(source, lakehouse)
    result = run_bronze(spark, config)
    return result, config.lakehouse.read(spark, "bronze", "events")


def _operations(spark, lakehouse) -> list[str]:
    from delta.tables import DeltaTable

    history = DeltaTable.forPath(spark, str(lakehouse / "bronze" / "events")).history()
    return [r.operation for r in history.orderBy("version").collect()][1:]  # after CREATE TABLE


def test_every_record_once_and_reruns_add_nothing(spark, capture):
    source, lakehouse = capture
    result, bronze = _bronze(spark, source, lakehouse)
    assert bronze.count() == 10  # junk and null bodies included
    assert _operations(spark, lakehouse) == ["WRITE"]  # new files: appended, no MERGE
    assert result.records_read == 10 and result.records_added == 10  # the empty file adds nothing
    assert sorted(r.partition_id for r in bronze.select("partition_id").distinct().collect()) == ["0", "1"]
    assert bronze.where("body IS NULL").count() == 1
    assert {r.event_hub for r in bronze.select("event_hub").distinct().collect()} == {"ns/hub"}

    again, bronze = _bronze(spark, source, lakehouse)
    assert again.records_read == 0 and again.records_added == 0 and bronze.count() == 10


def test_duplicated_file_adds_nothing_and_new_files_add_exactly_theirs(spark, capture):
    source, lakehouse = capture
    _bronze(spark, source, lakehouse)
    # The same Capture file delivered again under another name (a re-delivery or a copy job).
    shutil.copy(flat_path(source, 0, T0), flat_path(source, 0, T0 + timedelta(hours=5)))
    result, bronze = _bronze(spark, source, lakehouse)
    assert result.records_read == 5 and result.records_added == 0 and bronze.count() == 10
    assert _operations(spark, lakehouse) == ["WRITE"]  # its positions were known: merged, nothing inserted

    # A new window for partition 0 continues its sequence numbers.
    later = T0 + timedelta(hours=1)
    write_capture(hive_path(source, 0, later), sequence(later, [_usage(i) for i in range(4)], first_seq=5))
    result, bronze = _bronze(spark, source, lakehouse)
    assert result.records_read == 4 and result.records_added == 4 and bronze.count() == 14
    assert bronze.where("partition_id = '0'").count() == 9
    assert _operations(spark, lakehouse) == ["WRITE", "WRITE"]


def test_files_outside_the_capture_layouts_are_kept(spark, capture):
    source, lakehouse = capture
    write_capture(source / "ns" / "hub" / "stray.avro", sequence(T0, [_usage(1)]))
    _, bronze = _bronze(spark, source, lakehouse)
    stray = bronze.where("partition_id IS NULL").collect()
    assert len(stray) == 1 and stray[0].source_file.endswith("stray.avro")


def test_enqueued_time_from_capture_string(spark, capture):
    source, lakehouse = capture
    _, bronze = _bronze(spark, source, lakehouse)
    first = bronze.where("partition_id = '0' AND sequence_number = 0").first()
    assert first.enqueued_time == T0 and first.enqueued_time_raw == "3/1/2025 10:00:00 AM"
    assert first.enqueued_date == T0.date()


def test_damaged_files_do_not_stop_the_run_and_are_named(spark, capture):
    """A truncated file keeps its intact blocks, a file that is not Avro keeps nothing; both are named."""
    source, lakehouse = capture
    later = T0 + timedelta(hours=1)
    whole = write_capture(flat_path(source, 3, later), sequence(later, [_usage(i) for i in range(6)]),
                          block_bytes=1).read_bytes()
    flat_path(source, 3, later).write_bytes(whole[: len(whole) - 40])  # the last block is cut short
    (source / "ns" / "hub" / "p4--2025-03-01--11-00-00.avro").write_bytes(b"Obj? not really")

    result, bronze = _bronze(spark, source, lakehouse)

    assert bronze.count() == 10 + 5 and result.records_read == 15
    assert bronze.where("partition_id = '3'").count() == 5
    damaged = {d["source_file"].rsplit("/", 1)[1]: d for d in result.damaged_files}
    assert set(damaged) == {"p3--2025-03-01--11-00-00.avro", "p4--2025-03-01--11-00-00.avro"}
    assert damaged["p3--2025-03-01--11-00-00.avro"]["records_kept"] == 5
    assert "truncated: block 6" in damaged["p3--2025-03-01--11-00-00.avro"]["problem"]
    assert "not an Avro container" in damaged["p4--2025-03-01--11-00-00.avro"]["problem"]
    assert result.files_audited == 5  # the intact ones (the empty one included) are recorded too
    files = spark.read.format("delta").load(str(lakehouse / "bronze" / "capture_files"))
    assert files.where("container_status = 'ok' AND records_read = avro_records").count() == 2
    assert files.where("container_status = 'empty'").count() == 1

    again, _ = _bronze(spark, source, lakehouse)
    assert again.files_audited == 0 and again.records_read == 0 and len(again.damaged_files) == 2


def _file(name, partition, records, distinct, low, high):
    return {"source_file": name, "partition_id": partition, "records_read": records,
            "distinct_sequence_numbers": distinct, "min_sequence_number": low, "max_sequence_number": high}


def test_a_batch_skips_deduplication_only_when_no_record_can_repeat():
    from metering_analytics.bronze.events import may_repeat_records

    windows = [_file("a", "0", 5, 5, 0, 4), _file("b", "0", 4, 4, 5, 8), _file("c", "1", 3, 3, 0, 2),
               _file("empty", "2", 0, 0, None, None), _file("stray", None, 2, 2, 0, 1)]
    assert not may_repeat_records(windows)
    assert may_repeat_records(windows + [_file("a-again", "0", 5, 5, 0, 4)])  # the same file twice
    assert may_repeat_records(windows + [_file("d", "1", 2, 2, 2, 3)])  # overlapping ranges
    assert may_repeat_records([_file("a", "0", 3, 2, 0, 1)])  # a sequence number twice in one file
    assert may_repeat_records([_file("n", "0", 2, 0, None, None)])  # null sequence numbers
    assert not may_repeat_records([_file("s", None, 2, 2, 0, 1), _file("t", None, 2, 2, 0, 1)])  # told apart by file
