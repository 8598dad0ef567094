"""conf/gold.yml: defaults, validation errors that name the entry, and the check before any table changes."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from metering_analytics.billing.prices import load_price_catalog
from metering_analytics.config import ConfigError, load_config
from metering_analytics.gold.settings import (
    GoldSettings,
    OverageThreshold,
    check_against_catalog,
    load_gold_settings,
    parse_gold_settings,
)
from metering_analytics.pipeline import load_run_context

CONF = Path(__file__).resolve().parents[1] / "conf"


def test_the_project_settings_load_and_match_the_price_catalog():
    settings = load_gold_settings(CONF / "gold.yml")
    check_against_catalog(settings, load_price_catalog(CONF / "prices.yml"))
    assert settings.capacity_events_per_second == settings.throughput_units * 1000
    assert OverageThreshold("starter", "api_calls", "units_per_day", 20000.0) in settings.thresholds


def test_defaults():
    assert parse_gold_settings(None, "g.yml") == GoldSettings(source="g.yml")
    assert parse_gold_settings({}, "g.yml").heatmap_timezone == "UTC"


@pytest.mark.parametrize("raw, message", [
    ({"overage_alerts": {"thresholds": {"p": {"d": {"units_per_day": "lots"}}}}},
     "g.yml: overage_alerts.thresholds.p.d.units_per_day: must be a non-negative number, got 'lots'"),
    ({"overage_alerts": {"thresholds": {"p": {"d": {"units_per_week": 5}}}}},
     "g.yml: overage_alerts.thresholds.p.d: unknown entries units_per_week"),
    ({"overage_alerts": {"thresholds": {"p": {"d": {"units_per_day": -1}}}}}, "units_per_day: must be a non-negative"),
    ({"overage_alerts": {"fail_on_alert": "yes"}}, "g.yml: overage_alerts.fail_on_alert: must be true or false"),
    ({"heatmap": {"timezone": "Mars/Olympus"}}, "g.yml: heatmap.timezone: unknown time zone 'Mars/Olympus'"),
    ({"heatmap": {"lookback_days": -3}}, "g.yml: heatmap.lookback_days: must be an integer from 0"),
    ({"event_hubs": {"throughput_units": 0}}, "g.yml: event_hubs.throughput_units: must be an integer from 1"),
    ({"top_customers": {"size": 2.5}}, "g.yml: top_customers.size: must be an integer from 1 to 1000"),
    ({"top_customer": {"size": 5}}, "g.yml: unknown entries top_customer"),
    ({"heatmap": ["UTC"]}, "g.yml: heatmap: must be a mapping"),
])
def test_errors_name_the_entry(raw, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        parse_gold_settings(raw, "g.yml")


def test_thresholds_must_name_priced_products():
    settings = parse_gold_settings({"overage_alerts": {"thresholds": {
        "starter": {"api_calls": {"units_per_day": 1}, "api_call": {"units_per_day": 1}},
        "startr": {"api_calls": {"units_per_month": 1}},
    }}}, "g.yml")
    with pytest.raises(ConfigError, match="g.yml: overage_alerts.thresholds.starter.api_call, "
                                          "overage_alerts.thresholds.startr.api_calls: no such plan and dimension"):
        check_against_catalog(settings, load_price_catalog(CONF / "prices.yml"))


def test_a_bad_setting_stops_the_run_before_any_table_changes(tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    for name in ("pipeline.yml", "prices.yml", "forecast.yml", "churn.yml"):
        shutil.copy(CONF / name, conf / name)
    (conf / "gold.yml").write_text(yaml.safe_dump({"event_hubs": {"throughput_units": "two"}}))
    config = load_config(conf / "pipeline.yml")
    with pytest.raises(ConfigError, match="gold.yml: event_hubs.throughput_units"):
        load_run_context(None, config)
    (conf / "gold.yml").write_text(yaml.safe_dump({"heatmap": {"timezone": "Europe/Berlin"}}))
    assert load_run_context(None, config).gold.heatmap_timezone == "Europe/Berlin"
