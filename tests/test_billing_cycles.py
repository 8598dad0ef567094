"""Cycle Column expressions: hand-worked boundaries, and agreement with the reference on a grid."""
from __future__ import annotations

import calendar
from datetime import datetime as dt, timedelta

from chispa import assert_df_equality
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StructField, StructType, TimestampType

from metering_analytics.billing import cycles, reference

INPUT = StructType(
    [
        StructField("start", TimestampType()),
        StructField("renewal_months", IntegerType()),
        StructField("at", TimestampType()),
    ]
)
OUTPUT = StructType(
    INPUT.fields
    + [
        StructField("k", IntegerType()),
        StructField("cycle_start", TimestampType()),
        StructField("cycle_end", TimestampType()),
    ]
)


def _with_cycles(df):
    k = cycles.cycle_index("start", "renewal_months", "at")
    return df.withColumn("k", k).select(
        "start", "renewal_months", "at", "k",
        cycles.cycle_start("start", "renewal_months", "k").alias("cycle_start"),
        cycles.cycle_end("start", "renewal_months", "k").alias("cycle_end"),
    )


def test_cycle_boundaries(spark):
    jan31 = dt(2023, 1, 31, 17, 45)
    feb29 = dt(2020, 2, 29, 6)
    rows = [
        (jan31, 1, dt(2023, 1, 31, 0, 0), 0, dt(2023, 1, 31), dt(2023, 2, 28)),
        (jan31, 1, dt(2023, 2, 27, 23, 59, 59), 0, dt(2023, 1, 31), dt(2023, 2, 28)),
        (jan31, 1, dt(2023, 2, 28), 1, dt(2023, 2, 28), dt(2023, 3, 31)),  # exactly at the boundary
        (jan31, 1, dt(2023, 3, 31), 2, dt(2023, 3, 31), dt(2023, 4, 30)),
        (jan31, 1, dt(2024, 2, 29, 12), 13, dt(2024, 2, 29), dt(2024, 3, 31)),
        (jan31, 1, dt(2023, 1, 30, 23), -1, dt(2022, 12, 31), dt(2023, 1, 31)),
        (feb29, 12, dt(2021, 2, 27, 23), 0, dt(2020, 2, 29), dt(2021, 2, 28)),
        (feb29, 12, dt(2021, 2, 28), 1, dt(2021, 2, 28), dt(2022, 2, 28)),
        (feb29, 12, dt(2024, 2, 29), 4, dt(2024, 2, 29), dt(2025, 2, 28)),
        (dt(2021, 8, 31, 1), 24, dt(2023, 8, 30, 23), 0, dt(2021, 8, 31), dt(2023, 8, 31)),
        (dt(2021, 8, 31, 1), 24, dt(2023, 8, 31), 1, dt(2023, 8, 31), dt(2025, 8, 31)),
        (dt(2022, 11, 30, 9), 36, dt(2025, 11, 30), 1, dt(2025, 11, 30), dt(2028, 11, 30)),
        (dt(2022, 11, 30, 9), 36, dt(2025, 11, 29, 23, 59), 0, dt(2022, 11, 30), dt(2025, 11, 30)),
    ]
    df = spark.createDataFrame([r[:3] for r in rows], INPUT)
    expected = spark.createDataFrame(rows, OUTPUT)
    assert_df_equality(_with_cycles(df), expected, ignore_nullable=True, ignore_row_order=True)


def test_cycles_agree_with_the_reference_on_a_grid(spark):
    starts = [dt(y, m, d, 13) for y in (2020, 2021) for m in (1, 2, 3, 8, 11, 12) for d in (1, 15, 28, 29, 30, 31)
              if d <= calendar.monthrange(y, m)[1]]
    probes = [dt(2020, 1, 1) + timedelta(days=9 * i, hours=i % 24) for i in range(150)]
    rows = []
    for start in starts:
        for months in reference.RENEWAL_MONTHS.values():
            for at in probes + [reference.cycle_start(start, months, k) for k in range(3)]:
                k = reference.cycle_index(start, months, at)
                rows.append((start, months, at, k, reference.cycle_start(start, months, k),
                             reference.cycle_start(start, months, k + 1)))
    df = spark.createDataFrame([r[:3] for r in rows], INPUT)
    expected = spark.createDataFrame(rows, OUTPUT)
    actual = _with_cycles(df)
    # Rows that differ, not the whole grid, so a failure shows what went wrong.
    assert actual.exceptAll(expected).limit(5).collect() == []
    assert actual.count() == len(rows)


def test_timestamp_literal_reads_naive_datetimes_as_utc(spark):
    row = spark.range(1).select(
        cycles.timestamp_literal(dt(2023, 3, 26, 1, 30)).alias("naive"),
        F.date_format(cycles.timestamp_literal(dt(2023, 3, 26, 1, 30)), "yyyy-MM-dd HH:mm").alias("text"),
    ).first()
    assert row.naive == dt(2023, 3, 26, 1, 30)
    assert row.text == "2023-03-26 01:30"
