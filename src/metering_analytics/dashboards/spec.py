"""The dashboard definitions: one YAML file per persona in dashboards/spec/, read and validated here.

A spec declares datasets (Spark/Databricks SQL over *unqualified* gold tables, so the catalog and
schema come from where it runs) and pages of widgets over those datasets. Two renderers read it:
`lakeview.py` writes the Databricks AI/BI (Lakeview) `dashboards/<name>.lvdash.json`, and
`render.py` runs the same SQL on the local lakehouse and writes HTML pages with plotly.

Dashboard parameters are the three in `PARAMETERS`; a dataset uses one by writing it in its SQL
(`:date_range.min` / `:date_range.max`, `:plan`, `:subscription`). "All" means no filter.

A dataset with `requires_table` reads a table that another part of the product adds later: it is
left out of the Lakeview file and rendered locally only when that table exists.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from metering_analytics.config import PROJECT_ROOT, ConfigError

SPEC_DIR = PROJECT_ROOT / "dashboards" / "spec"
LAKEVIEW_DIR = PROJECT_ROOT / "dashboards"
ALL = "All"


@dataclass(frozen=True)
class Parameter:
    keyword: str
    display_name: str
    data_type: str  # DATE | STRING
    is_range: bool = False
    default: tuple[str, ...] = ()  # (value,) or (min, max) for a range
    options_sql: str | None = None  # the values a filter offers (first column)
    options_field: str | None = None


# Local renders use these defaults: the whole history, every plan, every subscription.
PARAMETERS: dict[str, Parameter] = {
    "date_range": Parameter("date_range", "Date range", "DATE", is_range=True,
                            default=("2000-01-01", "2099-12-31")),
    "plan": Parameter("plan", "Plan", "STRING", default=(ALL,), options_field="plan_id",
                      options_sql=f"SELECT '{ALL}' AS plan_id\nUNION ALL\n"
                                  "SELECT DISTINCT plan_id FROM cs_subscription_summary\nORDER BY plan_id"),
    "subscription": Parameter("subscription", "Subscription", "STRING", default=(ALL,),
                              options_field="subscription_key",
                              options_sql=f"SELECT '{ALL}' AS subscription_key\nUNION ALL\n"
                                          "SELECT DISTINCT subscription_key FROM cs_subscription_summary\n"
                                          "ORDER BY subscription_key"),
}
_PARAM_USE = re.compile(r"(?<![:\w]):([A-Za-z_][A-Za-z0-9_]*)(?:\.(min|max))?\b")

WIDGET_TYPES = {"counter", "bar", "line", "area", "pie", "heatmap", "table"}
# Encodings each widget type needs (besides `dataset`).
REQUIRED = {"counter": ("value",), "bar": ("x", "y"), "line": ("x", "y"), "area": ("x", "y"),
            "pie": ("y", "color"), "heatmap": ("x", "y", "z"), "table": ("columns",)}
AGGREGATIONS = {"sum": "SUM", "avg": "AVG", "min": "MIN", "max": "MAX", "count": "COUNT"}
_FIELD = re.compile(r"^(?:(sum|avg|min|max|count)\(([A-Za-z_][A-Za-z0-9_]*)\)|([A-Za-z_][A-Za-z0-9_]*))$")
TEMPORAL_NAMES = {"day", "hour", "month", "week", "period_start", "cycle_month", "ts", "cycle_start"}


@dataclass(frozen=True)
class FieldRef:
    """`column` or `agg(column)` as written in a widget."""

    column: str
    agg: str | None = None

    @classmethod
    def parse(cls, text: str, where: str) -> "FieldRef":
        m = _FIELD.match(str(text).strip())
        if not m:
            raise ConfigError(f"{where}: '{text}' is neither a column nor sum/avg/min/max/count(column)")
        return cls(m.group(2), m.group(1)) if m.group(1) else cls(m.group(3))

    @property
    def name(self) -> str:
        """The field's name in a Lakeview query (and in the local frame)."""
        return f"{self.agg}({self.column})" if self.agg else self.column

    @property
    def expression(self) -> str:
        return f"{AGGREGATIONS[self.agg]}(`{self.column}`)" if self.agg else f"`{self.column}`"


@dataclass(frozen=True)
class Dataset:
    name: str
    display_name: str
    sql: str
    requires_table: str | None = None

    @property
    def parameters(self) -> list[Parameter]:
        used = {m.group(1) for m in _PARAM_USE.finditer(_without_strings(self.sql))}
        return [p for k, p in PARAMETERS.items() if k in used]


@dataclass(frozen=True)
class Widget:
    name: str
    title: str
    type: str
    dataset: str
    width: int
    height: int
    x: FieldRef | None = None
    y: FieldRef | None = None
    z: FieldRef | None = None
    color: FieldRef | None = None
    value: FieldRef | None = None
    columns: tuple[FieldRef, ...] = ()
    x_title: str | None = None
    y_title: str | None = None
    description: str | None = None
    grouped: bool = False  # bars side by side instead of stacked

    @property
    def fields(self) -> list[FieldRef]:
        found = [f for f in (self.x, self.y, self.z, self.color, self.value) if f is not None]
        return found + list(self.columns)

    @property
    def aggregated(self) -> bool:
        return any(f.agg for f in self.fields)

    def x_is_temporal(self) -> bool:
        return self.x is not None and self.x.agg is None and self.x.column in TEMPORAL_NAMES


@dataclass(frozen=True)
class Page:
    name: str
    display_name: str
    widgets: tuple[Widget, ...]
    description: str = ""
    # The local renderer writes this page once per subscription: a customer report.
    per_subscription: bool = False


@dataclass(frozen=True)
class DashboardSpec:
    name: str
    display_name: str
    description: str
    datasets: dict[str, Dataset]
    pages: tuple[Page, ...]
    source: Path | None = field(default=None, compare=False)

    def parameters(self, datasets: list[Dataset] | None = None) -> list[Parameter]:
        used = {p.keyword for d in (datasets or self.datasets.values()) for p in d.parameters}
        return [p for k, p in PARAMETERS.items() if k in used]


def _without_strings(sql: str) -> str:
    """SQL with its '...' literals blanked, so ':' inside a string is not read as a parameter."""
    return re.sub(r"'(?:[^']|'')*'", "''", sql)


def parse_spec(name: str, raw: dict, source: Path | None = None) -> DashboardSpec:
    where = str(source or name)
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping")
    unknown = set(raw) - {"display_name", "description", "datasets", "pages"}
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    datasets = {}
    for key, d in (raw.get("datasets") or {}).items():
        if not isinstance(d, dict) or not d.get("sql"):
            raise ConfigError(f"{where}: dataset '{key}' needs sql")
        extra = set(d) - {"display_name", "sql", "requires_table"}
        if extra:
            raise ConfigError(f"{where}: dataset '{key}': unknown keys {sorted(extra)}")
        ds = Dataset(key, d.get("display_name", key), d["sql"].strip(), d.get("requires_table"))
        for m in _PARAM_USE.finditer(_without_strings(ds.sql)):
            param = PARAMETERS.get(m.group(1))
            if param is None:
                raise ConfigError(f"{where}: dataset '{key}' uses unknown parameter :{m.group(1)}")
            if param.is_range != bool(m.group(2)):
                raise ConfigError(f"{where}: dataset '{key}': write :{param.keyword}"
                                  f"{'.min/.max' if param.is_range else ''}")
        datasets[key] = ds
    if not datasets:
        raise ConfigError(f"{where}: no datasets")
    pages, names = [], set()
    for p in raw.get("pages") or []:
        widgets = []
        for i, w in enumerate(p.get("widgets") or []):
            widgets.append(_parse_widget(w, f"{where}: page '{p.get('name')}' widget {i + 1}", datasets, names))
        page = Page(p["name"], p.get("display_name", p["name"]), tuple(widgets), p.get("description", ""),
                    bool(p.get("per_subscription", False)))
        if page.per_subscription:
            for w in page.widgets:
                if "subscription" not in {x.keyword for x in datasets[w.dataset].parameters}:
                    raise ConfigError(f"{where}: per-subscription page '{page.name}': dataset '{w.dataset}' "
                                      "must filter on :subscription (a customer report shows one customer only)")
        pages.append(page)
    if not pages:
        raise ConfigError(f"{where}: no pages")
    return DashboardSpec(name, raw.get("display_name", name), raw.get("description", ""), datasets,
                         tuple(pages), source)


def _parse_widget(w: dict, where: str, datasets: dict[str, Dataset], names: set[str]) -> Widget:
    kind = w.get("type")
    if kind not in WIDGET_TYPES:
        raise ConfigError(f"{where}: type must be one of {sorted(WIDGET_TYPES)}, not {kind!r}")
    if w.get("dataset") not in datasets:
        raise ConfigError(f"{where}: unknown dataset {w.get('dataset')!r}")
    missing = [k for k in REQUIRED[kind] if not w.get(k)
               and not (k == "columns" and datasets[w["dataset"]].requires_table)]
    if missing:
        raise ConfigError(f"{where}: a {kind} widget needs {missing}")
    title = w.get("title") or ""
    name = w.get("name") or re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")
    if not name or name in names:
        raise ConfigError(f"{where}: widget name '{name}' missing or not unique")
    names.add(name)
    ref = {k: FieldRef.parse(w[k], f"{where} ({k})") for k in ("x", "y", "z", "color", "value") if w.get(k)}
    columns = tuple(FieldRef.parse(c, f"{where} (columns)") for c in w.get("columns") or ())
    width, height = int(w.get("width", 3)), int(w.get("height", 6))
    if not 1 <= width <= 6:
        raise ConfigError(f"{where}: width is 1..6 (the Lakeview grid has 6 columns)")
    return Widget(name, title, kind, w["dataset"], width, height, columns=columns,
                  x_title=w.get("x_title"), y_title=w.get("y_title"), description=w.get("description"),
                  grouped=bool(w.get("grouped", False)), **ref)


def load_spec(path: str | Path) -> DashboardSpec:
    path = Path(path)
    with open(path, encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    return parse_spec(path.stem, raw, path)


def load_specs(spec_dir: str | Path = SPEC_DIR) -> dict[str, DashboardSpec]:
    """Every dashboard spec, by name (the file name without .yml)."""
    specs = {p.stem: load_spec(p) for p in sorted(Path(spec_dir).glob("*.yml"))}
    if not specs:
        raise ConfigError(f"no dashboard specs in {spec_dir}")
    return specs
