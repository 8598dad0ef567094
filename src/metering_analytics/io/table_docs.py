"""Table and column comments in the catalog, generated from the project's table documentation.

docs/tables.md (persona tables) and docs/billing.md (billing tables) are the one place where a gold
table's columns are explained. A section is a heading naming one or more tables in backticks or plain
(`#### \\`gold.sales_mrr\\``, `### gold.marketplace_usage`, `#### \\`gold.a\\`, \\`gold.b\\``), the prose
under it up to its first table or blank line (the table comment), and its first
`| column | ... | meaning |` table: one row per column, where a row may name several columns ("a, b"),
and the last cell is the meaning (the column comment). A heading naming several tables gives them all
the same comments.

Comments reach the tables two ways, both without a Spark job:
- `documented(df, doc)` puts each column's comment into the DataFrame's schema metadata, so the write
  itself stores it (the gold writers do this: no extra commit);
- `comment_tables(...)`, at the end of the gold stage, checks every table of the layer against the docs
  and, only where a comment differs, sets the column comments (one ALTER TABLE per table) and the table
  comment. Tables that other code writes get their comments just by being documented.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from metering_analytics.io.lakehouse import Lakehouse

DOC_FILES = ("tables.md", "billing.md")
_HEADING = re.compile(r"^(#{2,6})\s+(.*)$")
_TABLE_NAME = re.compile(r"`?\b((?:bronze|silver|gold)\.[a-z0-9_]+)\b`?")


@dataclass(frozen=True)
class TableDoc:
    description: str
    columns: Mapping[str, str] = field(default_factory=dict)


def _cells(line: str) -> list[str]:
    inner = re.sub(r"^\||(?<!\\)\|$", "", line.strip())
    return [c.strip() for c in re.split(r"(?<!\\)\|", inner)]  # `\|` is a pipe inside a cell


def _plain(text: str) -> str:
    """Markdown inline text as a catalog comment: no backticks, link targets or escapes."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"\s+", " ", text.replace("`", "").replace("\\|", "|").replace("**", "")).strip()


def _first_paragraph(body: list[str]) -> str:
    paragraph: list[str] = []
    for line in body:
        if not line.strip() or line.lstrip().startswith("|"):
            if paragraph:
                break
            continue
        paragraph.append(line.strip())
    return _plain(" ".join(paragraph))


def _column_table(body: list[str]) -> dict[str, str]:
    """The first `| column | ... |` table: column name -> meaning (the last cell)."""
    for i, line in enumerate(body):
        if line.lstrip().startswith("|") and _cells(line)[0].lower() == "column":
            columns: dict[str, str] = {}
            for row in body[i + 2:]:  # past the header and its separator
                if not row.lstrip().startswith("|"):
                    break
                cells = _cells(row)
                meaning = _plain(cells[-1]) if len(cells) > 1 else ""
                for name in (_plain(n) for n in cells[0].split(",")):
                    if name:
                        columns[name] = meaning
            return columns
    return {}


def parse_table_docs(markdown: str) -> dict[str, TableDoc]:
    """{"gold.x": TableDoc} for every heading made only of table names."""
    docs: dict[str, TableDoc] = {}
    lines = markdown.splitlines()
    starts = [i for i, line in enumerate(lines) if _HEADING.match(line)] + [len(lines)]
    for start, end in zip(starts, starts[1:]):
        title = _HEADING.match(lines[start]).group(2)
        names = _TABLE_NAME.findall(title)
        # "Revenue by product — `gold.x`" (metrics.md style) is prose about a table, not its section.
        if not names or re.sub(r"[\s,/&]|and", "", _TABLE_NAME.sub("", title)):
            continue
        body = lines[start + 1:end]
        doc = TableDoc(_first_paragraph(body), _column_table(body))
        for name in names:
            docs[name] = doc
    return docs


def load_table_docs(docs_dir: str | Path, files: Iterable[str] = DOC_FILES) -> dict[str, TableDoc]:
    """Every documented table of the docs folder; {} when the folder is missing (e.g. a bare wheel)."""
    found: dict[str, TableDoc] = {}
    for name in files:
        path = Path(docs_dir, name)
        if path.is_file():
            found.update(parse_table_docs(path.read_text(encoding="utf-8")))
    return found


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def documented(df: DataFrame, doc: TableDoc | None) -> DataFrame:
    """`df` with each documented column's comment in its schema metadata (stored by the next write)."""
    if doc is None:
        return df
    return df.select([
        F.col(f"`{c}`").alias(c, metadata={**df.schema[c].metadata, "comment": doc.columns[c]})
        if doc.columns.get(c) else F.col(f"`{c}`")
        for c in df.columns
    ])


def _table_names(spark: SparkSession, lakehouse: Lakehouse, layer: str) -> list[str]:
    if lakehouse.is_local:
        layer_dir = Path(lakehouse.root, layer)
        if not layer_dir.is_dir():
            return []
        return sorted(p.name for p in layer_dir.iterdir() if (p / "_delta_log").is_dir())
    schema = lakehouse.table_name(layer, "_").rsplit(".", 1)[0]
    # Views (the SQL views live in the gold schema too) carry their own comments.
    return sorted(t.name for t in spark.catalog.listTables(schema) if t.tableType != "VIEW" and not t.isTemporary)


def comment_tables(spark: SparkSession, lakehouse: Lakehouse, layer: str, docs: Mapping[str, TableDoc]) -> dict:
    """Bring the comments of every Delta table of `layer` in line with `docs`.

    Returns {"commented": tables changed, "undocumented_columns": ["gold.t.c", ...]}: what a report
    (or a test) needs to see a column the docs do not explain.
    """
    changed, undocumented = 0, []
    for table in _table_names(spark, lakehouse, layer):
        doc = docs.get(f"{layer}.{table}")
        name = lakehouse.table_name(layer, table)
        lakehouse.register(spark, layer, table)
        schema = spark.table(name).schema  # metadata only: no job
        undocumented += [f"{layer}.{table}.{f.name}" for f in schema.fields
                         if not (doc and doc.columns.get(f.name))]
        if doc is None:
            continue
        stale = [(f.name, doc.columns[f.name]) for f in schema.fields
                 if doc.columns.get(f.name) and f.metadata.get("comment") != doc.columns[f.name]]
        altered = False
        if stale:  # one statement, one Delta commit, for all of the table's columns
            spark.sql(f"ALTER TABLE {name} ALTER COLUMN "
                      + ", ".join(f"`{c}` COMMENT {_quote(text)}" for c, text in stale))
            altered = True
        if doc.description and _table_comment(spark, name) != doc.description:
            spark.sql(f"COMMENT ON TABLE {name} IS {_quote(doc.description)}")
            altered = True
        changed += altered
    return {"commented": changed, "undocumented_columns": undocumented}


def _table_comment(spark: SparkSession, name: str) -> str | None:
    try:
        return spark.catalog.getTable(name).description
    except Exception:  # noqa: BLE001 - a catalog that cannot say: set the comment again
        return None
