"""Per-event accounting: which part of each usage event is included and which is overage, and on
which Marketplace dimension (design brief rules 3 and 4), for all subscriptions at once.

A meter is described as *bands* of the usage accumulated in one cycle: [lower, upper) with the
Marketplace dimension that usage in the band bills to, or none for the included (free) band.

* simple, included Q:  [0, Q) free, [Q, inf) -> dimension     (Q missing or 0: everything bills)
* simple, Infinite:    [0, inf) free
* waterfall, C_i = running sum of the tier thresholds:
                       [0, C_0) free, [C_i, C_(i+1)) -> tier i, [C_(n-1), inf) -> last tier

An event moves the cycle's running total from `usage_before` to `usage_after`; the part of it in a
band is the length of [usage_before, usage_after) intersected with the band. One event can span
several bands. Running totals are exact decimal window sums (see `quantities`), ordered the way the
accelerator applies events: enqueued time, then partition and sequence number.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, IntegerType, LongType, StringType, StructField, StructType, TimestampType

from metering_analytics.billing import cycles
from metering_analytics.billing.quantities import QUANTITY, exact

BANDS_SCHEMA = StructType(
    [
        StructField("subscription_key", StringType(), False),
        StructField("meter_name", StringType(), False),
        StructField("band_lower", QUANTITY, False),
        StructField("band_upper", QUANTITY, True),  # null: no upper bound
        StructField("dimension", StringType(), True),  # null: the included (free) band
    ]
)

METERS_SCHEMA = StructType(
    [
        StructField("subscription_key", StringType(), False),
        StructField("meter_name", StringType(), False),
        StructField("dimension_type", StringType(), False),
        StructField("dimension", StringType(), True),
        # simple: the included quantity (0 when missing); waterfall: C_0; null when Infinite
        StructField("included_quantity", QUANTITY, True),
        StructField("included_infinite", BooleanType(), False),
    ]
)

EVENT_CYCLES_SCHEMA = StructType(
    [
        StructField("partition_id", StringType(), False),
        StructField("sequence_number", LongType(), False),
        StructField("subscription_key", StringType(), False),
        StructField("meter_name", StringType(), False),
        StructField("enqueued_time", TimestampType(), False),
        StructField("quantity", QUANTITY, False),
        StructField("cycle_index", IntegerType(), False),
        StructField("cycle_start", TimestampType(), False),
        StructField("cycle_end", TimestampType(), False),
    ]
)

EVENT_OVERAGE_SCHEMA = StructType(
    [
        StructField("partition_id", StringType(), False),
        StructField("sequence_number", LongType(), False),
        StructField("subscription_key", StringType(), False),
        StructField("meter_name", StringType(), False),
        StructField("enqueued_time", TimestampType(), False),
        StructField("cycle_index", IntegerType(), False),
        StructField("dimension", StringType(), False),
        StructField("overage_quantity", QUANTITY, False),
    ]
)

_METER = ["subscription_key", "meter_name"]
# Optional column of event cycles: the meter's cycle usage before the first of the events given (an
# incremental run numbering a cycle from the middle, see `resume`); absent means 0.
USAGE_BASE = "usage_base"


def _sorted_tiers(plan_dimensions: DataFrame) -> DataFrame:
    """One row per waterfall tier with C_i (`upper_total`) and C_(i+1) (`next_total`)."""
    tiers = (
        plan_dimensions.where(F.col("dimension_type") == "waterfall")
        .select(*_METER, F.explode("tiers").alias("tier"))
        .select(*_METER, "tier.tier_index", "tier.dimension", exact(F.col("tier.threshold")).alias("threshold"))
    )
    in_order = Window.partitionBy(*_METER).orderBy("tier_index")
    running = in_order.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    return (
        tiers.withColumn("upper_total", exact(F.sum("threshold").over(running)))
        .withColumn("next_total", F.lead("upper_total").over(in_order))
        .withColumn("position", F.row_number().over(in_order))
    )


def meters(plan_dimensions: DataFrame) -> DataFrame:
    """Each subscription's meters with their included (free) quantity: METERS_SCHEMA."""
    free_band = (
        _sorted_tiers(plan_dimensions).where(F.col("position") == 1)
        .select(*_METER, F.col("upper_total").alias("waterfall_free"))
    )
    simple_included = F.when(
        F.col("included_infinite"), F.lit(None)
    ).otherwise(exact(F.coalesce(F.col("included_quantity"), F.lit(0.0))))
    is_waterfall = F.col("dimension_type") == "waterfall"
    return plan_dimensions.join(free_band, _METER, "left").select(
        *_METER,
        "dimension_type",
        F.when(is_waterfall, F.lit(None)).otherwise(F.col("dimension")).alias("dimension"),
        # A waterfall with no tiers bills nothing: all of it is free.
        F.when(is_waterfall, F.col("waterfall_free")).otherwise(simple_included).cast(QUANTITY)
        .alias("included_quantity"),
        (F.when(is_waterfall, F.col("waterfall_free").isNull()).otherwise(F.col("included_infinite")))
        .alias("included_infinite"),
    )


def meter_bands(plan_dimensions: DataFrame) -> DataFrame:
    """Every meter as bands of cycle usage and the dimension each bills to: BANDS_SCHEMA."""
    zero = exact(F.lit(0))
    simple = plan_dimensions.where(F.col("dimension_type") != "waterfall")
    included = exact(F.coalesce(F.col("included_quantity"), F.lit(0.0)))
    simple_free = simple.select(
        *_METER,
        zero.alias("band_lower"),
        F.when(F.col("included_infinite"), F.lit(None)).otherwise(included).cast(QUANTITY).alias("band_upper"),
        F.lit(None).cast("string").alias("dimension"),
    )
    simple_billed = simple.where(~F.col("included_infinite")).select(
        *_METER, included.alias("band_lower"), F.lit(None).cast(QUANTITY).alias("band_upper"), "dimension"
    )
    tiers = _sorted_tiers(plan_dimensions)
    waterfall_free = tiers.where(F.col("position") == 1).select(
        *_METER, zero.alias("band_lower"), F.col("upper_total").alias("band_upper"),
        F.lit(None).cast("string").alias("dimension"),
    )
    waterfall_billed = tiers.select(
        *_METER, F.col("upper_total").alias("band_lower"), F.col("next_total").alias("band_upper"), "dimension"
    )
    return simple_free.unionByName(simple_billed).unionByName(waterfall_free).unionByName(waterfall_billed)


def usage_cycles(usage_events: DataFrame, subscriptions: DataFrame) -> DataFrame:
    """Usage events with their exact quantity and the billing cycle they fall in: EVENT_CYCLES_SCHEMA."""
    subs = subscriptions.select("subscription_key", "subscription_start", "renewal_months")
    k = cycles.cycle_index("subscription_start", "renewal_months", "enqueued_time")
    return (
        usage_events.select("partition_id", "sequence_number", "subscription_key", "meter_name",
                            "enqueued_time", exact(F.col("quantity")).alias("quantity"))
        .join(F.broadcast(subs), "subscription_key")
        .withColumn("cycle_index", k)
        .select(
            "partition_id", "sequence_number", "subscription_key", "meter_name", "enqueued_time", "quantity",
            "cycle_index",
            cycles.cycle_start("subscription_start", "renewal_months", "cycle_index").alias("cycle_start"),
            cycles.cycle_end("subscription_start", "renewal_months", "cycle_index").alias("cycle_end"),
        )
    )


def with_running_totals(event_cycles: DataFrame) -> DataFrame:
    """Adds usage_before / usage_after: the meter's cycle total just before and after each event."""
    applied_so_far = (
        Window.partitionBy("subscription_key", "meter_name", "cycle_index")
        .orderBy("enqueued_time", "partition_id", "sequence_number")
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    after = exact(F.sum("quantity").over(applied_so_far))
    if USAGE_BASE in event_cycles.columns:
        after = exact(F.col(USAGE_BASE) + after)
    return (
        event_cycles.withColumn("usage_after", after)
        .withColumn("usage_before", exact(F.col("usage_after") - F.col("quantity")))
    )


def event_overage(event_cycles: DataFrame, plan_dimensions: DataFrame) -> DataFrame:
    """The overage each event causes, one row per (event, dimension) it bills: EVENT_OVERAGE_SCHEMA."""
    billed_bands = meter_bands(plan_dimensions).where(F.col("dimension").isNotNull()).alias("b")
    events = with_running_totals(event_cycles).alias("e")
    # Only bands that [usage_before, usage_after) reaches into; an empty event reaches none.
    reaches = (
        (F.col("e.subscription_key") == F.col("b.subscription_key"))
        & (F.col("e.meter_name") == F.col("b.meter_name"))
        & (F.col("b.band_lower") < F.col("e.usage_after"))
        & (F.col("b.band_upper").isNull() | (F.col("b.band_upper") > F.col("e.usage_before")))
    )
    top = F.least(F.col("e.usage_after"), F.coalesce(F.col("b.band_upper"), F.col("e.usage_after")))
    bottom = F.greatest(F.col("e.usage_before"), F.col("b.band_lower"))
    return (
        events.join(F.broadcast(billed_bands), reaches)
        .select(
            "e.partition_id", "e.sequence_number", "e.subscription_key", "e.meter_name", "e.enqueued_time",
            "e.cycle_index", "b.dimension", exact(top - bottom).alias("overage_quantity"),
        )
        .where(F.col("overage_quantity") > 0)
    )
