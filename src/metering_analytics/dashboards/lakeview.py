"""Writes the Databricks AI/BI (Lakeview) dashboards, `dashboards/<name>.lvdash.json`, from the specs.

The serialized dashboard holds `datasets` (name, displayName, queryLines, parameters) and `pages`
whose `layout` places widgets on a 6-column grid. A widget has `queries` (fields over one dataset,
aggregated unless `disaggregated`) and a `spec` (widgetType, version, encodings, frame). Dashboard
parameters are dataset parameters bound to filter widgets: a date-range picker for `:date_range`,
single-select filters for `:plan`, `:subscription` and a spec's own parameters, whose options come
from a small dataset (generated here for the built-in ones, a dataset of the spec for its own).

Datasets name gold tables without catalog and schema; the bundle's dashboard resource sets them
per target (`dataset_catalog`, `dataset_schema`). Datasets that `requires_table` a table not built yet
are left out, with their widgets.

    python -m metering_analytics.dashboards.lakeview           # rewrite dashboards/*.lvdash.json
    python -m metering_analytics.dashboards.lakeview --check   # exit 1 if a file is out of date
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from metering_analytics.dashboards.spec import (
    LAKEVIEW_DIR, SPEC_DIR, DashboardSpec, Dataset, Parameter, Widget, load_specs,
)

GRID_COLUMNS = 6
WIDGET_VERSIONS = {"counter": 2, "table": 2, "bar": 3, "line": 3, "area": 3, "pie": 3, "heatmap": 3}
FILTER_TYPES = {"date_range": "filter-date-range-picker"}
OPTIONS_PREFIX = "options_"


def _parameter_json(p: Parameter) -> dict:
    if p.is_range:
        default = {"range": {"dataType": p.data_type, "min": {"value": p.default[0]},
                             "max": {"value": p.default[1]}}}
        return {"displayName": p.display_name, "keyword": p.keyword, "dataType": p.data_type,
                "complexType": "RANGE", "defaultSelection": default}
    return {"displayName": p.display_name, "keyword": p.keyword, "dataType": p.data_type,
            "defaultSelection": {"values": {"dataType": p.data_type,
                                            "values": [{"value": v} for v in p.default]}}}


def _dataset_json(ds: Dataset) -> dict:
    lines = ds.sql.splitlines()
    out = {"name": ds.name, "displayName": ds.display_name,
           "queryLines": [line + "\n" for line in lines[:-1]] + lines[-1:]}
    if ds.parameters:
        out["parameters"] = [_parameter_json(p) for p in ds.parameters]
    return out


def _options_dataset(p: Parameter) -> Dataset:
    return Dataset(OPTIONS_PREFIX + p.keyword, f"{p.display_name} options", p.options_sql)


def _options_dataset_name(p: Parameter) -> str | None:
    if p.options_dataset:
        return p.options_dataset
    return OPTIONS_PREFIX + p.keyword if p.options_sql else None


def _encoding(field, scale: str, title: str | None = None) -> dict:
    label = title or field.name
    return {"fieldName": field.name, "scale": {"type": scale}, "displayName": label,
            "axis": {"title": label}}


def _widget_spec(w: Widget) -> dict:
    enc: dict = {}
    if w.type == "counter":
        enc["value"] = {"fieldName": w.value.name, "displayName": w.title}
    elif w.type == "table":
        enc["columns"] = [{"fieldName": c.name, "displayName": c.name} for c in w.columns]
    elif w.type == "pie":
        enc["angle"] = {"fieldName": w.y.name, "scale": {"type": "quantitative"}, "displayName": w.y.name}
        enc["color"] = {"fieldName": w.color.name, "scale": {"type": "categorical"}, "displayName": w.color.name}
    elif w.type == "heatmap":
        enc["x"] = _encoding(w.x, "categorical", w.x_title)
        enc["y"] = _encoding(w.y, "categorical", w.y_title)
        enc["color"] = {"fieldName": w.z.name, "scale": {"type": "quantitative"}, "displayName": w.z.name}
    else:
        enc["x"] = _encoding(w.x, "temporal" if w.x_is_temporal() else "categorical", w.x_title)
        enc["y"] = _encoding(w.y, "quantitative", w.y_title)
        if w.color is not None:
            enc["color"] = {"fieldName": w.color.name, "scale": {"type": "categorical"},
                            "displayName": w.color.name}
    frame = {"showTitle": True, "title": w.title}
    extra = {"mark": {"layout": "group"}} if w.grouped and w.type == "bar" else {}
    if w.description:
        frame.update(showDescription=True, description=w.description)
    return {"version": WIDGET_VERSIONS[w.type], "widgetType": w.type, "encodings": enc, "frame": frame, **extra}


def _widget_json(w: Widget) -> dict:
    fields = []
    for f in w.fields:
        if f.name not in {x["name"] for x in fields}:
            fields.append({"name": f.name, "expression": f.expression})
    query = {"datasetName": w.dataset, "fields": fields, "disaggregated": not w.aggregated}
    return {"name": w.name, "queries": [{"name": "main_query", "query": query}], "spec": _widget_spec(w)}


def _filter_widget(p: Parameter, page: str, datasets: list[Dataset]) -> dict:
    """A filter bound to parameter `p` of every dataset on the page that uses it."""
    queries, fields = [], []
    if _options_dataset_name(p):
        name = f"{page}_{p.keyword}_options"
        queries.append({"name": name, "query": {
            "datasetName": _options_dataset_name(p),
            "fields": [{"name": p.options_field, "expression": f"`{p.options_field}`"}],
            "disaggregated": False}})
        fields.append({"fieldName": p.options_field, "displayName": p.display_name, "queryName": name})
    for ds in datasets:
        name = f"{page}_{p.keyword}_{ds.name}"
        queries.append({"name": name, "query": {
            "datasetName": ds.name, "parameters": [{"name": p.keyword, "keyword": p.keyword}],
            "disaggregated": False}})
        fields.append({"parameterName": p.keyword, "queryName": name})
    spec = {"version": 2, "widgetType": FILTER_TYPES.get(p.keyword, "filter-single-select"),
            "encodings": {"fields": fields}, "frame": {"showTitle": True, "title": p.display_name}}
    if not p.is_range:
        spec["selection"] = {"defaultSelection": {"values": {"dataType": p.data_type,
                                                              "values": [{"value": v} for v in p.default]}}}
    return {"name": f"{page}_filter_{p.keyword}", "queries": queries, "spec": spec}


def _layout(items: list[tuple[dict, int, int]]) -> list[dict]:
    """Place (widget, width, height) left to right, wrapping rows on the 6-column grid."""
    placed, x, y, row_height = [], 0, 0, 0
    for widget, width, height in items:
        if x + width > GRID_COLUMNS:
            x, y, row_height = 0, y + row_height, 0
        placed.append({"widget": widget, "position": {"x": x, "y": y, "width": width, "height": height}})
        x, row_height = x + width, max(row_height, height)
    return placed


def lakeview_dashboard(spec: DashboardSpec) -> dict:
    """The serialized Lakeview dashboard of a spec (a dict; json.dumps it for the file)."""
    available = {k: d for k, d in spec.datasets.items() if not d.requires_table}
    pages, used_params = [], {}
    for page in spec.pages:
        widgets = [w for w in page.widgets if w.dataset in available]
        page_datasets = [available[k] for k in dict.fromkeys(w.dataset for w in widgets)]
        items = [({"name": f"{page.name}_title", "multilineTextboxSpec": {
            "lines": [f"## {page.display_name}\n", page.description or spec.description]}}, GRID_COLUMNS, 2)]
        for p in spec.parameters(page_datasets):
            users = [d for d in page_datasets if p in d.parameters]
            items.append((_filter_widget(p, page.name, users), 2, 1))
            used_params[p.keyword] = p
        items += [(_widget_json(w), w.width, w.height) for w in widgets]
        pages.append({"name": page.name, "displayName": page.display_name, "pageType": "PAGE_TYPE_CANVAS",
                      "layout": _layout(items)})
    datasets = [_dataset_json(d) for d in available.values()]
    datasets += [_dataset_json(_options_dataset(p)) for p in used_params.values() if p.options_sql]
    return {"datasets": datasets, "pages": pages, "uiSettings": {"theme": {"widgetHeaderAlignment": "ALIGNMENT_UNSPECIFIED"}}}


def lakeview_json(spec: DashboardSpec) -> str:
    return json.dumps(lakeview_dashboard(spec), indent=2, ensure_ascii=False) + "\n"


def write_lakeview(spec_dir: Path = SPEC_DIR, out_dir: Path = LAKEVIEW_DIR, check: bool = False) -> list[Path]:
    """Write (or with `check`, compare) every `<name>.lvdash.json`; returns the files that differ."""
    stale = []
    for name, spec in load_specs(spec_dir).items():
        path = Path(out_dir) / f"{name}.lvdash.json"
        text = lakeview_json(spec)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(path)
            if not check:
                path.write_text(text, encoding="utf-8")
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write dashboards/*.lvdash.json from dashboards/spec/*.yml")
    parser.add_argument("--check", action="store_true", help="only report files that are out of date")
    args = parser.parse_args(argv)
    stale = write_lakeview(check=args.check)
    for path in stale:
        print(("out of date: " if args.check else "wrote ") + str(path))
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
