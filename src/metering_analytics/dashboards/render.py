"""Local renderer of the dashboard specs: self-contained HTML pages with plotly charts.

Runs every dataset's SQL once on the local lakehouse (the gold schema as the current database, so the
unqualified table names resolve as they do on Databricks), with the parameters at their defaults
(the whole history, every plan, every subscription), then draws each widget from that frame:
the widget's aggregation (`sum(x)` grouped by its other fields) is done in pandas, as Lakeview does in
the warehouse. Pages marked `per_subscription` are written once per subscription, each from the rows
of that subscription only (the customer reports: see `reports.py`).

A dataset that uses a `local: dropdown` parameter is run once per choice of that parameter (the rows
of its options dataset), and each chart over it draws every choice's traces with only the default
choice's visible, plus a plotly dropdown that shows another choice's: the page stays static HTML.

Entry point: `write_local_dashboards(spark, lakehouse, out_dir)`.
"""
from __future__ import annotations

import datetime as dt
import decimal
import html
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession

from metering_analytics.config import ConfigError
from metering_analytics.dashboards.spec import (
    ALL, SPEC_DIR, DashboardSpec, Dataset, FieldRef, Page, Parameter, Widget, load_specs,
)
from metering_analytics.io.lakehouse import Lakehouse

ROW_HEIGHT_PX = 56
TABLE_MAX_ROWS = 200
# A dropdown is for a short list (property keys, say); a chart draws every choice's traces.
MAX_CHOICES = 50
# A string literal (kept), or a parameter marker `:name` / `:name.min` (not a `::` cast).
_MARKER = re.compile(r"'(?:[^'\\]|\\.|'')*'|(?<![:\w]):([A-Za-z_][A-Za-z0-9_]*)(?:\.(min|max))?\b")
PALETTE = ["#077A9D", "#FFAB00", "#00A972", "#FF3621", "#8BCAE7", "#AB4057", "#99DDB4", "#FCA4A1",
           "#919191", "#BF7080"]


# -- datasets ----------------------------------------------------------------------------------

def _literal(value: object) -> str:
    if isinstance(value, dt.date):
        return f"DATE'{value.isoformat()}'"
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def local_sql(dataset: Dataset, values: Mapping[str, object] | None = None) -> str:
    """The dataset's SQL with its parameters replaced by literals: `values`, else the defaults.

    Spark's own named-parameter binding does not reach these queries in a session with the Delta SQL
    extension (UNBOUND_SQL_PARAMETER), so the markers are substituted here, outside string literals.
    """
    args = local_args(dataset, values)

    def substitute(m: re.Match) -> str:
        if m.group(1) is None:
            return m.group(0)  # a string literal: kept as written
        key = f"{m.group(1)}_{m.group(2)}" if m.group(2) else m.group(1)
        return _literal(args[key])

    return _MARKER.sub(substitute, dataset.sql)


def local_args(dataset: Dataset, values: Mapping[str, object] | None = None) -> dict[str, object]:
    """The dataset's parameter values (a range as `<name>_min`, `<name>_max`): `values`, else the defaults."""
    values = values or {}
    args: dict[str, object] = {}
    for p in dataset.parameters:
        if p.is_range:
            low, high = values.get(p.keyword) or p.default
            args[f"{p.keyword}_min"] = dt.date.fromisoformat(str(low))
            args[f"{p.keyword}_max"] = dt.date.fromisoformat(str(high))
        else:
            args[p.keyword] = str(values.get(p.keyword, p.default[0]))
    return args


def run_dataset(spark: SparkSession, lakehouse: Lakehouse, dataset: Dataset,
                values: Mapping[str, object] | None = None) -> pd.DataFrame:
    """The dataset's rows as pandas (numbers as floats), its SQL run in the gold schema."""
    previous, gold = spark.catalog.currentDatabase(), lakehouse.schema("gold")
    if previous != gold:
        spark.catalog.setCurrentDatabase(gold)
    try:
        frame = spark.sql(local_sql(dataset, values)).toPandas()
    finally:
        if previous != gold:
            spark.catalog.setCurrentDatabase(previous)
    for column in frame.columns:
        if frame[column].dtype == object and frame[column].map(lambda v: isinstance(v, decimal.Decimal)).any():
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return frame


def dataset_available(spark: SparkSession, lakehouse: Lakehouse, dataset: Dataset) -> bool:
    return not dataset.requires_table or lakehouse.exists(spark, "gold", dataset.requires_table)


@dataclass(frozen=True)
class Choices:
    """A dataset's rows per choice of its dropdown parameter, in the options' order."""

    parameter: Parameter
    frames: dict[str, pd.DataFrame]

    def __len__(self) -> int:
        return sum(len(f) for f in self.frames.values())

    @property
    def default(self) -> str | None:
        """The choice shown first: the parameter's default when it is one of the choices, else the first."""
        if self.parameter.default and self.parameter.default[0] in self.frames:
            return self.parameter.default[0]
        return next(iter(self.frames), None)

    def empty(self) -> "Choices":
        return Choices(self.parameter, {v: f.iloc[0:0] for v, f in self.frames.items()})

    def split(self, column: str) -> dict[object, "Choices"]:
        """Per value of `column`: the choices with only that value's rows (empty where it has none)."""
        parts: dict[object, dict[str, pd.DataFrame]] = {}
        for choice, frame in self.frames.items():
            for key, rows in frame.groupby(column, sort=False, dropna=True):
                parts.setdefault(key, {})[choice] = rows
        empty = self.empty().frames
        return {key: Choices(self.parameter, {v: found.get(v, empty[v]) for v in self.frames})
                for key, found in parts.items()}


def choice_values(options: pd.DataFrame, column: str) -> list[str]:
    """The distinct non-null values of the options' column, in their order, at most MAX_CHOICES."""
    if column not in options.columns:
        raise ConfigError(f"the options dataset returns {list(options.columns)}, not the column '{column}'")
    values = [str(v) for v in options[column].tolist() if v is not None and not pd.isna(v)]
    return list(dict.fromkeys(values))[:MAX_CHOICES]


# -- widgets -> plotly figures -------------------------------------------------------------------

def _values(series: pd.Series) -> list:
    """JSON-ready values: dates as ISO text, NaN/NaT as null."""
    out = []
    for v in series.tolist():
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT:
            out.append(None)
        elif isinstance(v, (pd.Timestamp, dt.datetime)):
            out.append(v.strftime("%Y-%m-%d %H:%M"))
        elif isinstance(v, dt.date):
            out.append(v.isoformat())
        elif isinstance(v, (np.integer,)):
            out.append(int(v))
        elif isinstance(v, (np.floating,)):
            out.append(float(v))
        elif isinstance(v, (np.bool_,)):
            out.append(bool(v))
        else:
            out.append(v)
    return out


def _aggregate(widget: Widget, frame: pd.DataFrame) -> pd.DataFrame:
    """The widget's query over the dataset: its fields, aggregated by the non-aggregated ones."""
    fields = list(dict.fromkeys(widget.fields))
    dims = [f for f in fields if f.agg is None]
    measures = [f for f in fields if f.agg is not None]
    if not measures:
        return frame[[f.column for f in dims]] if dims else frame
    if frame.empty:
        return pd.DataFrame(columns=[f.name for f in fields])
    spec = {m.name: (m.column, "count" if m.agg == "count" else ("mean" if m.agg == "avg" else m.agg))
            for m in measures}
    if not dims:
        return pd.DataFrame({name: [getattr(frame[col], fn)()] for name, (col, fn) in spec.items()})
    grouped = frame.groupby([d.column for d in dims], dropna=False, sort=True).agg(**spec).reset_index()
    return grouped


def _axis_title(widget: Widget, ref: FieldRef | None, explicit: str | None) -> str:
    return explicit or (ref.name if ref else "")


def widget_figure(widget: Widget, frame: pd.DataFrame) -> dict:
    """A plotly figure (data + layout, plain JSON) for the widget over its dataset's rows."""
    data = _aggregate(widget, frame)
    layout: dict = {"margin": {"l": 56, "r": 16, "t": 8, "b": 48}, "height": widget.height * ROW_HEIGHT_PX - 40,
                    "legend": {"orientation": "h", "y": -0.2}, "colorway": PALETTE,
                    "paper_bgcolor": "white", "plot_bgcolor": "white"}
    traces: list[dict] = []
    if widget.type == "counter":
        value = data[widget.value.name].iloc[0] if len(data) else 0
        value = 0 if value is None or (isinstance(value, float) and np.isnan(value)) else float(value)
        whole = abs(value) >= 100 or float(value).is_integer()
        traces.append({"type": "indicator", "mode": "number", "value": value,
                       "number": {"valueformat": ",.0f" if whole else ",.2f"}})
        layout["margin"] = {"l": 8, "r": 8, "t": 8, "b": 8}
    elif widget.type == "table":
        columns = [c.name for c in widget.columns] or list(data.columns)
        rows = data[columns].head(TABLE_MAX_ROWS) if len(data) else data.reindex(columns=columns)
        traces.append({"type": "table", "columnwidth": [max(8, min(40, len(c))) for c in columns],
                       "header": {"values": [f"<b>{html.escape(c)}</b>" for c in columns],
                                  "fill": {"color": "#EEF2F5"}, "align": "left"},
                       "cells": {"values": [_values(rows[c]) for c in columns], "align": "left"}})
        layout["margin"] = {"l": 4, "r": 4, "t": 4, "b": 4}
    elif widget.type == "pie":
        traces.append({"type": "pie", "labels": _values(data[widget.color.name]),
                       "values": _values(data[widget.y.name]), "hole": 0.4})
    elif widget.type == "heatmap":
        pivot = data.pivot_table(index=widget.y.name, columns=widget.x.name, values=widget.z.name,
                                 aggfunc="sum").sort_index()
        traces.append({"type": "heatmap", "x": _values(pd.Series(pivot.columns)),
                       "y": _values(pd.Series(pivot.index)),
                       "z": [_values(pivot.loc[i]) for i in pivot.index], "colorscale": "Blues"})
        layout["xaxis"] = {"title": {"text": _axis_title(widget, widget.x, widget.x_title)}, "dtick": 1}
    else:  # bar, line, area
        x, y, color = widget.x.name, widget.y.name, widget.color.name if widget.color else None
        groups = data.groupby(color, dropna=False, sort=True) if color else [(None, data)]
        for key, rows in groups:
            rows = rows.sort_values(x)
            trace = {"x": _values(rows[x]), "y": _values(rows[y]),
                     "name": str(key[0] if isinstance(key, tuple) else key) if color else y}
            if widget.type == "bar":
                trace["type"] = "bar"
            else:
                trace.update(type="scatter", mode="lines")
                if widget.type == "area":
                    trace["stackgroup"] = "one"
            traces.append(trace)
        layout["barmode"] = "group" if widget.grouped else "stack"
        layout["showlegend"] = bool(color)
        layout["xaxis"] = {"title": {"text": _axis_title(widget, widget.x, widget.x_title)}}
        if widget.x_is_temporal():
            layout["xaxis"]["type"] = "date"
        else:
            layout["xaxis"]["type"] = "category"
        layout["yaxis"] = {"title": {"text": _axis_title(widget, widget.y, widget.y_title)}}
    return {"data": traces, "layout": layout}


def choices_figure(widget: Widget, choices: Choices) -> dict:
    """Every choice's traces, the default choice's visible, and a dropdown that switches between them.

    Each trace carries its choice in `meta`; a button's `visible` list shows that choice's traces only.
    """
    if not choices.frames:  # nothing to choose from (no options): an empty chart, as with no rows
        return widget_figure(widget, pd.DataFrame(columns=[f.column for f in widget.fields]))
    figures = {v: widget_figure(widget, frame) for v, frame in choices.frames.items()}
    shown = choices.default
    traces, owners = [], []
    for choice, figure in figures.items():
        for trace in figure["data"]:
            traces.append({**trace, "meta": {"choice": choice}, "visible": choice == shown})
            owners.append(choice)
    # Hidden traces take no part in autoranging or in a category axis, so the axes follow the choice shown.
    layout = dict(figures[shown]["layout"])
    name = choices.parameter.display_name
    buttons = [{"label": f"{name}: {choice}", "method": "restyle",
                "args": [{"visible": [owner == choice for owner in owners]}]} for choice in figures]
    layout["updatemenus"] = [{"type": "dropdown", "buttons": buttons, "active": list(figures).index(shown),
                              "showactive": True, "x": 0, "xanchor": "left", "y": 1, "yanchor": "bottom",
                              "pad": {"t": 2, "b": 2}}]
    layout["margin"] = {**layout["margin"], "t": 40}
    return {"data": traces, "layout": layout}


def figure_for(widget: Widget, frame: pd.DataFrame | Choices) -> dict:
    return choices_figure(widget, frame) if isinstance(frame, Choices) else widget_figure(widget, frame)


# -- HTML ----------------------------------------------------------------------------------------

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;background:#F5F7F9;color:#1B3139}
header{background:#1B3139;color:white;padding:16px 24px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#C9D4DA;font-size:13px}main{padding:8px 24px 32px}
h2{font-size:18px;margin:24px 0 4px}p.desc{margin:0 0 8px;color:#5A6F77;font-size:13px}
.grid{display:grid;grid-template-columns:repeat(6,1fr);gap:12px}
.card{background:white;border-radius:6px;box-shadow:0 1px 3px rgba(0,0,0,.12);padding:8px 12px;min-width:0}
.card h3{font-size:14px;margin:2px 0 6px}nav a{color:#8BCAE7;margin-right:16px;font-size:13px}
.params{font-size:12px;color:#C9D4DA}
"""


def _plotly_script(plotly_js: str) -> str:
    if plotly_js == "inline":
        from plotly.offline import get_plotlyjs

        return f"<script>{get_plotlyjs()}</script>"
    return f'<script src="{html.escape(plotly_js)}"></script>'


def page_section(page: Page, widgets_frames: list[tuple[Widget, pd.DataFrame | Choices]], prefix: str,
                 figures: dict[str, dict], heading: bool = True) -> str:
    cards = []
    for widget, frame in widgets_frames:
        div_id = f"{prefix}-{widget.name}"
        figures[div_id] = figure_for(widget, frame)
        cards.append(f'<div class="card" style="grid-column:span {widget.width}">'
                     f"<h3>{html.escape(widget.title)}</h3>"
                     f'<div class="chart" id="{div_id}" style="height:{widget.height * ROW_HEIGHT_PX - 40}px">'
                     "</div></div>")
    head = (f"<h2>{html.escape(page.display_name)}</h2>"
            f'<p class="desc">{html.escape(page.description)}</p>') if heading else ""
    return f'<section id="{page.name}">{head}<div class="grid">{"".join(cards)}</div></section>'


def html_document(title: str, subtitle: str, body: str, figures: dict[str, dict], plotly_js: str,
                  nav: str = "") -> str:
    payload = json.dumps(figures, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style>{_plotly_script(plotly_js)}</head><body>"
        f"<header><h1>{html.escape(title)}</h1><p>{subtitle}</p>{nav}</header><main>{body}</main>"
        f"<script>const FIGURES={payload};"
        "for(const [id,fig] of Object.entries(FIGURES)){"
        "Plotly.newPlot(id,fig.data,fig.layout,{displaylogo:false,responsive:true});}</script>"
        "</body></html>\n"
    )


def parameters_note(spec: DashboardSpec) -> str:
    parts = []
    for p in spec.parameters([d for d in spec.datasets.values()]):
        if p.dropdown:
            parts.append(f"{p.display_name}: chosen in the chart")
        elif p.options_dataset:
            parts.append(f"{p.display_name}: {p.default[0]}")
        else:
            parts.append(f"{p.display_name}: " + ("whole history" if p.is_range else ALL.lower()))
    return '<span class="params">Parameters: ' + html.escape("; ".join(parts)) + "</span>" if parts else ""


class DatasetCache:
    """Each dataset's rows, queried once per render (several widgets and reports share them)."""

    def __init__(self, spark: SparkSession, lakehouse: Lakehouse):
        self.spark, self.lakehouse = spark, lakehouse
        self.frames: dict[tuple[str, str], pd.DataFrame | Choices | None] = {}
        self.seconds: dict[str, float] = {}

    def prefetch(self, specs: Mapping[str, DashboardSpec], workers: int = 4) -> None:
        """Query every dataset, a few at a time: each is mostly fixed per-query cost (planning,
        Delta snapshots, scheduling), which overlaps well across threads of one session."""
        keys = [(spec, name) for spec in specs.values() for name in spec.datasets]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda key: self.get(*key), keys))

    def get(self, spec: DashboardSpec, name: str) -> pd.DataFrame | Choices | None:
        """None when the dataset waits for a table that does not exist yet; Choices when it uses a
        dropdown parameter (then its options dataset is queried first)."""
        key = (spec.name, name)
        if key not in self.frames:
            dataset = spec.datasets[name]
            picked = dataset.dropdown_parameter
            options = self.get(spec, picked.options_dataset) if picked else None
            started = time.perf_counter()
            if not dataset_available(self.spark, self.lakehouse, dataset):
                self.frames[key] = None
            elif picked:
                values = choice_values(options, picked.options_field)
                self.frames[key] = Choices(picked, {
                    v: run_dataset(self.spark, self.lakehouse, dataset, {picked.keyword: v}) for v in values})
            else:
                self.frames[key] = run_dataset(self.spark, self.lakehouse, dataset)
            self.seconds[f"{spec.name}.{name}"] = round(time.perf_counter() - started, 2)
        return self.frames[key]


def _as_of(spark: SparkSession, lakehouse: Lakehouse) -> str:
    if not lakehouse.exists(spark, "gold", "cs_subscription_summary"):
        return "no data"
    value = spark.sql(f"SELECT MAX(as_of) FROM {lakehouse.table_name('gold', 'cs_subscription_summary')}").first()[0]
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "no data"


def render_dashboard(spec: DashboardSpec, cache: DatasetCache, as_of: str, plotly_js: str = "inline",
                     links: str = "") -> tuple[str, dict]:
    """The dashboard's HTML (pages that are not per subscription) and what was left out."""
    figures: dict[str, dict] = {}
    sections, pending = [], []
    for page in spec.pages:
        if page.per_subscription:
            continue
        shown = []
        for widget in page.widgets:
            frame = cache.get(spec, widget.dataset)
            if frame is None:
                pending.append(f"{widget.name} (needs gold.{spec.datasets[widget.dataset].requires_table})")
                continue
            shown.append((widget, frame))
        sections.append(page_section(page, shown, page.name, figures))
    nav = "<nav>" + "".join(f'<a href="#{p.name}">{html.escape(p.display_name)}</a>'
                            for p in spec.pages if not p.per_subscription) + links + "</nav>"
    subtitle = f"Data as of {html.escape(as_of)}. {html.escape(spec.description)} {parameters_note(spec)}"
    document = html_document(spec.display_name, subtitle, "".join(sections), figures, plotly_js, nav)
    return document, {"charts": len(figures), "pending": pending}


def write_local_dashboards(spark: SparkSession, lakehouse: Lakehouse, out_dir: str | Path,
                           spec_dir: str | Path = SPEC_DIR, reports: bool = True,
                           self_contained_reports: bool = False) -> dict:
    """Write `<out_dir>/<name>.html` per dashboard spec and `<out_dir>/reports/` (one per subscription).

    Returns {"dashboards": {name: path}, "reports": {subscription_key: path}, "reports_index": path,
    "pending": [widgets waiting for a table], "seconds": total, "query_seconds": ...,
    "dataset_seconds": {spec.dataset: s}, "dataset_rows": {spec.dataset: rows, None if pending}}.
    """
    from metering_analytics.dashboards.reports import write_customer_reports

    started = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lakehouse.register_all(spark)
    specs = load_specs(spec_dir)
    cache = DatasetCache(spark, lakehouse)
    as_of = _as_of(spark, lakehouse)
    previous_db = spark.catalog.currentDatabase()
    arrow = spark.conf.get("spark.sql.execution.arrow.pyspark.enabled", "false")
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    spark.catalog.setCurrentDatabase(lakehouse.schema("gold"))  # once, before the threads
    try:
        cache.prefetch(specs)
    finally:
        spark.catalog.setCurrentDatabase(previous_db)
        spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", arrow)
    queried = time.perf_counter()
    result: dict = {"dashboards": {}, "reports": {}, "pending": []}
    has_reports = reports and any(p.per_subscription for s in specs.values() for p in s.pages)
    links = ' <a href="reports/index.html">Customer reports</a>' if has_reports else ""
    for name, spec in specs.items():
        nav_links = "".join(f' <a href="{other}.html">{html.escape(s.display_name.split(" - ")[-1])}</a>'
                            for other, s in specs.items() if other != name) + links
        document, info = render_dashboard(spec, cache, as_of, "inline", nav_links)
        path = out / f"{name}.html"
        path.write_text(document, encoding="utf-8")
        result["dashboards"][name] = str(path)
        result["pending"] += [f"{name}: {p}" for p in info["pending"]]
    if has_reports:
        written = write_customer_reports(specs, cache, out / "reports", as_of,
                                         self_contained=self_contained_reports)
        result["reports"] = written["reports"]
        result["reports_index"] = written["index"]
        result["pending"] += written["pending"]
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["query_seconds"] = round(queried - started, 1)
    result["dataset_seconds"] = cache.seconds
    result["dataset_rows"] = {f"{spec}.{name}": (None if frame is None else len(frame))
                              for (spec, name), frame in cache.frames.items()}
    return result
