"""The audit page: what changed since the last audit, then how each class evolved.

A Bokeh HTML file (BokehJS from the reports folder, so it opens offline from disk). The findings
come first, because they are what a person opening the nightly audit wants to know; then
two timelines across every audit of the model name: lambda_2 of L_sym per class (the
ranking key of the cross-class comparison, Fig. 6.5, L2124) and the highest cluster
suspicion per class. A new or resolved cluster is shown with its prototype (mean pooled map).
Every user string passes through :func:`reports.safe.text`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from bokeh.embed import file_html
from bokeh.layouts import column
from bokeh.models import ColumnDataSource, Div, HoverTool
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

from reports.images import heatmap_rgb, png_data_uri
from reports.page import bokeh_resources
from reports.safe import text
from spray.atomic import write_text_atomically

PROTOTYPE_PX = 64


def write_audit_page(path: str | os.PathLike, timeline: pd.DataFrame, summary: dict[str, Any]) -> Path:
    """Write the page of one audit to ``path``.

    ``timeline``: the audit history rows of this model name up to and including this audit
    (columns as in ``workflows.audit.record.SCHEMA``); ``summary``: the audit's JSON summary
    (``findings`` as dicts with ``kind``, ``class_name``, ``message``; ``classes`` with each
    class's ``report_page``). The file is replaced atomically (never left half written).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    per_audit = _per_class_per_audit(timeline)
    layout = column(
        Div(text=_findings_html(summary, _prototype_pictures(timeline)), sizing_mode="stretch_width"),
        Div(text=_classes_html(summary, path.parent), sizing_mode="stretch_width"),
        _timeline(per_audit, "lambda_2", "lambda_2 of L_sym per class across audits (lower: more separated clusters)"),
        _timeline(per_audit, "suspicion", "highest cluster suspicion per class across audits"),
        sizing_mode="stretch_width",
    )
    title = f"spray audit {summary.get('model_name')} {summary.get('audit_id')}"
    return write_text_atomically(path, file_html(layout, resources=bokeh_resources(path, Path(path).parent.parent),
                                                 title=title))


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
    plot = figure(
        title=title, x_axis_type="datetime", height=300, sizing_mode="stretch_width", tools="pan,wheel_zoom,reset,save"
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
        side = int(round(np.sqrt(flat.size)))
        if side * side == flat.size and side > 0:
            pictures[(row.audit_id, row.class_name, int(row.cluster))] = png_data_uri(heatmap_rgb(flat.reshape(side, side)))
    return pictures


def _finding_html(finding: dict[str, Any], pictures: dict[tuple[str, str, int], str]) -> str:
    details = finding.get("details", {})
    picture = pictures.get((details.get("audit_id"), finding["class_name"], details.get("cluster")))
    image = (
        f'<img src="{picture}" width="{PROTOTYPE_PX}" height="{PROTOTYPE_PX}" '
        'style="image-rendering: pixelated; vertical-align: middle" alt="cluster prototype (mean map)"> '
        if picture
        else ""
    )
    return f"<li>{image}<b>{text(finding['kind'].replace('_', ' '))}</b>: {text(finding['message'])}</li>"


def _findings_html(summary: dict[str, Any], pictures: dict[tuple[str, str, int], str]) -> str:
    findings = summary.get("findings", [])
    heading = (
        f"<h1>Audit of {text(summary.get('model_name'))} version {text(summary.get('model_version'))}</h1>"
        f"<p>audit {text(summary.get('audit_id'))}, started {text(summary.get('started_at'))}; "
        f"model fingerprint {text(summary.get('model_fingerprint'))}</p>"
    )
    previous = summary.get("previous_audit_id")
    if previous is None:
        return heading + "<h2>No findings: this is the first audit of this model name, the baseline for the next.</h2>"
    if not findings:
        return heading + f"<h2>No findings: nothing changed beyond the thresholds since audit {text(previous)}.</h2>"
    items = "".join(_finding_html(finding, pictures) for finding in findings)
    return heading + f"<h2>{len(findings)} findings since audit {text(previous)}</h2><ul>{items}</ul>"


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
        "<table><tr><th>class</th><th>samples</th><th>maps computed now</th><th>analysis</th><th>clusters</th></tr>"
        + "".join(rows)
        + "</table>"
    )


__all__ = ["write_audit_page"]
