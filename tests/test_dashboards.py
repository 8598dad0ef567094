"""The persona dashboards: spec -> Lakeview JSON (checked without Spark) and spec -> local HTML.

The suite's shared pipeline run (tests/pipeline_run.py) is rendered once; every dataset's SQL, the HTML
dashboards (opened in headless Chromium), the customer reports and the analyst notebooks use it.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import pytest
import yaml

from metering_analytics.config import ConfigError
from metering_analytics.dashboards import lakeview
from metering_analytics.dashboards.render import (
    Choices, choices_figure, local_sql, run_dataset, write_local_dashboards,
)
from metering_analytics.dashboards.reports import report_file_name
from metering_analytics.dashboards.spec import PARAMETERS, LAKEVIEW_DIR, Dataset, load_specs, parse_spec

PROJECT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ANALYSIS = PROJECT / "notebooks" / "analysis"
# The dashboards whose usage-by-property chart shows one property key, picked by the user.
PROPERTY_DASHBOARDS = ["sales", "customer_success"]
# Where the HTML test leaves its screenshots (default: the test's temporary folder).
SCREENSHOT_DIR = os.environ.get("METERING_SCREENSHOT_DIR")


# -- spec and Lakeview (no Spark) -------------------------------------------------------------------

def test_lakeview_files_are_generated_from_the_specs():
    stale = lakeview.write_lakeview(check=True)
    assert not stale, f"run `python -m metering_analytics.dashboards.lakeview`: {stale}"
    assert {p.name for p in LAKEVIEW_DIR.glob("*.lvdash.json")} == {
        "sales.lvdash.json", "operations.lvdash.json", "customer_success.lvdash.json"}


@pytest.mark.parametrize("name", ["sales", "operations", "customer_success"])
def test_lakeview_dashboard_is_consistent(name):
    board = json.loads((LAKEVIEW_DIR / f"{name}.lvdash.json").read_text())
    datasets = {d["name"]: d for d in board["datasets"]}
    assert len(datasets) == len(board["datasets"])
    for ds in datasets.values():
        sql = "".join(ds["queryLines"])
        # Unqualified tables: the bundle sets dataset_catalog / dataset_schema per target.
        assert not re.search(r"\b(?:FROM|JOIN)\s+[\w`]+\.", sql, re.I), ds["name"]
        declared = {p["keyword"] for p in ds.get("parameters", [])}
        used = set(re.findall(r"(?<![:\w]):(\w+)", re.sub(r"'[^']*'", "''", sql)))
        assert used == declared, ds["name"]
    widget_names = set()
    for page in board["pages"]:
        assert page["pageType"] == "PAGE_TYPE_CANVAS"
        cells = set()
        for item in page["layout"]:
            w, pos = item["widget"], item["position"]
            assert w["name"] not in widget_names
            widget_names.add(w["name"])
            assert 0 <= pos["x"] and pos["x"] + pos["width"] <= 6 and pos["height"] > 0
            area = {(x, y) for x in range(pos["x"], pos["x"] + pos["width"])
                    for y in range(pos["y"], pos["y"] + pos["height"])}
            assert not area & cells, f"{w['name']} overlaps another widget"
            cells |= area
            if "multilineTextboxSpec" in w:
                continue
            spec, queries = w["spec"], {q["name"]: q["query"] for q in w["queries"]}
            for query in queries.values():
                assert query["datasetName"] in datasets
                for param in query.get("parameters", []):
                    assert param["keyword"] in {p["keyword"] for p in datasets[query["datasetName"]]["parameters"]}
            if spec["widgetType"].startswith("filter-"):
                assert spec["version"] == 2
                for enc in spec["encodings"]["fields"]:
                    assert enc["queryName"] in queries
                continue
            assert spec["version"] == lakeview.WIDGET_VERSIONS[spec["widgetType"]]
            (main,) = queries.values()
            names = {f["name"] for f in main["fields"]}
            encodings = spec["encodings"]
            referenced = [e["fieldName"] for e in encodings.get("columns", [])] + [
                e["fieldName"] for k, e in encodings.items() if isinstance(e, dict) and "fieldName" in e]
            assert referenced and set(referenced) <= names, w["name"]


def test_dashboard_resources_match_the_sdk_and_the_files():
    from databricks.sdk.service.dashboards import Dashboard

    bundle = yaml.safe_load((PROJECT / "databricks.yml").read_text())
    assert "warehouse_id" in bundle["variables"]
    resources = yaml.safe_load((PROJECT / "resources" / "dashboards.yml").read_text())["resources"]["dashboards"]
    assert set(resources) == {"sales", "operations", "customer_success"}
    for key, res in resources.items():
        path = (PROJECT / "resources" / res["file_path"]).resolve()
        assert path == LAKEVIEW_DIR / f"{key}.lvdash.json" and path.is_file()
        assert res["warehouse_id"] == "${var.warehouse_id}"
        assert res["dataset_catalog"] == "${var.catalog}"
        assert res["dataset_schema"] == "${resources.schemas.gold.name}"
        # The fields the Lakeview API knows, plus the bundle's own (file_path, dataset_*, permissions).
        api = {"display_name": res["display_name"], "warehouse_id": "abc123",
               "serialized_dashboard": path.read_text()}
        assert Dashboard.from_dict(api).as_dict() == api
        assert set(res) - set(api) <= {"file_path", "dataset_catalog", "dataset_schema", "permissions",
                                       "embed_credentials", "parent_path"}
        assert {p["level"] for p in res["permissions"]} <= {"CAN_READ", "CAN_RUN", "CAN_EDIT", "CAN_MANAGE"}


def test_spec_errors_name_the_bad_entry():
    base = {"datasets": {"d": {"sql": "SELECT day FROM t WHERE (:plan = 'All' OR plan_id = :plan)"}},
            "pages": [{"name": "p", "widgets": [{"title": "T", "type": "line", "dataset": "d", "x": "day",
                                                  "y": "sum(q)"}]}]}
    assert parse_spec("ok", base).datasets["d"].parameters[0].keyword == "plan"
    bad_param = {**base, "datasets": {"d": {"sql": "SELECT 1 FROM t WHERE x = :region"}}}
    with pytest.raises(ConfigError, match="unknown parameter :region"):
        parse_spec("x", bad_param)
    per_subscription = {**base, "pages": [{**base["pages"][0], "per_subscription": True}]}
    with pytest.raises(ConfigError, match="must filter on :subscription"):
        parse_spec("x", per_subscription)
    bad_field = {**base, "pages": [{"name": "p", "widgets": [{"title": "T", "type": "line", "dataset": "d",
                                                              "x": "day", "y": "median(q)"}]}]}
    with pytest.raises(ConfigError, match="median"):
        parse_spec("x", bad_field)
    no_y = {**base, "pages": [{"name": "p", "widgets": [{"title": "T", "type": "bar", "dataset": "d", "x": "day"}]}]}
    with pytest.raises(ConfigError, match=r"needs \['y'\]"):
        parse_spec("x", no_y)


def test_local_sql_substitutes_parameters_outside_strings():
    spec = parse_spec("s", {"datasets": {"d": {"sql": (
        "SELECT ':plan' AS text, x::int FROM t WHERE day BETWEEN :date_range.min AND :date_range.max "
        "AND (:subscription = 'All' OR subscription_key = :subscription)")}},
        "pages": [{"name": "p", "widgets": [{"title": "T", "type": "table", "dataset": "d", "columns": ["x"]}]}]})
    sql = local_sql(spec.datasets["d"], {"subscription": "it's"})
    assert sql == ("SELECT ':plan' AS text, x::int FROM t WHERE day BETWEEN DATE'2000-01-01' AND DATE'2099-12-31' "
                   "AND ('it\\'s' = 'All' OR subscription_key = 'it\\'s')")


def _configured_property_keys() -> list[str]:
    return yaml.safe_load((PROJECT / "conf" / "gold.yml").read_text())["usage_by_property"]["keys"]


PICKED = {"datasets": {
    "by_key": {"sql": "SELECT k, v, q FROM t WHERE (:plan = 'All' OR plan_id = :plan) AND k = :key"},
    "keys": {"sql": "SELECT DISTINCT k FROM t ORDER BY k"}},
    "pages": [{"name": "p", "widgets": [{"title": "T", "type": "bar", "dataset": "by_key", "x": "v",
                                         "y": "sum(q)", "color": "k"}]}]}


def test_a_spec_declares_a_parameter_whose_choices_a_dataset_lists(tmp_path):
    (tmp_path / "gold.yml").write_text("usage_by_property:\n  keys: [tier, region]\n  empty: []\n")
    key = {"display_name": "Key", "options": {"dataset": "keys", "column": "k"},
           "default_from": "gold.yml usage_by_property.keys", "local": "dropdown"}
    spec = parse_spec("s", {**PICKED, "parameters": {"key": key}}, conf_dir=tmp_path)
    (param,) = spec.declared
    assert (param.default, param.options_dataset, param.options_field, param.dropdown) == (
        ("tier",), "keys", "k", True)
    assert [p.keyword for p in spec.datasets["by_key"].parameters] == ["plan", "key"]
    assert spec.datasets["by_key"].dropdown_parameter == param
    assert spec.datasets["keys"].dropdown_parameter is None
    assert [p.keyword for p in spec.parameters()] == ["plan", "key"]
    # An empty configured list falls back to `default`.
    fallback = {**key, "default_from": "gold.yml usage_by_property.empty", "default": "region"}
    assert parse_spec("s", {**PICKED, "parameters": {"key": fallback}}, conf_dir=tmp_path).declared[0].default == (
        "region",)
    bad = [({**key, "options": {"dataset": "nope", "column": "k"}}, "options dataset 'nope'"),
           ({**key, "options": "keys"}, "options must be"),
           ({k: v for k, v in key.items() if k != "default_from"}, "needs a default"),
           ({**key, "local": "slider"}, "local must be"),
           ({**key, "type": "DATE"}, "type must be STRING")]
    for entry, message in bad:
        with pytest.raises(ConfigError, match=message):
            parse_spec("s", {**PICKED, "parameters": {"key": entry}}, conf_dir=tmp_path)
    with pytest.raises(ConfigError, match="built-in"):
        parse_spec("s", {**PICKED, "parameters": {"plan": key}}, conf_dir=tmp_path)
    two = {**PICKED, "parameters": {"key": key, "other": key}, "datasets": {
        **PICKED["datasets"], "by_key": {"sql": PICKED["datasets"]["by_key"]["sql"] + " AND v = :other"}}}
    with pytest.raises(ConfigError, match="more than one `local: dropdown`"):
        parse_spec("s", two, conf_dir=tmp_path)


@pytest.mark.parametrize("name", PROPERTY_DASHBOARDS)
def test_lakeview_property_filter_is_bound_to_the_usage_by_property_chart(name):
    board = json.loads((LAKEVIEW_DIR / f"{name}.lvdash.json").read_text())
    datasets = {d["name"]: d for d in board["datasets"]}
    (param,) = [p for p in datasets["usage_by_property"]["parameters"] if p["keyword"] == "property_key"]
    first_key = _configured_property_keys()[0]
    assert param["defaultSelection"]["values"]["values"] == [{"value": first_key}]
    assert "property_key" in "".join(datasets["property_keys"]["queryLines"])
    # The page with the chart has one property filter: its choices from property_keys, bound to the chart's
    # dataset, the first configured key selected.
    (page,) = [p for p in board["pages"] if any(i["widget"]["name"] == "usage_by_property" for i in p["layout"])]
    filters = [i["widget"] for i in page["layout"] if i["widget"]["name"].endswith("_filter_property_key")]
    assert len(filters) == 1
    (widget,) = filters
    assert widget["spec"]["widgetType"] == "filter-single-select"
    queries = {q["name"]: q["query"] for q in widget["queries"]}
    bound = {(queries[f["queryName"]]["datasetName"], f.get("fieldName") or f.get("parameterName"))
             for f in widget["spec"]["encodings"]["fields"]}
    assert bound == {("property_keys", "property_key"), ("usage_by_property", "property_key")}
    assert widget["spec"]["selection"]["defaultSelection"]["values"]["values"] == [{"value": first_key}]
    # No other page carries the filter: it would filter nothing there.
    others = [i for p in board["pages"] if p is not page for i in p["layout"]
              if i["widget"]["name"].endswith("_filter_property_key")]
    assert not others


def test_a_chart_over_a_dropdown_dataset_draws_each_choice_and_shows_the_default():
    import pandas as pd

    spec = parse_spec("s", {**PICKED, "parameters": {"key": {
        "display_name": "Key", "options": {"dataset": "keys", "column": "k"}, "default": "tier",
        "local": "dropdown"}}})
    (widget,) = spec.pages[0].widgets
    choices = Choices(spec.declared[0], {
        "region": pd.DataFrame({"k": ["region"] * 3, "v": ["eu", "us", "eu"], "q": [1.0, 2.0, 3.0]}),
        "tier": pd.DataFrame({"k": ["tier"], "v": ["gold"], "q": [5.0]}),
        "unused": pd.DataFrame({"k": [], "v": [], "q": []})})
    figure = choices_figure(widget, choices)
    assert [(t["meta"]["choice"], t["visible"], t["x"], t["y"]) for t in figure["data"]] == [
        ("region", False, ["eu", "us"], [4.0, 2.0]), ("tier", True, ["gold"], [5.0])]
    (menu,) = figure["layout"]["updatemenus"]
    assert [b["label"] for b in menu["buttons"]] == ["Key: region", "Key: tier", "Key: unused"]
    assert [b["args"][0]["visible"] for b in menu["buttons"]] == [[True, False], [False, True], [False, False]]
    assert menu["active"] == 1  # the default, "tier"
    # Split per subscription (a customer report), every choice stays, empty where it has no rows.
    parts = Choices(spec.declared[0], {
        "a": pd.DataFrame({"subscription_key": ["s1", "s2"], "q": [1, 2]}),
        "b": pd.DataFrame({"subscription_key": ["s1"], "q": [3]})}).split("subscription_key")
    assert {k: {c: f["q"].tolist() for c, f in v.frames.items()} for k, v in parts.items()} == {
        "s1": {"a": [1], "b": [3]}, "s2": {"a": [2], "b": []}}


def test_report_file_names_are_safe_and_stable():
    key = "/subscriptions/x/resourceGroups/rg/providers/Microsoft.SaaS/resources/a b"
    assert report_file_name(key) == report_file_name(key)
    assert re.fullmatch(r"subscription-[0-9a-f]{16}\.html", report_file_name(key))


# -- against a locally built lakehouse ----------------------------------------------------------------

@pytest.fixture(scope="module")
def built(spark, pipeline_run, tmp_path_factory):
    """The shared pipeline run (overage thresholds at 0, so alerts exist), rendered once."""
    pipeline_run.register(spark)
    out = tmp_path_factory.mktemp("dashboards") / "html"
    result = write_local_dashboards(spark, pipeline_run.tables, out)
    return {"lakehouse": pipeline_run.tables, "out": out, "result": result}


@pytest.mark.slow
def test_every_dataset_runs_on_the_gold_tables(spark, built):
    """The fixture's render ran every dataset's SQL once; each returned rows (or waits for its table)."""
    lakehouse, rows = built["lakehouse"], built["result"]["dataset_rows"]
    for spec in load_specs().values():
        for dataset in spec.datasets.values():
            key = f"{spec.name}.{dataset.name}"
            if dataset.requires_table and not lakehouse.exists(spark, "gold", dataset.requires_table):
                assert rows[key] is None, key  # pending: its table comes with the models
            else:
                assert rows[key] > 0, f"{key} returned no rows"
    # The plan and subscription filters' options (Lakeview only) run too, with "All" among them.
    for param in PARAMETERS.values():
        if param.options_sql:
            options = run_dataset(spark, lakehouse, Dataset("options", "options", param.options_sql))
            assert "All" in set(options.iloc[:, 0]) and len(options) > 1, param.keyword
    # The property chart's dataset holds one key: the first configured one by default, else the one chosen;
    # a key the table lacks falls back to the alphabetically first key.
    keys = _configured_property_keys()
    for name in PROPERTY_DASHBOARDS:
        dataset = load_specs()[name].datasets["usage_by_property"]
        assert set(run_dataset(spark, lakehouse, dataset)["property_key"]) == {keys[0]}, name
        assert set(run_dataset(spark, lakehouse, dataset, {"property_key": keys[1]})["property_key"]) == {keys[1]}
        assert set(run_dataset(spark, lakehouse, dataset, {"property_key": "no-such-key"})["property_key"]) == {
            min(keys)}
    # A filter value narrows the rows: the parameters are really applied.
    dataset = load_specs()["customer_success"].datasets["consumption_daily"]
    everyone = run_dataset(spark, lakehouse, dataset)
    key = everyone["subscription_key"].iloc[0]
    narrowed = run_dataset(spark, lakehouse, dataset, {"subscription": key})
    assert set(narrowed["subscription_key"]) == {key} and 0 < len(narrowed) < len(everyone)


def _figures(path: Path) -> dict:
    text = Path(path).read_text(encoding="utf-8")
    return json.loads(re.search(r"const FIGURES=(\{.*?\});for\(", text).group(1))


@pytest.mark.slow
def test_html_property_chart_has_a_dropdown_of_the_keys(built):
    """One trace per configured key (the chart is coloured by key), the first key's alone visible."""
    keys = _configured_property_keys()
    for name in PROPERTY_DASHBOARDS:
        figures = _figures(built["result"]["dashboards"][name])
        (figure,) = [f for div, f in figures.items() if div.endswith("-usage_by_property")]
        traces = figure["data"]
        assert sorted(t["meta"]["choice"] for t in traces) == sorted(keys), name
        assert [t["name"] for t in traces if t["visible"]] == [keys[0]], name
        (menu,) = figure["layout"]["updatemenus"]
        assert [b["label"] for b in menu["buttons"]] == [f"Event property: {k}" for k in sorted(keys)]
        for button in menu["buttons"]:
            shown = [t["name"] for t, visible in zip(traces, button["args"][0]["visible"]) if visible]
            assert shown == [button["label"].split(": ", 1)[1]]


@pytest.mark.slow
def test_local_dashboards_written_with_pending_parts_named(built):
    result = built["result"]
    assert set(result["dashboards"]) == {"sales", "operations", "customer_success"}
    assert len(result["reports"]) == 8
    assert not result["pending"]  # the model tables are built by the shared run


def _page_check(page, path: Path, screenshot: Path) -> list:
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    page.wait_for_function("() => document.querySelectorAll('.chart').length === "
                           "document.querySelectorAll('.js-plotly-plot').length")
    charts = page.evaluate("""() => Array.from(document.querySelectorAll('.chart')).map(d => {
        const traces = d.data || [];
        const points = traces.reduce((n, t) => n + (t.type === 'indicator' ? 1 :
            (t.type === 'table' ? t.cells.values[0].length : (t.x || t.values || t.z || []).length)), 0);
        return [d.id, traces.length, points];
    })""")
    page.screenshot(path=str(screenshot), full_page=True)
    assert not errors, f"{path.name}: {errors}"
    assert charts, path.name
    empty = [c[0] for c in charts if c[1] == 0 or c[2] == 0]
    assert not empty, f"{path.name}: charts without data {empty}"
    return charts


@pytest.mark.slow
def test_html_dashboards_open_in_chromium_with_data_in_every_chart(spark, built, tmp_path):
    if not CHROMIUM.is_file():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download)")
    shots = Path(SCREENSHOT_DIR) if SCREENSHOT_DIR else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    pages = {name: Path(p) for name, p in built["result"]["dashboards"].items()}
    # The report of a subscription with something in every section (alerts, a costed plan).
    gold = built["lakehouse"]
    costed = {r.subscription_key for r in gold.read(spark, "gold", "plan_recommendations")
              .where("is_valid").select("subscription_key").distinct().collect()}
    alerted = {r.subscription_key for r in gold.read(spark, "gold", "overage_alerts")
               .where("subscription_key IS NOT NULL").select("subscription_key").distinct().collect()}
    reports = built["result"]["reports"]
    full = sorted(set(reports) & costed & alerted)
    assert full, "no subscription with alerts and a costed plan in the shared run"
    pages["report"] = Path(reports[full[0]])
    with sync_api.sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        browser = pw.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900}, offline=True)
        try:
            for name, path in pages.items():
                page = browser.new_page()
                charts = _page_check(page, path, shots / f"{name}.png")
                assert (shots / f"{name}.png").stat().st_size > 10_000
                assert len(charts) >= 5, name
                if name in PROPERTY_DASHBOARDS:
                    _check_property_dropdown(page, name)
        finally:
            browser.close()


def _check_property_dropdown(page, name: str) -> None:
    """Choosing each key in the property chart's dropdown shows that key's bars alone, on its own values."""
    (div,) = page.evaluate("() => Array.from(document.querySelectorAll('.chart')).map(d => d.id)"
                           ".filter(id => id.endsWith('-usage_by_property'))")
    state = f"""() => {{ const d = document.getElementById('{div}');
        const shown = d.data.filter(t => t.visible === true);
        return [shown.map(t => t.name), shown.flatMap(t => t.x),
                Array.from(d.querySelectorAll('.xtick text')).map(t => t.textContent)]; }}"""
    keys = _configured_property_keys()
    for key in sorted(keys, reverse=True):  # the default key last: switching back works too
        page.locator(f"#{div} .updatemenu-header").click()
        page.locator(f"#{div} .updatemenu-dropdown-button", has_text=f"Event property: {key}").click()
        page.wait_for_function(f"() => document.getElementById('{div}').data.some("
                               f"t => t.visible === true && t.name === {json.dumps(key)})")
        names, values, ticks = page.evaluate(state)
        assert names == [key], name
        # The axis holds this key's values only (plotly may thin out crowded tick labels).
        assert ticks and set(ticks) <= set(map(str, values)), (name, key, ticks)


@pytest.mark.slow
def test_a_customer_report_names_no_other_customer(spark, built):
    summary = built["lakehouse"].read(spark, "gold", "cs_subscription_summary").toPandas()
    identities = {row.subscription_key: {v for v in (row.subscription_key, row.resource_id, row.resource_uri) if v}
                  for row in summary.itertuples()}
    reports = built["result"]["reports"]
    assert set(reports) == set(identities)
    for key, path in reports.items():
        text = Path(path).read_text(encoding="utf-8")
        assert Path(path).name == report_file_name(key)
        assert key in text
        for other, names in identities.items():
            if other == key:
                continue
            for name in names - identities[key]:
                # A key followed by more name characters is a different, longer key.
                assert not re.search(re.escape(name) + r"(?![\w.-])", text), f"{other} in the report of {key}"


# -- analyst notebooks -------------------------------------------------------------------------------

def _cells(path: Path) -> list[tuple[str, str]]:
    """(language, source) per cell of a Databricks source notebook."""
    body = path.read_text(encoding="utf-8").removeprefix("# Databricks notebook source\n")
    cells = []
    for chunk in body.split("\n# COMMAND ----------\n"):
        lines = chunk.strip("\n").splitlines()
        if lines and lines[0].startswith("# MAGIC %"):
            language = lines[0].removeprefix("# MAGIC %").split()[0]
            source = "\n".join(re.sub(r"^# MAGIC ?", "", line) for line in lines[1:])
            cells.append((language, source))
        elif lines:
            cells.append(("python", "\n".join(lines)))
    return cells


def test_analysis_notebooks_ask_each_question_in_python_and_sql_and_read_gold_from_scala():
    notebooks = sorted(ANALYSIS.glob("*.py"))
    assert [p.stem for p in notebooks] == ["customer_success", "operations", "sales"]
    for path in notebooks:
        cells = _cells(path)
        questions = [s for lang, s in cells if lang == "md" and s.startswith("## ") and "Scala" not in s]
        assert len(questions) >= 3, path.name
        # After each question: a Python cell, then the same question as SQL.
        for i, (lang, source) in enumerate(cells):
            if lang == "md" and source in questions:
                assert [c[0] for c in cells[i + 1:i + 3]] == ["python", "sql"], f"{path.name}: {source[:40]}"
        (scala,) = [s for lang, s in cells if lang == "scala"]
        assert re.search(r'spark\.table\(s"\$catalog\.\$goldSchema\.\w+"\)', scala), path.name


@pytest.mark.slow
def test_analysis_notebooks_run_on_the_gold_tables(spark, built, monkeypatch):
    import plotly.basedatatypes

    monkeypatch.setattr(plotly.basedatatypes.BaseFigure, "show", lambda self, *a, **k: None)
    monkeypatch.delenv("METERING_CATALOG", raising=False)
    monkeypatch.setenv("METERING_GOLD_SCHEMA", built["lakehouse"].schema("gold"))
    previous = spark.catalog.currentDatabase()
    try:
        for path in sorted(ANALYSIS.glob("*.py")):
            namespace = {"spark": spark, "display": lambda df: None}
            for lang, source in _cells(path):
                if lang == "python":
                    exec(compile(source, str(path), "exec"), namespace)
                elif lang == "sql":
                    assert spark.sql(source).count() > 0, f"{path.name}: {source[:60]}"
    finally:
        spark.catalog.setCurrentDatabase(previous)
