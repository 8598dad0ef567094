"""gold.usage_by_property on hand-made events, the property settings, and silver's parsing of body properties."""
from __future__ import annotations

from datetime import datetime as dt

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from metering_analytics.config import ConfigError
from metering_analytics.gold.properties import USAGE_BY_PROPERTY_SCHEMA, usage_by_property
from metering_analytics.gold.settings import parse_gold_settings
from metering_analytics.schemas import MESSAGE_SCHEMA, SILVER_USAGE_EVENTS_SCHEMA
from metering_analytics.silver.facts import body_properties, merged_properties

DAY1, DAY2 = dt(2025, 3, 1, 10), dt(2025, 3, 2, 11)


def usage_rows(spark, events):
    """events: (enqueued_time, meter_name, dimension, quantity, properties)."""
    rows = [("0", i, "sub-1", "rid", None, "starter", meter, dimension, float(q), at, None, props)
            for i, (at, meter, dimension, q, props) in enumerate(events)]
    return spark.createDataFrame(rows, SILVER_USAGE_EVENTS_SCHEMA)


def test_top_n_folds_the_rest_into_other_and_missing_keys_into_none(spark):
    usage = usage_rows(spark, [
        (DAY1, "api", "api_calls", 50, {"region": "eu", "feature": "search"}),
        (DAY1, "api", "api_calls", 30, {"region": "us"}),
        (DAY1, "api", "api_calls", 5, {"region": "asia"}),
        (DAY1, "api", "api_calls", 4, {"region": "africa"}),
        (DAY1, "api", "api_calls", 11, None),                     # no properties at all
        (DAY2, "api", "api_calls", 10, {"region": "asia", "feature": " "}),  # blank counts as missing
    ])
    result = usage_by_property(usage, ["region", "feature"], top_n=2)
    # Top 2 regions over the whole window: eu (50), us (30); asia (15 over two days) and africa fold.
    d1, d2 = DAY1.date(), DAY2.date()
    expected = spark.createDataFrame([
        (d1, "starter", "api", "api_calls", "feature", "(none)", 4, 50.0, 0.5),
        (d1, "starter", "api", "api_calls", "feature", "search", 1, 50.0, 0.5),
        (d1, "starter", "api", "api_calls", "region", "(none)", 1, 11.0, 0.11),
        (d1, "starter", "api", "api_calls", "region", "(other)", 2, 9.0, 0.09),
        (d1, "starter", "api", "api_calls", "region", "eu", 1, 50.0, 0.5),
        (d1, "starter", "api", "api_calls", "region", "us", 1, 30.0, 0.3),
        (d2, "starter", "api", "api_calls", "feature", "(none)", 1, 10.0, 1.0),
        (d2, "starter", "api", "api_calls", "region", "(other)", 1, 10.0, 1.0),
    ], USAGE_BY_PROPERTY_SCHEMA)
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)


def test_ties_are_broken_by_events_then_value(spark):
    usage = usage_rows(spark, [
        (DAY1, "api", "api_calls", 10, {"tenant": "b"}),
        (DAY1, "api", "api_calls", 10, {"tenant": "a"}),
        (DAY1, "api", "api_calls", 5, {"tenant": "c"}),
        (DAY1, "api", "api_calls", 5, {"tenant": "c"}),
    ])
    kept = {r.property_value for r in usage_by_property(usage, ["tenant"], top_n=2).collect()}
    assert kept == {"c", "a", "(other)"}  # c: 10 in 2 events beats a and b; a before b by name


def test_many_distinct_values_give_at_most_n_plus_two_rows_per_product_day_and_key(spark):
    events = [(DAY1, "api", "api_calls", 1 + i % 7, {"tenant": f"t{i:04d}", "region": "eu"}) for i in range(2000)]
    result = usage_by_property(usage_rows(spark, events), ["tenant", "region"], top_n=5).localCheckpoint()
    per_key = {r.property_key: r.n for r in result.groupBy("property_key").agg(F.count(F.lit(1)).alias("n")).collect()}
    assert per_key == {"tenant": 6, "region": 1}
    totals = result.groupBy("property_key").agg(F.sum("quantity").alias("q"), F.sum("events").alias("e"),
                                                F.sum("share_of_product_quantity").alias("s")).collect()
    total_quantity = sum(1 + i % 7 for i in range(2000))
    for row in totals:  # every key partitions the product's usage
        assert (row.q, row.e) == (total_quantity, 2000) and row.s == pytest.approx(1.0, abs=1e-5)


def test_waterfall_usage_keeps_a_null_dimension_and_no_keys_give_an_empty_table(spark):
    usage = usage_rows(spark, [(DAY1, "egress", None, 3, {"region": "eu"})])
    rows = usage_by_property(usage, ["region"], top_n=3).collect()
    assert [(r.dimension, r.property_value, r.share_of_product_quantity) for r in rows] == [(None, "eu", 1.0)]
    assert usage_by_property(usage, [], top_n=3).count() == 0


def test_settings_are_validated():
    settings = parse_gold_settings({"usage_by_property": {"keys": ["region", "feature"], "top_values": 5}}, "g.yml")
    assert (settings.property_keys, settings.property_top_values) == (("region", "feature"), 5)
    assert parse_gold_settings({}, "g.yml").property_keys == ()
    with pytest.raises(ConfigError, match=r"g.yml: usage_by_property.keys\[1\]: 'region' is listed twice"):
        parse_gold_settings({"usage_by_property": {"keys": ["region", "region"]}}, "g.yml")
    with pytest.raises(ConfigError, match="usage_by_property.keys: must be a list"):
        parse_gold_settings({"usage_by_property": {"keys": "region"}}, "g.yml")
    with pytest.raises(ConfigError, match="usage_by_property.top_values: must be an integer"):
        parse_gold_settings({"usage_by_property": {"top_values": 0}}, "g.yml")


def test_body_properties_are_parsed_and_merged_over_application_properties(spark):
    bodies = [
        '{"type":"UsageReported","value":{"properties":{"region":"eu","n":1.5,"ok":true,"o":{"k":1}}}}',
        '{"type":"UsageReported","value":{"properties":"not an object"}}',
        '{"type":"UsageReported","value":{}}',
    ]
    df = spark.createDataFrame([(b, {"region": "app", "tenant": "t1"}) for b in bodies],
                               "body string, app map<string,string>")
    parsed = df.select(merged_properties(body_properties(F.from_json("body", MESSAGE_SCHEMA)["value"]["properties"]),
                                         F.col("app")).alias("p")).collect()
    assert [r.p for r in parsed] == [
        {"region": "eu", "n": "1.5", "ok": "true", "o": '{"k":1}', "tenant": "t1"},
        {"region": "app", "tenant": "t1"},
        {"region": "app", "tenant": "t1"},
    ]
    none = spark.createDataFrame([(None,)], "app map<string,string>").select(
        merged_properties(F.lit(None).cast("map<string,string>"), F.col("app")).alias("p")).first()
    assert none.p is None
