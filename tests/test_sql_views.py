"""The SQL views of sql/views run against gold tables built by a small pipeline run."""
from __future__ import annotations

from pathlib import Path

import pytest

from metering_analytics.gold.views import read_view, view_definitions

VIEWS_DIR = Path(__file__).resolve().parents[1] / "sql" / "views"
# Views that the demo data must fill (the others may legitimately be empty on 35 days of data).
NON_EMPTY = {"v_sales_revenue_month_over_month", "v_sales_mrr_movements", "v_sales_top_customers_this_month",
             "v_sales_usage_by_property_last_30_days", "v_ops_event_totals_daily", "v_ops_throughput_headroom_daily",
             "v_ops_submission_health_last_30_days", "v_ops_data_freshness", "v_cs_subscription_consumption_daily"}


def test_every_view_file_is_one_commented_select():
    views = view_definitions(VIEWS_DIR)
    assert len(views) >= 10 and NON_EMPTY <= {v.name for v in views}
    for view in views:
        assert view.name.startswith(("v_sales_", "v_ops_", "v_cs_")) and view.comment, view.name


def test_every_view_runs_in_the_gold_schema(spark, gold_lakehouse):
    for view in view_definitions(VIEWS_DIR):
        name = gold_lakehouse.table_name("gold", view.name)
        rows = spark.table(name).count()
        assert rows > 0 or view.name not in NON_EMPTY, name
    described = {r.col_name for r in spark.sql("DESCRIBE TABLE EXTENDED gold.v_sales_mrr_movements").collect()}
    assert "mrr" in described


def test_views_agree_with_their_tables(spark, gold_lakehouse):
    mrr_view = spark.sql("SELECT sum(mrr) AS m, sum(net_new_mrr) AS n FROM gold.v_sales_mrr_movements").first()
    mrr_table = spark.sql("SELECT sum(mrr) AS m, sum(net_new_mrr) AS n FROM gold.sales_mrr").first()
    assert mrr_view == mrr_table
    month_over_month = spark.sql(
        "SELECT month, sum(gross_revenue) AS g FROM gold.v_sales_revenue_month_over_month GROUP BY month").collect()
    this_month = spark.sql(
        "SELECT month, sum(gross_revenue) AS g FROM gold.sales_revenue_by_product_monthly "
        "WHERE month = (SELECT max(month) FROM gold.sales_revenue_by_product_monthly) GROUP BY month").collect()
    assert month_over_month == this_month
    shares = spark.sql("SELECT property_key, sum(share_of_product_quantity) AS s "
                       "FROM gold.v_sales_usage_by_property_last_30_days "
                       "GROUP BY plan_id, meter_name, dimension, property_key").collect()
    assert shares and all(r.s == pytest.approx(1.0, abs=1e-4) for r in shares)


def test_a_view_file_must_be_a_select(tmp_path):
    bad = tmp_path / "v_bad.sql"
    bad.write_text("-- drops things\nDROP TABLE gold.sales_mrr\n")
    with pytest.raises(ValueError, match="one SELECT"):
        read_view(bad)
