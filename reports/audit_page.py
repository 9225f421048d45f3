"""The audit page: what changed since the last audit, then how each class evolved.

A page in the class pages' style (``reports.page``: the same CSS, BokehJS loaded from the
reports folder, so it opens offline from disk). The findings come first, because they are
what a person opening the nightly audit wants to know, each with the prototype (mean pooled
map) of its cluster beside it; then the notices, the classes, and two timelines across every
audit of the model name: lambda_2 of L_sym per class (the ranking key of the cross-class
comparison, Fig. 6.5, L2124) and the highest cluster suspicion per class. The time axis spans
at least a day, so a first audit reads as a date rather than as microsecond ticks. Every user
string passes through :func:`reports.safe.text`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from bokeh.models import ColumnDataSource, DatetimeTickFormatter, HoverTool, Range1d
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

from reports.images import heatmap_rgb, png_data_uri
from reports.page import Block, write_page
from reports.safe import text

PROTOTYPE_PX = 64
MIN_SPAN = pd.Timedelta(days=1)
"""Shortest time axis: one audit (or several within a day) is drawn on a day around it."""


def write_audit_page(path: str | os.PathLike, timeline: pd.DataFrame, summary: dict[str, Any]) -> Path:
    """Write the page of one audit to ``path``.

    ``timeline``: the audit history rows of this model name up to and including this audit
    (columns as in ``workflows.audit.record.SCHEMA``); ``summary``: the audit's JSON summary
    (``findings`` as dicts with ``kind``, ``class_name``, ``message``; ``classes`` with each
    class's ``report_page``). The file is replaced atomically (never left half written).
    """
    path = Path(path)
    per_audit = _per_class_per_audit(timeline)
    roots = [
        _timeline(per_audit, "lambda_2", "lambda_2 of L_sym per class across audits (lower: more separated clusters)"),
        _timeline(per_audit, "suspicion", "highest cluster suspicion per class across audits"),
    ]
    blocks = [
        Block(_findings_html(summary, _prototype_pictures(timeline))),
        Block(_notices_html(summary)),
        Block("<h2>Classes</h2>" + _classes_html(summary, path.parent)),
        Block("<h2>Across audits</h2>"),
        Block(root="lambda_2"),
        Block(root="suspicion"),
    ]
    title = f"spray audit {summary.get('model_name')} {summary.get('audit_id')}"
    return write_page(path, title, roots, blocks, assets_root=path.parent.parent)


def _per_class_per_audit(timeline: pd.DataFrame) -> pd.DataFrame:
    """One row per (audit, class): lambda_2 and the highest suspicion among its clusters."""
    grouped = timeline.groupby(["audit_id", "class_name"], sort=False)
    frame = grouped.agg(
        started_at=("started_at", "first"),
        model_version=("model_version", "first"),
        lambda_2=("lambda_2", "first"),
        suspicion=("suspicion", "max"),
        n_clusters=("n_clusters", "first"),
    ).reset_index()
    return frame.sort_values("started_at", kind="stable")


def _timeline(per_audit: pd.DataFrame, column_name: str, title: str) -> Any:
    times = per_audit["started_at"].dt.tz_localize(None)
    first, last = (times.min(), times.max()) if len(times) else (pd.Timestamp.now(), pd.Timestamp.now())
    pad = max(MIN_SPAN - (last - first), pd.Timedelta(0)) / 2 + (last - first) * 0.05
    plot = figure(
        title=title,
        x_axis_type="datetime",
        height=300,
        sizing_mode="stretch_width",
        tools="pan,wheel_zoom,reset,save",
        x_range=Range1d(first - pad, last + pad),
        name=column_name,
    )
    plot.xaxis.formatter = DatetimeTickFormatter(
        hours="%Y-%m-%d %H:%M", hourmin="%Y-%m-%d %H:%M", days="%Y-%m-%d", months="%Y-%m", years="%Y"
    )
    for index, (class_name, rows) in enumerate(per_audit.groupby("class_name", sort=True)):
        source = ColumnDataSource(
            {
                "started_at": rows["started_at"].dt.tz_localize(None),
                "value": rows[column_name],
                "class_name": [str(class_name)] * len(rows),
                "model_version": rows["model_version"].astype(str),
                "audit_id": rows["audit_id"].astype(str),
                "n_clusters": rows["n_clusters"],
            }
        )
        colour = Category10_10[index % len(Category10_10)]
        plot.line("started_at", "value", source=source, color=colour, legend_label=str(class_name))
        plot.scatter("started_at", "value", source=source, color=colour, size=8, legend_label=str(class_name))
    plot.add_tools(
        HoverTool(
            tooltips=[
                ("class", "@class_name"),
                ("version", "@model_version"),
                ("audit", "@audit_id"),
                (column_name, "@value{0.0000}"),
                ("clusters", "@n_clusters"),
            ]
        )
    )
    plot.yaxis.axis_label = column_name
    if plot.legend:
        plot.legend.click_policy = "hide"
    return plot


def _prototype_pictures(timeline: pd.DataFrame) -> dict[tuple[str, str, int], str]:
    """(audit id, class, cluster) -> the cluster prototype as a PNG data URI (diverging map, L936-L942)."""
    pictures = {}
    for row in timeline.itertuples(index=False):
        flat = np.asarray(row.prototype, dtype=float)
        side = round(np.sqrt(flat.size))
        if side * side == flat.size and side > 0:
            picture = png_data_uri(heatmap_rgb(flat.reshape(side, side)))
            pictures[(row.audit_id, row.class_name, int(row.cluster))] = picture
    return pictures


def _finding_html(finding: dict[str, Any], pictures: dict[tuple[str, str, int], str]) -> str:
    details = finding.get("details", {})
    picture = pictures.get((details.get("audit_id"), finding["class_name"], details.get("cluster")))
    image = (
        f'<img class="pixelated" src="{picture}" width="{PROTOTYPE_PX}" height="{PROTOTYPE_PX}" '
        'alt="cluster prototype (mean map)">'
        if picture
        else ""
    )
    return f"<li>{image}<span><b>{text(finding['kind'].replace('_', ' '))}</b>: {text(finding['message'])}</span></li>"


def _findings_html(summary: dict[str, Any], pictures: dict[tuple[str, str, int], str]) -> str:
    findings = summary.get("findings", [])
    heading = (
        f"<h1>Audit of {text(summary.get('model_name'))} version {text(summary.get('model_version'))}</h1>"
        f'<p class="subtitle">audit {text(summary.get("audit_id"))}, started {text(_when(summary.get("started_at")))}; '
        f"model fingerprint {text(summary.get('model_fingerprint'))}</p>"
    )
    previous = summary.get("previous_audit_id")
    if previous is None:
        verdict = "No findings: this is the first audit of this model name, the baseline for the next."
    elif not findings:
        verdict = f"No findings: nothing changed beyond the thresholds since audit {previous}."
    else:
        verdict = f"{len(findings)} finding{'s' if len(findings) != 1 else ''} since audit {previous}."
    items = "".join(_finding_html(finding, pictures) for finding in findings)
    listed = f'<ul class="findings">{items}</ul>' if items else ""
    return heading + f'<div class="summary"><p><strong>{text(verdict)}</strong></p>{listed}</div>'


def _when(started_at: Any) -> str:
    """An ISO time as "2026-12-01 01:43:40 UTC" (the summary keeps microseconds; a person needs seconds)."""
    if not started_at:
        return "at an unknown time"
    stamp = pd.Timestamp(started_at)
    if stamp.tzinfo is None:
        return stamp.strftime("%Y-%m-%d %H:%M:%S")
    return stamp.tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S UTC")


def _notices_html(summary: dict[str, Any]) -> str:
    """Notices (changes that raise no finding, e.g. a tagged shortcut still present) and skipped classes."""
    notices = [str(notice) for notice in summary.get("notices", [])]
    notices += [f"class {name} was skipped: {reason}" for name, reason in summary.get("skipped_classes", {}).items()]
    if not notices:
        return ""
    return "<h2>Notices</h2><ul>" + "".join(f"<li>{text(notice)}</li>" for notice in notices) + "</ul>"


def _classes_html(summary: dict[str, Any], page_folder: Path) -> str:
    rows = []
    for entry in summary.get("classes", []):
        name = text(entry["class_name"])
        page = entry.get("report_page")
        if page:
            name = f'<a href="{text(Path(os.path.relpath(page, page_folder)).as_posix())}">{name}</a>'
        reused = "reused" if entry["reused_analysis"] else "computed"
        rows.append(
            f"<tr><td>{name}</td><td>{int(entry['n_samples'])}</td><td>{int(entry['n_computed'])}</td>"
            f"<td>{reused}</td><td>{int(entry['n_clusters'])}</td></tr>"
        )
    return (
        '<table class="plain"><tr><th>class</th><th>samples</th><th>maps computed now</th><th>analysis</th>'
        "<th>clusters</th></tr>" + "".join(rows) + "</table>"
    )


__all__ = ["write_audit_page"]
