"""The dashboard definitions: one YAML file per persona in dashboards/spec/, read and validated here.

A spec declares datasets (Spark/Databricks SQL over *unqualified* gold tables, so the catalog and
schema come from where it runs) and pages of widgets over those datasets. Two renderers read it:
`lakeview.py` writes the Databricks AI/BI (Lakeview) `dashboards/<name>.lvdash.json`, and
`render.py` runs the same SQL on the local lakehouse and writes HTML pages with plotly.

Dashboard parameters are the three in `PARAMETERS`, plus those a spec declares under `parameters:`;
a dataset uses one by writing it in its SQL (`:date_range.min` / `:date_range.max`, `:plan`,
`:subscription`, `:<declared>`). For the built-in ones "All" means no filter. A declared parameter takes
its choices from a dataset of the spec (a filter in Lakeview); with `local: dropdown` the local HTML
gives every chart over a dataset that uses it a dropdown of those choices instead of one fixed value.

A dataset with `requires_table` reads a table that another part of the product adds later: it is
left out of the Lakeview file and rendered locally only when that table exists.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from metering_analytics.config import PROJECT_ROOT, ConfigError, read_yaml

SPEC_DIR = PROJECT_ROOT / "dashboards" / "spec"
LAKEVIEW_DIR = PROJECT_ROOT / "dashboards"
CONF_DIR = PROJECT_ROOT / "conf"
ALL = "All"
LOCAL_MODES = ("default", "dropdown")


@dataclass(frozen=True)
class Parameter:
    keyword: str
    display_name: str
    data_type: str  # DATE | STRING
    is_range: bool = False
    default: tuple[str, ...] = ()  # (value,) or (min, max) for a range
    options_sql: str | None = None  # the values a filter offers (first column); Lakeview adds it as a dataset
    options_field: str | None = None
    options_dataset: str | None = None  # instead of options_sql: a dataset of the spec lists the values
    local: str = "default"  # local HTML: the default value, or "dropdown" (every chart picks a value)

    @property
    def dropdown(self) -> bool:
        return self.local == "dropdown"


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
    declared: tuple[Parameter, ...] = ()  # the spec's own parameters, known besides PARAMETERS

    @property
    def parameters(self) -> list[Parameter]:
        used = {m.group(1) for m in _PARAM_USE.finditer(_without_strings(self.sql))}
        return [p for k, p in known_parameters(self.declared).items() if k in used]

    @property
    def dropdown_parameter(self) -> Parameter | None:
        """The parameter the local HTML turns into a per-chart dropdown, if the dataset uses one."""
        return next((p for p in self.parameters if p.dropdown), None)


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
    declared: tuple[Parameter, ...] = ()

    def parameters(self, datasets: list[Dataset] | None = None) -> list[Parameter]:
        used = {p.keyword for d in (datasets or self.datasets.values()) for p in d.parameters}
        return [p for k, p in known_parameters(self.declared).items() if k in used]


def known_parameters(declared: tuple[Parameter, ...] = ()) -> dict[str, Parameter]:
    """The built-in parameters, then a spec's own, by keyword (the order of the filter widgets)."""
    return {**PARAMETERS, **{p.keyword: p for p in declared}}


def _without_strings(sql: str) -> str:
    """SQL with its '...' literals blanked, so ':' inside a string is not read as a parameter."""
    return re.sub(r"'(?:[^']|'')*'", "''", sql)


def _conf_value(reference: str, conf_dir: Path, where: str) -> str | None:
    """`<file> <dotted.path>` in conf/: the entry's value, or its first item when it is a list."""
    parts = str(reference).split()
    if len(parts) != 2:
        raise ConfigError(f"{where}: default_from is '<file in conf/> <dotted.key>', not {reference!r}")
    value = read_yaml(Path(conf_dir) / parts[0])
    for key in parts[1].split("."):
        value = value.get(key) if isinstance(value, dict) else None
    if isinstance(value, list):
        value = value[0] if value else None
    return None if value is None else str(value)


def _parse_parameter(key: str, p: dict, where: str, conf_dir: Path) -> Parameter:
    """A spec's own single-value STRING parameter, whose choices a dataset of the spec lists."""
    where = f"{where}: parameter '{key}'"
    if not isinstance(p, dict):
        raise ConfigError(f"{where}: expected a mapping")
    extra = set(p) - {"display_name", "type", "options", "default", "default_from", "local"}
    if extra:
        raise ConfigError(f"{where}: unknown keys {sorted(extra)}")
    if key in PARAMETERS or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        raise ConfigError(f"{where}: not a name, or the name of a built-in parameter")
    if p.get("type", "STRING") != "STRING":
        raise ConfigError(f"{where}: type must be STRING (date ranges are the built-in :date_range)")
    options = p.get("options")
    if not isinstance(options, dict) or set(options) != {"dataset", "column"}:
        raise ConfigError(f"{where}: options must be {{dataset: <a dataset of this spec>, column: <its column>}}")
    if p.get("local", "default") not in LOCAL_MODES:
        raise ConfigError(f"{where}: local must be one of {list(LOCAL_MODES)}")
    if "default" not in p and "default_from" not in p:
        raise ConfigError(f"{where}: needs a default or a default_from")
    # The configured value when there is one; `default` covers an empty or absent entry.
    configured = _conf_value(p["default_from"], conf_dir, where) if "default_from" in p else None
    default = configured if configured is not None else str(p.get("default") or "")
    return Parameter(key, p.get("display_name", key), "STRING", default=(default,),
                     options_field=str(options["column"]), options_dataset=str(options["dataset"]),
                     local=p.get("local", "default"))


def parse_spec(name: str, raw: dict, source: Path | None = None, conf_dir: Path = CONF_DIR) -> DashboardSpec:
    where = str(source or name)
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping")
    unknown = set(raw) - {"display_name", "description", "parameters", "datasets", "pages"}
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    declared = tuple(_parse_parameter(k, p, where, conf_dir) for k, p in (raw.get("parameters") or {}).items())
    known = known_parameters(declared)
    datasets = {}
    for key, d in (raw.get("datasets") or {}).items():
        if not isinstance(d, dict) or not d.get("sql"):
            raise ConfigError(f"{where}: dataset '{key}' needs sql")
        extra = set(d) - {"display_name", "sql", "requires_table"}
        if extra:
            raise ConfigError(f"{where}: dataset '{key}': unknown keys {sorted(extra)}")
        ds = Dataset(key, d.get("display_name", key), d["sql"].strip(), d.get("requires_table"), declared)
        for m in _PARAM_USE.finditer(_without_strings(ds.sql)):
            param = known.get(m.group(1))
            if param is None:
                raise ConfigError(f"{where}: dataset '{key}' uses unknown parameter :{m.group(1)}")
            if param.is_range != bool(m.group(2)):
                raise ConfigError(f"{where}: dataset '{key}': write :{param.keyword}"
                                  f"{'.min/.max' if param.is_range else ''}")
        if sum(p.dropdown for p in ds.parameters) > 1:  # each chart gets one dropdown
            raise ConfigError(f"{where}: dataset '{key}' uses more than one `local: dropdown` parameter")
        datasets[key] = ds
    if not datasets:
        raise ConfigError(f"{where}: no datasets")
    for p in declared:
        options = datasets.get(p.options_dataset)
        if options is None or options.requires_table:
            raise ConfigError(f"{where}: parameter '{p.keyword}': options dataset '{p.options_dataset}' "
                              "is not a dataset of this spec (or waits for a table)")
        if any(q.dropdown for q in options.parameters):
            raise ConfigError(f"{where}: parameter '{p.keyword}': its options dataset uses a dropdown parameter")
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
                         tuple(pages), source, declared)


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
