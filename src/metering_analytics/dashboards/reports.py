"""Customer reports: the customer success spec's per-subscription page, one HTML file per subscription.

An account executive shares a report with that one customer, so a report holds only rows whose
`subscription_key` is the customer's: every dataset on the page filters on `:subscription` (the spec
loader enforces it) and must return `subscription_key`. Each dataset is queried once for all
subscriptions and split here per subscription, so 300 reports cost a few queries, not 300 x that.

File names are `subscription-<first 16 hex digits of sha256(subscription_key)>.html`: stable, safe in
any file system, and they do not reveal the key. `index.html` (internal: it lists every customer)
links them all.
"""
from __future__ import annotations

import hashlib
import html
from pathlib import Path

import pandas as pd

from metering_analytics.dashboards.render import (
    Choices, DatasetCache, html_document, page_section,
)
from metering_analytics.dashboards.spec import DashboardSpec, Page

KEY = "subscription_key"
PLOTLY_FILE = "plotly.min.js"


def report_file_name(subscription_key: str) -> str:
    return f"subscription-{hashlib.sha256(subscription_key.encode('utf-8')).hexdigest()[:16]}.html"


def _split(frame: pd.DataFrame | Choices, where: str) -> dict[str, pd.DataFrame | Choices]:
    """The rows per subscription; a dataset run per dropdown choice is split choice by choice."""
    choices = isinstance(frame, Choices)
    if any(KEY not in f.columns for f in (frame.frames.values() if choices else [frame])):
        raise ValueError(f"{where}: a per-subscription dataset must return {KEY}")
    if choices:
        return frame.split(KEY)
    return {key: rows for key, rows in frame.groupby(KEY, sort=False, dropna=True)}


def write_customer_reports(specs: dict[str, DashboardSpec], cache: DatasetCache, out_dir: Path,
                           as_of: str, self_contained: bool = False) -> dict:
    """Write one report per subscription for every per-subscription page; returns paths and pending parts.

    `self_contained`: plotly.js inside every file (about 4.7 MB each) instead of one shared
    `plotly.min.js` next to them; use it to hand out single files.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    plotly_js = "inline" if self_contained else PLOTLY_FILE
    if not self_contained:
        from plotly.offline import get_plotlyjs

        (out_dir / PLOTLY_FILE).write_text(get_plotlyjs(), encoding="utf-8")
    reports, pending, index_rows = {}, [], []
    for spec in specs.values():
        for page in (p for p in spec.pages if p.per_subscription):
            written, left_out = _write_page_reports(spec, page, cache, out_dir, as_of, plotly_js)
            pending += left_out
            for key, (path, plan) in written.items():
                reports[key] = str(path)
                index_rows.append((key, plan, path.name))
    index = out_dir / "index.html"
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(p))}</td>"
                   f'<td><a href="{n}">report</a></td></tr>' for k, p, n in sorted(index_rows))
    body = (f"<p>{len(index_rows)} customer reports. Each file shows one subscription only and can be "
            "shared with that customer.</p><table><tr><th>subscription</th><th>plan</th><th></th></tr>"
            f"{rows}</table>")
    index.write_text("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                     "<title>Customer reports (internal)</title></head><body><h1>Customer reports (internal)</h1>"
                     f"<p>Data as of {html.escape(as_of)}.</p>{body}</body></html>\n", encoding="utf-8")
    return {"reports": reports, "index": str(index), "pending": pending}


def _write_page_reports(spec: DashboardSpec, page: Page, cache: DatasetCache, out_dir: Path, as_of: str,
                        plotly_js: str) -> tuple[dict, list[str]]:
    by_dataset: dict[str, dict[str, pd.DataFrame | Choices]] = {}
    empty: dict[str, pd.DataFrame | Choices] = {}
    pending = []
    for name in dict.fromkeys(w.dataset for w in page.widgets):
        frame = cache.get(spec, name)
        if frame is None:
            pending.append(f"{spec.name}.{page.name}: {name} (needs gold.{spec.datasets[name].requires_table})")
            continue
        by_dataset[name] = _split(frame, f"{spec.name}.{name}")
        empty[name] = frame.empty() if isinstance(frame, Choices) else frame.iloc[0:0]
    # The subscriptions are those of the page's first dataset (the summary: every subscription).
    first = page.widgets[0].dataset
    subscriptions = by_dataset.get(first, {})
    written = {}
    for key, summary in subscriptions.items():
        figures: dict[str, dict] = {}
        shown = [(w, by_dataset[w.dataset].get(key, empty[w.dataset]))
                 for w in page.widgets if w.dataset in by_dataset]
        body = page_section(page, shown, "r", figures, heading=False)
        if isinstance(summary, Choices):  # a page that starts with a dropdown chart
            summary = next((f for f in summary.frames.values() if len(f)), pd.DataFrame())
        plan = summary["plan_id"].iloc[0] if "plan_id" in summary.columns else ""
        title = f"Usage report - {key}"
        subtitle = (f"Plan {html.escape(str(plan))}. Data as of {html.escape(as_of)}. "
                    "Consumption trends, the current billing cycle's balance and its projection to the cycle's end.")
        path = out_dir / report_file_name(key)
        path.write_text(html_document(title, subtitle, body, figures, plotly_js), encoding="utf-8")
        written[key] = (path, plan)
    return written, pending
