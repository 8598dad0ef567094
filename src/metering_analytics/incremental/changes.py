"""Reading what changed in a source table, and replacing a recomputed slice of a gold table.

Changes come from the Delta Change Data Feed between the version a stage consumed last and the version
it reads now. Both images of an update and the deleted rows are kept: a slice a row left must be
recomputed as much as the slice it entered.
"""
from __future__ import annotations

from typing import Sequence

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from metering_analytics.io.lakehouse import Lakehouse

_CDF_COLUMNS = ("_change_type", "_commit_version", "_commit_timestamp")


class ChangesUnavailable(Exception):
    """The changes cannot be read exactly (no change feed over the range, vacuumed history): rebuild."""


SIGN = "_sign"


def changed_rows(spark: SparkSession, lakehouse: Lakehouse, layer: str, table: str,
                 consumed: int | None, current: int | None, signed: bool = False) -> DataFrame:
    """Rows inserted, deleted or updated (both images) after version `consumed` up to `current`,
    with the table's columns; materialised, so an unreadable feed fails here and not later.

    `signed` adds SIGN: +1 for a row that entered the table (insert, update post-image), -1 for one
    that left it (delete, update pre-image), for running totals kept from the feed."""
    if current is None:
        raise ChangesUnavailable(f"{layer}.{table} does not exist")
    sign = [F.lit(1).alias(SIGN)] if signed else []
    if consumed is None:  # the table appeared since: all of it is new
        return lakehouse.read(spark, layer, table, version=current).select("*", *sign).localCheckpoint()
    if consumed > current:
        raise ChangesUnavailable(f"{layer}.{table} is older than the state ({current} < {consumed})")
    if consumed == current:
        return lakehouse.read(spark, layer, table, version=current).select("*", *sign).limit(0)
    try:
        feed = lakehouse.read_changes(spark, layer, table, consumed + 1, current)
        if signed:
            left = F.col("_change_type").isin("delete", "update_preimage")
            feed = feed.withColumn(SIGN, F.when(left, F.lit(-1)).otherwise(F.lit(1)))
        return feed.drop(*_CDF_COLUMNS).localCheckpoint()
    except Exception as error:  # AnalysisException, or a Delta error on a missing feed or log entry
        raise ChangesUnavailable(f"{layer}.{table}: {error}".splitlines()[0]) from error


def replace_rows(lakehouse: Lakehouse, layer: str, table: str, old: DataFrame, new: DataFrame,
                 bound: str | None = None) -> DataFrame:
    """Make a table's rows `old` (its current rows in a recomputed slice) become `new` (that slice
    recomputed), in one MERGE that deletes and inserts only the rows that differ. Unchanged slices
    write nothing. Returns the rows that left or entered the table (column `_op`: delete | insert).

    Rows are compared whole (null-safe), so no key is needed; gold rows are unique. `bound` names a
    column (the table's time, which its files are sorted by): the MERGE then reads only the files
    whose values lie within the changed rows' range. Exact, since a row deleted equals a changed row.
    """
    columns = new.columns
    # One aggregation over both sides (a row only in old sums to -1, only in new to +1) rather than two
    # exceptAll: one shuffle instead of two, which is most of the cost on small slices.
    sides = old.select(*columns, F.lit(-1).alias("_side")).unionByName(new.select(*columns, F.lit(1).alias("_side")))
    changes = (
        sides.groupBy(*columns).agg(F.sum("_side").alias("_side")).where(F.col("_side") != 0)
        .select(*columns, F.when(F.col("_side") < 0, F.lit("delete")).otherwise(F.lit("insert")).alias("_op"))
        .localCheckpoint()
    )
    if changes.isEmpty():
        return changes
    same_row = " AND ".join(f"t.`{c}` <=> s.`{c}`" for c in columns)
    condition = F.expr(f"s._op = 'delete' AND {same_row}")
    limits = literal_bounds(changes, bound) if bound is not None else None
    if limits is not None:
        condition = condition & within(f"t.`{bound}`", limits)
    (
        lakehouse.delta_table(new.sparkSession, layer, table).alias("t")
        .merge(changes.alias("s"), condition)
        .whenMatchedDelete()
        .whenNotMatchedInsert(condition="s._op = 'insert'", values={f"`{c}`": f"s.`{c}`" for c in columns})
        .execute()
    )
    return changes


def in_ranges(df: DataFrame, ranges: DataFrame, key: str, at: str) -> DataFrame:
    """Rows of `df` whose (key, at) lies in one of `ranges` (scope_key, scope_start, scope_end), ranges
    half-open, a null bound unbounded. Adds a literal bound on `at` first so Delta can skip files."""
    bounds = ranges.agg(
        F.min("scope_start").alias("lo"), F.max("scope_end").alias("hi"),
        F.count(F.when(F.col("scope_start").isNull(), 1)).alias("open_lo"),
        F.count(F.when(F.col("scope_end").isNull(), 1)).alias("open_hi"),
        F.count(F.lit(1)).alias("n"),
    ).first()
    if bounds["n"] == 0:
        return df.limit(0)
    if bounds["open_lo"] == 0 and bounds["lo"] is not None:
        df = df.where(F.col(at) >= F.lit(bounds["lo"]))
    if bounds["open_hi"] == 0 and bounds["hi"] is not None:
        df = df.where(F.col(at) < F.lit(bounds["hi"]))
    r = F.broadcast(ranges.select("scope_key", "scope_start", "scope_end"))
    inside = (
        (df[key] == r["scope_key"])
        & (r["scope_start"].isNull() | (df[at] >= r["scope_start"]))
        & (r["scope_end"].isNull() | (df[at] < r["scope_end"]))
    )
    return df.join(r, inside, "left_semi")


def in_values(df: DataFrame, values: DataFrame, column: Column | str, value: str = "value") -> DataFrame:
    """Rows of `df` whose `column` (an expression of df) is one of `values` (null matches null)."""
    probe = F.col(column) if isinstance(column, str) else column
    tagged = df.withColumn("_scope_probe", probe)
    v = F.broadcast(values.select(F.col(value).alias("_scope_value")).distinct())
    return tagged.join(v, tagged["_scope_probe"].eqNullSafe(v["_scope_value"]), "left_semi").drop("_scope_probe")


def literal_bounds(values: DataFrame, value: str = "value") -> tuple | None:
    """(min, max) of `values`' column `value`; None when there are none or one is null (unbounded).
    Delta skips files on comparisons with literals, not on joins: these bounds become literals."""
    row = values.agg(F.min(value).alias("lo"), F.max(value).alias("hi"),
                     F.count(F.when(F.col(value).isNull(), 1)).alias("nulls")).first()
    if row["nulls"] or row["lo"] is None:
        return None
    return row["lo"], row["hi"]


def within(column: str, bounds: tuple, width: str | None = None) -> Column:
    """`column` in [lo, hi], or in [lo, hi + width) when the bounds are periods of that width."""
    lo, hi = bounds
    upper = F.col(column) < (F.lit(hi) + F.expr(f"INTERVAL {width}")) if width else F.col(column) <= F.lit(hi)
    return (F.col(column) >= F.lit(lo)) & upper


def value_bounds(df: DataFrame, values: DataFrame, column: str, value: str = "value",
                 width: str | None = None) -> DataFrame:
    """`df` with a literal [min, max (+ width)] bound on `column` from `values`, for file skipping only
    (the exact filter is `in_values`); unchanged when a value is null or there are none."""
    bounds = literal_bounds(values, value)
    return df if bounds is None else df.where(within(column, bounds, width))


def union_all(frames: Sequence[DataFrame]) -> DataFrame:
    out = frames[0]
    for f in frames[1:]:
        out = out.unionByName(f)
    return out
