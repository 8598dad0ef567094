"""Hours and days to recompute, as SQL literals, and replacing those periods of a table in one commit.

The periods of an incremental run are few (the hours and days of what changed), so they are collected
to the driver once and used as literal IN lists: a literal filter costs no Spark job (a broadcast
semi-join costs one per use) and lets Delta skip the files of other periods. They are kept as text in
the session time zone (`date_format`) and read back as `TIMESTAMP'...'` / `DATE'...'` in the same zone,
so no Python time-zone conversion is involved.
"""
from __future__ import annotations

from typing import Iterable

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from metering_analytics.io.lakehouse import Lakehouse

HOUR, DAY = "hour", "day"
_FORMAT = {HOUR: "yyyy-MM-dd HH:mm:ss.SSSSSS", DAY: "yyyy-MM-dd"}
_LITERAL = {HOUR: "TIMESTAMP", DAY: "DATE"}
_TRUNC = {HOUR: "date_trunc('HOUR', {0})", DAY: "to_date({0})"}

Periods = frozenset  # of period text (None: a null period)


def period_text(at: Column | str, grain: str) -> Column:
    """The hour or day of a timestamp column as literal text (null stays null)."""
    column = F.col(at) if isinstance(at, str) else at
    truncated = F.date_trunc("hour", column) if grain == HOUR else F.to_date(column)
    return F.date_format(truncated, _FORMAT[grain])


def collect_periods(tagged: DataFrame) -> dict[str, Periods]:
    """{tag: periods} from rows (tag, period text): one Spark job for every set a run needs."""
    found: dict[str, set] = {}
    for tag, value in tagged.distinct().collect():
        found.setdefault(tag, set()).add(value)
    return {tag: frozenset(values) for tag, values in found.items()}


def days_of(hours: Iterable[str | None]) -> Periods:
    """The days of hours given as text (the date is the text's first ten characters)."""
    return frozenset(None if h is None else h[:10] for h in hours)


def in_periods(expression: str, grain: str, periods: Iterable[str | None]) -> str:
    """SQL: `expression` (a timestamp or date, already truncated to the grain) is one of the periods."""
    values = sorted(p for p in periods if p is not None)
    terms = [f"{expression} IN ({', '.join(f'{_LITERAL[grain]}{sql_string(v)}' for v in values)})"] if values else []
    if any(p is None for p in periods):
        terms.append(f"{expression} IS NULL")
    return " OR ".join(f"({t})" for t in terms) or "false"


def restricted(df: DataFrame, at: str, grain: str, periods: Iterable[str | None]) -> DataFrame:
    """Rows of `df` whose timestamp `at` falls in one of the periods; a literal range over all of them
    comes first so Delta skips the files outside it."""
    periods = frozenset(periods)
    values = sorted(p for p in periods if p is not None)
    if values and None not in periods:
        lo, hi = f"{_LITERAL[grain]}{sql_string(values[0])}", f"{_LITERAL[grain]}{sql_string(values[-1])}"
        upper = f"{hi} + INTERVAL 1 HOUR" if grain == HOUR else f"CAST(date_add({hi}, 1) AS TIMESTAMP)"
        df = df.where(F.expr(f"`{at}` >= CAST({lo} AS TIMESTAMP) AND `{at}` < {upper}"))
    return df.where(F.expr(in_periods(_TRUNC[grain].format(f"`{at}`"), grain, periods)))


def replace_periods(lakehouse: Lakehouse, layer: str, table: str, recomputed: DataFrame, predicate: str) -> None:
    """Replace the rows of `table` matching `predicate` (SQL) by `recomputed`'s rows matching it, in one
    Delta commit (`replaceWhere`): readers see the old or the new periods, never half. Cheaper than a
    row-by-row comparison and MERGE where nothing reads which rows changed."""
    writer = (recomputed.where(F.expr(predicate)).write.format("delta").mode("overwrite")
              .option("replaceWhere", predicate))
    lakehouse._save(writer, layer, table)


def sql_string(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
