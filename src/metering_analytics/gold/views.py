"""SQL views over the gold tables, one per persona question, so a Databricks SQL user needs no Python.

Each view is a file `sql/views/<view name>.sql`: comment lines (`-- ...`, the view's comment) and one
SELECT over unqualified gold table names. The views are created in the gold schema (locally the `gold`
database, on Databricks `<catalog>.<gold schema>` as Lakehouse.table_name names it) with that schema as
the current one, so the unqualified names resolve to the gold tables next to the view and the same
file runs unchanged on both sides. Views are rebuilt with CREATE OR REPLACE at the end of every gold
run, so a changed file takes effect on the next run.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession

from metering_analytics.io.lakehouse import Lakehouse


@dataclass(frozen=True)
class ViewDefinition:
    name: str
    comment: str
    select: str


def read_view(path: Path) -> ViewDefinition:
    lines = path.read_text(encoding="utf-8").splitlines()
    comment = " ".join(line.lstrip()[2:].strip() for line in lines if line.lstrip().startswith("--"))
    select = "\n".join(line for line in lines if not line.lstrip().startswith("--")).strip().rstrip(";")
    if not select.upper().startswith(("SELECT", "WITH")):
        raise ValueError(f"{path}: a view file holds one SELECT (or WITH ... SELECT) statement")
    return ViewDefinition(path.stem, comment, select)


def view_definitions(views_dir: str | Path) -> list[ViewDefinition]:
    """Every `*.sql` of the folder, by name; [] when the folder is missing (e.g. a bare wheel)."""
    folder = Path(views_dir)
    return [read_view(p) for p in sorted(folder.glob("*.sql"))] if folder.is_dir() else []


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def create_views(spark: SparkSession, lakehouse: Lakehouse, views: list[ViewDefinition]) -> list[str]:
    """CREATE OR REPLACE every view in the gold schema; returns their qualified names."""
    gold_schema = lakehouse.table_name("gold", "_").rsplit(".", 1)[0]
    previous_catalog, previous_schema = spark.catalog.currentCatalog(), spark.catalog.currentDatabase()
    if lakehouse.catalog:
        spark.catalog.setCurrentCatalog(lakehouse.catalog)
    if lakehouse.is_local:
        spark.sql(f"CREATE DATABASE IF NOT EXISTS `{lakehouse.schema('gold')}`")
    spark.catalog.setCurrentDatabase(lakehouse.schema("gold"))
    created = []
    try:
        for view in views:
            name = f"{gold_schema}.{view.name}"
            spark.sql(f"CREATE OR REPLACE VIEW {name} COMMENT {_quote(view.comment)} AS\n{view.select}")
            created.append(name)
    finally:
        spark.catalog.setCurrentCatalog(previous_catalog)
        spark.catalog.setCurrentDatabase(previous_schema)
    return created
