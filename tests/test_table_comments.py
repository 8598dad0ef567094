"""Table and column comments from docs/tables.md and docs/billing.md, on every gold table a pipeline run builds."""
from __future__ import annotations

from pathlib import Path

from metering_analytics.io.table_docs import load_table_docs, parse_table_docs

DOCS = Path(__file__).resolve().parents[1] / "docs"

MARKDOWN = """
## Gold
### `gold.a`, `gold.b`
Shared by two tables,
over two lines.

| column | type | meaning |
|---|---|---|
| x, y | int | the `x` and [y](other.md) |
| z | string | a \\| b |

#### gold.c
| column | meaning |
|---|---|
| only | one |

### Revenue — `gold.a`
Prose about a table is not its section.
"""


def test_parser_handles_grouped_columns_and_headings_naming_several_tables():
    docs = parse_table_docs(MARKDOWN)
    assert set(docs) == {"gold.a", "gold.b", "gold.c"}
    assert docs["gold.a"] == docs["gold.b"]
    assert docs["gold.a"].description == "Shared by two tables, over two lines."
    assert dict(docs["gold.a"].columns) == {"x": "the x and y", "y": "the x and y", "z": "a | b"}
    assert dict(docs["gold.c"].columns) == {"only": "one"} and docs["gold.c"].description == ""


def test_every_gold_column_has_a_comment_readable_from_sql(spark, gold_lakehouse):
    docs = load_table_docs(DOCS)
    tables = [n for n in gold_lakehouse.register_all(spark) if n.startswith("gold.")]
    assert "gold.usage_by_property" in tables and "gold.marketplace_usage" in tables
    bare = []
    for name in tables:
        for row in spark.sql(f"DESCRIBE TABLE {name}").collect():
            if row.col_name.startswith("#") or not row.col_name:
                break  # partition information follows
            if not (row.comment or "").strip():
                bare.append(f"{name}.{row.col_name}")
            else:
                assert row.comment == docs[name].columns[row.col_name]
    assert bare == []


def test_gold_tables_are_readable_on_the_jvm_side_and_usage_by_property_is_filled(spark, gold_lakehouse):
    # What a Scala cell's spark.table(...) does: the JVM session reads the same catalog entry.
    jvm_rows = spark._jsparkSession.table("gold.usage_by_property").count()
    assert jvm_rows == spark.table("gold.usage_by_property").count() > 0
    keys = {r.property_key for r in spark.table("gold.usage_by_property").select("property_key").distinct().collect()}
    assert keys == {"region", "feature", "environment"}
    real_values = spark.sql("SELECT count(*) AS n FROM gold.usage_by_property "
                            "WHERE property_value NOT IN ('(none)', '(other)')").first().n
    assert real_values > 0  # the demo's body properties reach gold
