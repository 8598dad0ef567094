"""What the analyst notebooks (notebooks/analysis/) share: pointing the session at the gold schema.

On Databricks the notebook's widgets name the catalog and the gold schema (defaults: `metering`,
`gold`); locally (no `dbutils`) the `METERING_CATALOG` / `METERING_GOLD_SCHEMA` environment variables
do, and an empty catalog means the local session catalog. After `use_gold`, SQL, Python and Scala
cells name gold tables without qualification, exactly like the dashboard datasets.
"""
from __future__ import annotations

import os
import re
from typing import Any

from pyspark.sql import SparkSession

_IDENTIFIER = re.compile(r"^[A-Za-z0-9_]+$")


def use_gold(spark: SparkSession, dbutils: Any = None) -> tuple[str, str]:
    """Make the gold schema the session's current schema; returns (catalog, schema)."""
    if dbutils is not None:
        dbutils.widgets.text("catalog", "metering", "Unity Catalog catalog")
        dbutils.widgets.text("gold_schema", "gold", "gold schema")
        catalog, schema = dbutils.widgets.get("catalog"), dbutils.widgets.get("gold_schema")
    else:
        catalog = os.environ.get("METERING_CATALOG", "")
        schema = os.environ.get("METERING_GOLD_SCHEMA", "") or "gold"
    for name in (catalog, schema):
        if name and not _IDENTIFIER.match(name):
            raise ValueError(f"not a catalog or schema name: {name!r}")
    if catalog:
        spark.sql(f"USE CATALOG `{catalog}`")
    spark.sql(f"USE SCHEMA `{schema}`")
    return catalog, schema
