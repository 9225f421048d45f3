"""The page of one cluster's intervention test: verdict, region, bars with CIs, statistics, examples.

What a reader sees, top to bottom: the verdict in words; the region (outlined over the
cluster's prototype, over the map of where the cluster puts more relevance than its
reference, and over a typical image of the cluster); the mean change of the class score per
target group, intervention beside its control, each bar with its 95% bootstrap interval; the
statistics tables; and a few images before and after each intervention with their relevance maps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from bokeh.models import ColumnDataSource, FactorRange, HoverTool, Range1d
from bokeh.models.annotations import Whisker
from bokeh.models.widgets import Div
from bokeh.plotting import figure
from bokeh.transform import factor_cmap
from PIL import Image
from scipy import ndimage

from reports.images import heatmap_rgb, png_data_uri
from reports.page import Block, definition_table, write_page
from reports.safe import class_page_filename, text

PICTURE_SIDE = 192
"""Side of the region pictures on the page (small model inputs drawn enlarged, pixelated)."""
EXAMPLE_SIDE = 128
OUTLINE = np.array([0, 200, 80], dtype=np.uint8)
"""Colour of the region's outline: green, apart from the red/blue of the heatmaps."""
BAR_COLOURS = ("#3b6fb6", "#9aa3ad")
"""Intervention, control."""


@dataclass(frozen=True)
class ClusterPage:
    """Everything the page shows, as plain data (the workflow reads it from the store).

    ``summary`` and ``contrasts`` are the tables of :mod:`spray.verification.cluster_statistics`;
    ``verdict`` has ``conclusion``, ``headline`` and ``findings``; ``region`` holds ``mask``,
    ``difference``, ``prototype`` and ``medoid_pixels``; ``examples`` holds ``sample_id`` (E,),
    ``group`` (E,), ``donor`` (E,), ``condition`` (E, 3), ``pixels`` (E, 3, H, W, 3),
    ``relevance`` (E, 3, H, W) and ``score`` (E, 3).
    """

    class_name: str
    cluster: int
    summary: pd.DataFrame
    contrasts: pd.DataFrame
    verdict: dict
    region: dict[str, np.ndarray]
    region_text: str = ""
    reference: str = ""
    examples: dict[str, np.ndarray] = field(default_factory=dict)
    facts: dict = field(default_factory=dict)


def cluster_page_filename(class_name: str, cluster: int) -> str:
    """``class-<slug>-cluster-<K>.html``: the class page's name with the cluster (safe, unique per class)."""
    return class_page_filename(class_name).removesuffix(".html") + f"-cluster-{int(cluster)}.html"


def _group_labels(page: ClusterPage) -> dict[str, str]:
    return {
        "members": f"cluster {page.cluster} images",
        "other_classes": "images of other classes",
        "non_members": f"{page.class_name} images outside the cluster",
    }


def _condition_labels(page: ClusterPage) -> dict[str, str]:
    return {
        "original": "untouched",
        "remove": "region removed",
        "remove_control": "random region removed (control)",
        "transplant": "a cluster image's region pasted in",
        "transplant_control": f"region of a {page.class_name} image outside the cluster pasted in (control)",
    }


def render_cluster_page(page: ClusterPage, path: str | Path) -> Path:
    """Write the standalone page (Bokeh resources inline) to ``path`` and return it."""
    blocks = [
        Block(_header(page)),
        Block("<h2>The region</h2>" + _region_html(page)),
        Block("<h2>Change of the class score</h2>"),
    ]
    rows = page.summary[page.summary["condition"] != "original"] if not page.summary.empty else page.summary
    # a note in place of an empty chart, as a Bokeh root too: a page must embed at least one
    chart = (
        Div(text="No image was scored, so there is nothing to draw.", css_classes=["note"])
        if rows.empty
        else _bar_chart(rows, page)
    )
    chart.name = "changes"
    roots = [chart]
    blocks.append(Block(root="changes"))
    blocks += [
        Block("<h2>Intervention against control</h2>" + _contrast_table(page)),
        Block("<h2>Statistics per condition</h2>" + _summary_table(page)),
        Block("<h2>Before and after</h2>" + _examples_html(page)),
        Block("<h2>Settings</h2>" + definition_table(page.facts, "No settings recorded.")),
    ]
    return write_page(Path(path), f"spray: cluster {page.cluster} of {page.class_name}", roots, blocks)


def _header(page: ClusterPage) -> str:
    findings = "".join(f"<li>{text(sentence)}</li>" for sentence in page.verdict.get("findings", []))
    link = text(class_page_filename(page.class_name))
    return (
        f"<h1>Cluster {int(page.cluster)} of {text(page.class_name)}: shortcut test</h1>"
        f'<p class="subtitle">Does the model use what this cluster sees? Its distinctive region is removed from its '
        f"images and pasted into others, each against a control of the same size, and the {text(page.class_name)} "
        f'score is measured. <a href="{link}">Back to the class page</a>.</p>'
        f'<div class="summary"><p><strong>{text(page.verdict.get("headline", ""))}</strong></p>'
        f"<ul>{findings}</ul></div>"
    )


def _outlined(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``rgb`` (resized to the mask's size, nearest) with the mask's outline drawn on it."""
    height, width = mask.shape
    if rgb.shape[:2] != mask.shape:
        rgb = np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).resize((width, height), Image.Resampling.NEAREST))
    out = rgb.copy()
    out[mask & ~ndimage.binary_erosion(mask, border_value=0)] = OUTLINE
    return out


def _picture(rgb: np.ndarray, side: int, caption: str) -> str:
    size = f'class="pixelated" width="{side}" height="{side}"'
    return f'<td><img src="{png_data_uri(rgb)}" alt="{text(caption)}" {size}><br>{text(caption)}</td>'


def _region_html(page: ClusterPage) -> str:
    region = page.region
    if "mask" not in region:
        return '<p class="note">No region stored.</p>'
    mask = np.asarray(region["mask"], dtype=bool)
    pictures = [
        _picture(
            _outlined(heatmap_rgb(np.asarray(region["prototype"], float)), mask),
            PICTURE_SIDE,
            "prototype (mean pooled map of the cluster)",
        ),
        _picture(
            _outlined(heatmap_rgb(np.asarray(region["difference"], float)), mask),
            PICTURE_SIDE,
            "where the cluster puts more relevance than its reference (red)",
        ),
    ]
    if "medoid_pixels" in region:
        pictures.append(
            _picture(
                _outlined(np.asarray(region["medoid_pixels"], np.uint8), mask),
                PICTURE_SIDE,
                "a typical image of the cluster (its first medoid), as the model sees it",
            )
        )
    return (
        f'<table class="plain"><tr>{"".join(pictures)}</tr></table>'
        f"<p>Region (green outline): {text(page.region_text)}. Reference: {text(page.reference)}.</p>"
        f'<p class="note">{text(_rule_text(page.facts.get("region rule", {})))}</p>'
    )


def _rule_text(rule: dict) -> str:
    if not rule:
        return ""
    return (
        f"Rule: each map's positive relevance as shares of its total; the cluster's mean share minus the "
        f"reference's, smoothed with a Gaussian of {rule.get('sigma_cells')} pooling cells; the pixels with the "
        f"largest excess that together carry {rule.get('mass'):.0%} of it; of their 8-connected parts the one "
        "with the most excess, holes filled."
    )


_SHORT_CONDITIONS = {
    "remove": "region removed",
    "remove_control": "random region removed",
    "transplant": "cluster's region pasted",
    "transplant_control": "other region pasted",
}
"""Bar labels (the legend says which bar is the control; the tables give the full names)."""


def _bar_chart(rows: pd.DataFrame, page: ClusterPage) -> figure:
    """Bars (target group, condition) of the mean score change with 95% CI whiskers."""
    groups = _group_labels(page)
    rows = rows.assign(
        x=[(groups[g], _SHORT_CONDITIONS[c]) for g, c in zip(rows["group"], rows["condition"], strict=True)],
        kind=["control" if c.endswith("_control") else "intervention" for c in rows["condition"]],
        p_text=[f"{p:.2g}" if np.isfinite(p) else "n/a (no change)" for p in rows["p_value"]],
    )
    source = ColumnDataSource(
        {
            "x": list(rows["x"]),
            "mean": rows["mean"],
            "low": rows["ci_low"],
            "high": rows["ci_high"],
            "kind": rows["kind"],
            "n": rows["n"],
            "p": rows["p_text"],
            "std": rows["std"].fillna(0.0),
        }
    )
    low = min(0.0, rows["ci_low"].min(), rows["mean"].min())
    high = max(0.0, rows["ci_high"].max(), rows["mean"].max())
    margin = 0.08 * (high - low) or 1.0  # whiskers are annotations: the auto range would clip them
    chart = figure(
        x_range=FactorRange(*rows["x"]),
        y_range=Range1d(low - margin, high + margin),
        height=400,
        sizing_mode="stretch_width",
        toolbar_location=None,
        tools="",
        y_axis_label=f"mean change of the {page.class_name} score",
    )
    chart.vbar(
        x="x",
        top="mean",
        width=0.8,
        source=source,
        line_color="white",
        legend_field="kind",
        fill_color=factor_cmap("kind", palette=list(BAR_COLOURS), factors=["intervention", "control"]),
    )
    chart.add_layout(Whisker(base="x", lower="low", upper="high", source=source, line_color="#333"))
    chart.add_tools(
        HoverTool(
            tooltips=[
                ("mean", "@mean{+0.000}"),
                ("95% CI", "@low{+0.000} to @high{+0.000}"),
                ("std", "@std{0.000}"),
                ("n", "@n"),
                ("Wilcoxon p", "@p"),
            ]
        )
    )
    chart.xaxis.major_label_orientation = 0.3
    chart.xgrid.grid_line_color = None
    chart.legend.orientation = "horizontal"
    chart.add_layout(chart.legend[0], "above")
    return chart


def _number(value: float, spec: str) -> str:
    return format(value, spec) if np.isfinite(value) else "n/a"


def _numbers(*values: object) -> str:
    """Table cells of numbers, kept on one line each (a wrapped "+0.123" reads as two numbers)."""
    return "".join(f'<td style="white-space: nowrap">{text(value)}</td>' for value in values)


def _contrast_table(page: ClusterPage) -> str:
    if page.contrasts.empty:
        return '<p class="note">No image had both an intervention and its control scored.</p>'
    groups, conditions = _group_labels(page), _condition_labels(page)
    head = (
        "<tr><th>images</th><th>intervention</th><th>control</th><th>n</th><th>mean change (intervention)</th>"
        "<th>mean change (control)</th><th>difference</th><th>its 95% CI</th><th>Wilcoxon p</th>"
        "<th>in class-score spreads</th><th>d<sub>z</sub></th><th>images the expected way</th></tr>"
    )
    body = "".join(
        f"<tr><td>{text(groups[row.group])}</td><td>{text(conditions[row.intervention])}</td>"
        f"<td>{text(conditions[row.control])}</td>"
        + _numbers(
            int(row.n),
            f"{row.intervention_mean:+.3f}",
            f"{row.control_mean:+.3f}",
            f"{row.difference:+.3f}",
            f"{row.ci_low:+.3f} to {row.ci_high:+.3f}",
            _number(row.p_value, ".2g"),
            _number(row.effect, "+.2f"),
            _number(row.consistency, "+.2f"),
            _number(row.win_share, ".0%"),
        )
        + "</tr>"
        for row in page.contrasts.itertuples()
    )
    verdict = page.verdict
    return (
        f'<table class="plain">{head}{body}</table><p class="note">Each image gets both conditions; the '
        "difference is paired per image. A test beats its control clearly when the difference's 95% CI excludes "
        f"zero, p &lt; {text(verdict.get('alpha'))}, its mean is at least {text(verdict.get('margin'))} standard "
        "deviations of the class score over the class's images (Cohen's medium effect: large enough to matter) "
        f"and at least {text(verdict.get('consistency'))} times the spread of the differences across images "
        "(d<sub>z</sub>: images that carry an artefact respond alike; 1.5 asks that more than two in three "
        "images respond). Removal is expected to lower the score, pasting to raise it.</p>"
    )


def _summary_table(page: ClusterPage) -> str:
    if page.summary.empty:
        return '<p class="note">No statistics: no image was scored.</p>'
    groups, conditions = _group_labels(page), _condition_labels(page)
    head = (
        "<tr><th>images</th><th>condition</th><th>n</th><th>mean score</th><th>mean change</th><th>std</th>"
        "<th>95% CI</th><th>Wilcoxon p</th><th>positive relevance in the region</th></tr>"
    )
    body = "".join(
        f"<tr><td>{text(groups[row.group])}</td><td>{text(conditions[row.condition])}</td>"
        + _numbers(
            int(row.n),
            f"{row.score_mean:+.3f}",
            f"{row.mean:+.3f}",
            _number(row.std, ".3f"),
            f"{row.ci_low:+.3f} to {row.ci_high:+.3f}",
            _number(row.p_value, ".2g"),
            _number(row.region_relevance_share, ".0%"),
        )
        + "</tr>"
        for row in page.summary.itertuples()
    )
    return (
        f'<table class="plain">{head}{body}</table><p class="note">Changes are against the untouched image; p '
        "is n/a where no image changed.</p>"
    )


def _examples_html(page: ClusterPage) -> str:
    examples = page.examples
    if not examples or len(examples.get("sample_id", [])) == 0:
        return '<p class="note">No example drawn.</p>'
    groups, conditions = _group_labels(page), _condition_labels(page)
    size = f'class="pixelated" width="{EXAMPLE_SIDE}" height="{EXAMPLE_SIDE}"'
    rows = []
    for e, sample_id in enumerate(examples["sample_id"]):
        cells = []
        for c, condition in enumerate(examples["condition"][e]):
            picture = png_data_uri(np.asarray(examples["pixels"][e, c], np.uint8))
            heatmap = png_data_uri(heatmap_rgb(np.asarray(examples["relevance"][e, c], float)))
            cells.append(
                f"<td>{text(conditions.get(str(condition), str(condition)))}<br>"
                f'<img src="{picture}" alt="input" {size}><br><img src="{heatmap}" alt="relevance" {size}>'
                f"<br>score {examples['score'][e, c]:+.2f}</td>"
            )
        donor = str(examples["donor"][e])
        origin = f"<br>region from {text(donor)}" if donor else ""
        rows.append(
            f'<tr><th>{text(sample_id)}<br><span class="note">{text(groups.get(str(examples["group"][e]), ""))}'
            f"{origin}</span></th>{''.join(cells)}</tr>"
        )
    return (
        f'<table class="plain">{"".join(rows)}</table><p class="note">Top: what the model sees; bottom: LRP '
        "relevance of the class output (red positive, blue negative, each map scaled by its max |R|; thesis "
        'L936-L942) <span class="legend-bar"></span></p>'
    )
