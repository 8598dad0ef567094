"""Position ranges: a batch is appended only when none of its positions can already be in the table."""
from __future__ import annotations

from chispa import assert_df_equality

from metering_analytics.io.key_ranges import KEY_RANGE_SCHEMA, key_ranges, overlapping


def _records(spark, rows):
    return spark.createDataFrame(rows, "partition_id string, sequence_number long, source_file string")


def test_ranges_per_partition_and_per_file_where_the_path_names_no_partition(spark):
    records = _records(spark, [
        ("0", 5, "a.avro"), ("0", 9, "b.avro"), ("1", 0, "c.avro"),
        (None, 3, "stray.avro"), (None, 4, "stray.avro"), (None, 1, "other.avro"),
        ("2", None, "d.avro"),  # no sequence number: its key never matches, so it has no range
    ])
    expected = spark.createDataFrame([
        ("0", None, 5, 9), ("1", None, 0, 0), (None, "stray.avro", 3, 4), (None, "other.avro", 1, 1),
    ], KEY_RANGE_SCHEMA)
    assert_df_equality(key_ranges(records), expected, ignore_row_order=True, ignore_nullable=True)


def _range(partition, low, high, source_file=None):
    return {"partition_id": partition, "source_file": source_file, "min_sequence_number": low,
            "max_sequence_number": high}


def test_overlap_is_by_partition_or_file_and_interval(spark):
    recorded = spark.createDataFrame([
        ("0", None, 0, 99), ("1", None, 50, 60), (None, "stray.avro", 0, 9),
    ], KEY_RANGE_SCHEMA)
    assert not overlapping([_range("0", 100, 200), _range("1", 0, 49), _range("2", 0, 99)], recorded)
    assert not overlapping([_range(None, 0, 9, "another.avro")], recorded)
    assert not overlapping([], recorded)
    assert overlapping([_range("0", 99, 120)], recorded)  # shares position 99
    assert overlapping([_range("1", 0, 1000)], recorded)  # spans a recorded range
    assert overlapping([_range(None, 5, 5, "stray.avro")], recorded)
    assert not overlapping([_range("0", None, None)], recorded)  # no sequence numbers
