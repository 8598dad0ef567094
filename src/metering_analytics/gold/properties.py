"""Usage by event metadata: gold.usage_by_property.

A UsageReported message may carry `properties`, string pairs the ISV's application sets (region,
feature, tenant, environment, ...). For every property key configured in conf/gold.yml
(`usage_by_property.keys`) each usage event is counted once, under its value of that key, so per day,
product and key the values partition the product's usage and their shares add up to 1.

The table must stay small whatever the application sends, so per key only the top N values are kept
(`usage_by_property.top_values`) and the rest are folded into `(other)`:

- ranking: per key, over the whole table window (every day and product together), by quantity
  descending, then events descending, then the value ascending — deterministic and the same set of
  values on every day and product, so a dashboard's legend does not change from row to row;
- an event without the key (no properties, key absent, JSON null or blank value) counts as `(none)`,
  which is never folded and does not take one of the N places.

Overage is not attributed to property values: it comes from a subscription's running total in the
billing cycle crossing the included quantity, so which event's values "caused" it is an ordering
convention, not a fact of the data (see docs/metrics.md).
"""
from __future__ import annotations

from typing import Sequence

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, DoubleType, LongType, StringType, StructField, StructType

from metering_analytics.billing.quantities import QUANTITY, exact, reported

NONE_VALUE = "(none)"
OTHER_VALUE = "(other)"
SHARE_DECIMALS = 6

USAGE_BY_PROPERTY_SCHEMA = StructType(
    [
        StructField("day", DateType(), False),
        StructField("plan_id", StringType(), False),
        StructField("meter_name", StringType(), False),
        StructField("dimension", StringType(), True),  # null for a waterfall meter
        StructField("property_key", StringType(), False),
        StructField("property_value", StringType(), False),  # a top-N value, '(other)' or '(none)'
        StructField("events", LongType(), False),
        StructField("quantity", DoubleType(), False),
        StructField("share_of_product_quantity", DoubleType(), True),  # null when the product's quantity is 0
    ]
)
_PRODUCT = ["plan_id", "meter_name", "dimension"]
_GROUP = ["day", *_PRODUCT, "property_key", "property_value"]


def property_value(properties: F.Column, key: F.Column) -> F.Column:
    """The event's value of `key`, or '(none)' when it has none (missing, JSON null or blank)."""
    raw = F.element_at(properties, key)
    return F.when(raw.isNull() | (F.trim(raw) == ""), F.lit(NONE_VALUE)).otherwise(raw)


# Per (key, value) over the whole history: what the top-N ranking reads. The incremental gold run keeps
# these in gold.incremental_property_totals, updated from the usage change feed, so the ranking needs
# no scan of the whole history.
VALUE_TOTALS_SCHEMA = StructType(
    [
        StructField("property_key", StringType(), False),
        StructField("property_value", StringType(), False),
        StructField("events", LongType(), False),
        StructField("quantity", QUANTITY, False),
    ]
)


def property_details(usage_events: DataFrame, keys: Sequence[str], sign: str | None = None) -> DataFrame:
    """Events and exact quantity per day, product, key and value (every event once per key).

    With `sign` (a column of +1 / -1 on change-feed rows), rows count as that sign: the details of
    what a change added minus what it removed."""
    per_key = usage_events.select(
        F.to_date("enqueued_time").alias("day"), *_PRODUCT, "quantity", "properties",
        (F.col(sign) if sign else F.lit(1)).alias("_sign"),
        F.explode(F.array(*[F.lit(k) for k in keys])).alias("property_key"),
    ).withColumn("property_value", property_value(F.col("properties"), F.col("property_key")))
    # Aggregated before ranking: the shuffle carries one row per distinct value and day, not per event.
    return per_key.groupBy(*_GROUP).agg(
        F.sum("_sign").cast("long").alias("events"),
        # negated, not multiplied by the sign: a decimal product would widen and drop scale
        exact(F.sum(F.when(F.col("_sign") < 0, -exact(F.col("quantity"))).otherwise(exact(F.col("quantity")))))
        .alias("quantity"))


def value_totals(details: DataFrame) -> DataFrame:
    """VALUE_TOTALS_SCHEMA rows from property_details: the ranked values ('(none)' never ranks)."""
    return (
        details.where(F.col("property_value") != NONE_VALUE)
        .groupBy("property_key", "property_value")
        .agg(F.sum("events").cast("long").alias("events"), exact(F.sum("quantity")).alias("quantity"))
    )


def add_totals(totals: DataFrame, changes: DataFrame) -> DataFrame:
    """Totals plus the value_totals of a change (signed); a value left without events drops out."""
    keys = ["property_key", "property_value"]
    both = totals.unionByName(changes.select(*keys, "events", "quantity"))
    return (
        both.groupBy(*keys)
        .agg(F.sum("events").cast("long").alias("events"), exact(F.sum("quantity")).alias("quantity"))
        .where(F.col("events") != 0)
    )


def top_values(totals: DataFrame, top_n: int) -> DataFrame:
    """(property_key, property_value) of the N values per key with the most quantity over the whole window."""
    ranked = Window.partitionBy("property_key").orderBy(
        F.col("quantity").desc(), F.col("events").desc(), F.col("property_value").asc())
    return (
        totals.withColumn("_rank", F.row_number().over(ranked))
        .where(F.col("_rank") <= top_n)
        .select("property_key", "property_value")
    )


def fold_properties(details: DataFrame, kept: DataFrame) -> DataFrame:
    """USAGE_BY_PROPERTY_SCHEMA rows from property_details and the kept (property_key, property_value)
    pairs: every other value folded into '(other)', shares per day, product and key."""
    kept = F.broadcast(kept.select("property_key", "property_value", F.lit(True).alias("_kept")))
    folded_value = F.when(F.col("_kept") | (F.col("property_value") == NONE_VALUE), F.col("property_value")) \
        .otherwise(F.lit(OTHER_VALUE))
    folded = (
        details.join(kept, ["property_key", "property_value"], "left")
        .withColumn("property_value", folded_value)
        .groupBy(*_GROUP)
        .agg(F.sum("events").alias("events"), exact(F.sum("quantity")).alias("quantity"))
    )
    product = Window.partitionBy("day", *_PRODUCT, "property_key")
    product_quantity = exact(F.sum("quantity").over(product))
    share = F.when(product_quantity != 0,
                   F.round(F.col("quantity") / product_quantity, SHARE_DECIMALS).cast("double"))
    return folded.select(
        *_GROUP, F.col("events").cast("long").alias("events"), reported(F.col("quantity")).alias("quantity"),
        share.alias("share_of_product_quantity"),
    )


def usage_by_property(usage_events: DataFrame, keys: Sequence[str], top_n: int) -> DataFrame:
    """USAGE_BY_PROPERTY_SCHEMA rows from silver.usage_events; empty when no key is configured."""
    if not keys:
        return usage_events.sparkSession.createDataFrame([], USAGE_BY_PROPERTY_SCHEMA)
    details = property_details(usage_events, keys)
    return fold_properties(details, top_values(value_totals(details), top_n))
