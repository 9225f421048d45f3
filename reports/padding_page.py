"""The padding-experiment page: verdict, grouped bar charts, statistics and example maps.

Drawn after the thesis's figures (§6.3.1): mean change of the class score per strategy
against the copied border, for images of the class and not of it (Fig. 6.8) and for
landscape against portrait images (Fig. 6.11), each bar with its 95% bootstrap confidence
interval; then the relevance map of a few images under every strategy (Figs. 6.9-6.10).
A group with no image that needs padding gets a sentence saying so instead of an empty chart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from bokeh.models import CategoricalAxis, ColumnDataSource, FactorRange, HoverTool, Range1d
from bokeh.models.annotations import Whisker
from bokeh.plotting import figure
from bokeh.transform import factor_cmap

from reports.images import heatmap_rgb, png_data_uri, shrink
from reports.page import Block, definition_table, write_page
from reports.safe import class_page_filename, text

BASELINE = "copy_border"
EXAMPLE_SIDE = 128
"""Side of each example picture on the page: larger model inputs are shrunk, smaller ones enlarged."""
GROUP_COLOURS = ("#3b6fb6", "#d9822b")


@dataclass(frozen=True)
class PaddingPage:
    """Everything the page shows, as plain data (the workflow reads it from the store).

    ``summary`` has one row per (member, orientation, strategy) with n, mean, std, ci_low,
    ci_high, p_value, padded_fraction and padded_relevance_share; ``verdict`` has
    ``conclusion``, ``headline`` and ``findings``; ``examples`` holds ``sample_id`` (E,),
    ``member`` (E,), ``strategy`` (S,), ``pixels`` (E, S, H, W, 3), ``relevance`` (E, S, H, W)
    and ``score`` (E, S).
    """

    class_name: str
    summary: pd.DataFrame
    verdict: dict
    strategy_labels: dict[str, str]
    examples: dict[str, np.ndarray] = field(default_factory=dict)
    facts: dict = field(default_factory=dict)


def padding_page_filename(class_name: str) -> str:
    """``class-<slug>-padding.html``: the class page's name with ``-padding`` (safe, unique)."""
    return class_page_filename(class_name).removesuffix(".html") + "-padding.html"


def render_padding_page(page: PaddingPage, path: str | Path) -> Path:
    """Write the standalone page (Bokeh resources inline) to ``path`` and return it."""
    name = page.class_name
    members, others = f"{name} images", f"images not of {name}"
    roots, blocks = [], [Block(_header(page))]
    charts = [
        (
            "comparison",
            "Images of the class against the others (cf. thesis Fig. 6.8)",
            _chart_rows(page.summary, {(True, "padded"): members, (False, "padded"): others}),
        ),
        (
            "others_orientation",
            f"{others.capitalize()}: vertical against horizontal padding (cf. Fig. 6.11)",
            _chart_rows(
                page.summary,
                {
                    (False, "landscape"): "landscape (padded above and below)",
                    (False, "portrait"): "portrait (padded left and right)",
                },
            ),
        ),
        (
            "members_orientation",
            f"{members.capitalize()}: vertical against horizontal padding",
            _chart_rows(
                page.summary,
                {
                    (True, "landscape"): "landscape (padded above and below)",
                    (True, "portrait"): "portrait (padded left and right)",
                },
            ),
        ),
    ]
    for root_name, title, rows in charts:
        blocks.append(Block(f"<h2>{text(title)}</h2>"))
        if rows.empty:
            blocks.append(
                Block(
                    '<p class="note">No image in these groups needs padding (all are square, or none '
                    "was sampled), so there is nothing to compare here.</p>"
                )
            )
            continue
        chart = _bar_chart(rows, page.strategy_labels, name)
        chart.name = root_name
        roots.append(chart)
        blocks.append(Block(root=root_name))
    blocks += [
        Block("<h2>Statistics</h2>" + _statistics_table(page.summary, page.strategy_labels)),
        Block("<h2>Relevance under each strategy (cf. Figs. 6.9-6.10)</h2>" + _examples_html(page)),
        Block("<h2>Settings</h2>" + definition_table(page.facts, "No settings recorded.")),
    ]
    return write_page(Path(path), f"spray: padding experiment for {name}", roots, blocks)


def _header(page: PaddingPage) -> str:
    findings = "".join(f"<li>{text(sentence)}</li>" for sentence in page.verdict.get("findings", []))
    link = text(class_page_filename(page.class_name))
    return (
        f"<h1>Padding experiment: {text(page.class_name)}</h1>"
        f'<p class="subtitle">Does the model use the padded border? Every image is made square in six ways '
        f"and scored for the class; each change is measured against the copied border (thesis §6.3.1). "
        f'<a href="{link}">Back to the class page</a>.</p>'
        f'<div class="summary"><p><strong>{text(page.verdict.get("headline", ""))}</strong></p>'
        f"<ul>{findings}</ul></div>"
    )


def _chart_rows(summary: pd.DataFrame, groups: dict[tuple[bool, str], str]) -> pd.DataFrame:
    """The summary rows of ``groups`` (member, orientation) -> legend name; empty if none has data."""
    parts = []
    for (member, orientation), legend in groups.items():
        rows = summary[(summary["member"] == member) & (summary["orientation"] == orientation)].copy()
        rows["group"] = legend
        parts.append(rows)
    rows = pd.concat(parts, ignore_index=True)
    return rows[rows["n"] > 0]


def _bar_chart(rows: pd.DataFrame, labels: dict[str, str], class_name: str) -> figure:
    """Grouped bars (strategy, group) of the mean score change with 95% CI whiskers."""
    order = [s for s in labels if s in set(rows["strategy"])]
    groups = list(dict.fromkeys(rows["group"]))
    rows = rows.assign(
        x=[(labels[s], g) for s, g in zip(rows["strategy"], rows["group"], strict=True)],
        strategy_label=[labels[s] for s in rows["strategy"]],
        p_text=[f"{p:.2g}" if np.isfinite(p) else "n/a (no change)" for p in rows["p_value"]],
    )
    rows["rank"] = [
        order.index(s) * len(groups) + groups.index(g) for s, g in zip(rows["strategy"], rows["group"], strict=True)
    ]
    rows = rows.sort_values("rank")
    source = ColumnDataSource(
        {
            "x": list(rows["x"]),
            "mean": rows["mean"],
            "low": rows["ci_low"],
            "high": rows["ci_high"],
            "group": rows["group"],
            "strategy": rows["strategy_label"],
            "n": rows["n"],
            "std": rows["std"].fillna(0.0),
            "p": rows["p_text"],
        }
    )
    factors = [(labels[s], g) for s in order for g in groups]
    low, high = min(0.0, rows["ci_low"].min(), rows["mean"].min()), max(0.0, rows["ci_high"].max(), rows["mean"].max())
    margin = 0.08 * (high - low) or 1.0  # whiskers are annotations: the auto range would clip them
    x_range = FactorRange(factors=factors)
    chart = figure(
        x_range=x_range,
        y_range=Range1d(low - margin, high + margin),
        height=340,
        sizing_mode="stretch_width",
        toolbar_location=None,
        tools="",
        title=f"mean change of the {class_name} score against copy border, with 95% CI",
        y_axis_label="mean score change",
    )  # a longer axis title did not fit the chart's height
    chart.vbar(
        x="x",
        top="mean",
        width=0.85,
        source=source,
        line_color="white",
        fill_color=factor_cmap("x", palette=list(GROUP_COLOURS[: len(groups)]), factors=groups, start=1, end=2),
        legend_field="group",
    )
    chart.add_layout(Whisker(base="x", lower="low", upper="high", source=source, line_color="#333"))
    chart.add_tools(
        HoverTool(
            tooltips=[
                ("strategy", "@strategy"),
                ("group", "@group"),
                ("mean", "@mean{+0.000}"),
                ("95% CI", "@low{+0.000} to @high{+0.000}"),
                ("std", "@std{0.000}"),
                ("n", "@n"),
                ("Wilcoxon p", "@p"),
            ]
        )
    )
    chart.xaxis.major_label_text_font_size = "0px"  # the legend names the bars of a strategy
    for axis in chart.xaxis:  # categorical: the x range is a FactorRange
        if isinstance(axis, CategoricalAxis):
            axis.group_text_font_size = "12px"
    x_range.range_padding = 0.05
    chart.xgrid.grid_line_color = None
    chart.legend.orientation = "horizontal"
    chart.add_layout(chart.legend[0], "above")
    return chart


#: Changes below this show as 0.000 in the table: a square image, which no strategy alters, scores the same.
UNCHANGED = 0.0005


def _unchanged_square(summary: pd.DataFrame) -> pd.Series:
    """Rows of square images that no strategy changed (nothing padded, every change displays as 0.000)."""
    return (
        (summary["orientation"] == "square")
        & (summary["padded_fraction"].fillna(0) == 0)
        & (summary["mean"].abs().fillna(0) < UNCHANGED)
        & (summary["std"].fillna(0) < UNCHANGED)
    )


def _square_note(summary: pd.DataFrame) -> str:
    """One sentence for the square images left out of the table, or "" when none was."""
    left_out = summary[_unchanged_square(summary)]
    if left_out.empty or not left_out["n"].any():
        return ""
    counts = left_out.groupby("member")["n"].max()
    parts = [f"{int(counts[m])} {'of the class' if m else 'not of the class'}" for m in (True, False) if m in counts]
    return (
        f" Square images ({', '.join(parts)}) need no padding: no strategy changes them, so their rows (all "
        "zero) are left out."
    )


def _statistics_table(summary: pd.DataFrame, labels: dict[str, str]) -> str:
    shown = summary[(summary["n"] > 0) & ~_unchanged_square(summary)]
    if shown.empty:
        return '<p class="note">No statistics: no image was scored.</p>'
    head = (
        "<tr><th>images</th><th>orientation</th><th>strategy</th><th>n</th><th>mean change</th><th>std</th>"
        "<th>95% CI</th><th>Wilcoxon p</th><th>padded area</th><th>positive relevance in it</th></tr>"
    )
    body = "".join(
        f"<tr><td>{'of the class' if row.member else 'not of the class'}</td><td>{text(row.orientation)}</td>"
        f"<td>{text(labels.get(row.strategy, row.strategy))}</td><td>{int(row.n)}</td><td>{row.mean:+.3f}</td>"
        f"<td>{_number(row.std, '.3f')}</td><td>{row.ci_low:+.3f} to {row.ci_high:+.3f}</td>"
        f"<td>{_number(row.p_value, '.2g')}</td><td>{_number(row.padded_fraction, '.0%')}</td>"
        f"<td>{_number(row.padded_relevance_share, '.0%')}</td></tr>"
        for row in shown.itertuples()
    )
    return (
        f'<table class="plain">{head}{body}</table><p class="note">"padded" pools every non-square image; '
        f"p is n/a where no image changed.{text(_square_note(summary))}</p>"
    )


def _number(value: float, spec: str) -> str:
    return format(value, spec) if np.isfinite(value) else "n/a"


def _examples_html(page: PaddingPage) -> str:
    examples = page.examples
    if not examples or len(examples.get("sample_id", [])) == 0:
        return '<p class="note">No example: no sampled image needs padding.</p>'
    strategies = [str(s) for s in examples["strategy"]]
    size = f'class="pixelated" width="{EXAMPLE_SIDE}" height="{EXAMPLE_SIDE}"'  # small inputs drawn enlarged
    head = "<tr><th>image</th>" + "".join(f"<th>{text(page.strategy_labels.get(s, s))}</th>" for s in strategies)
    rows = []
    for e, sample_id in enumerate(examples["sample_id"]):
        who = "of the class" if examples["member"][e] else "not of the class"
        cells = []
        for s in range(len(strategies)):
            picture = png_data_uri(shrink(examples["pixels"][e, s], EXAMPLE_SIDE))
            heatmap = png_data_uri(shrink(heatmap_rgb(examples["relevance"][e, s]), EXAMPLE_SIDE))
            cells.append(
                f'<td><img src="{picture}" alt="input" {size}><br><img src="{heatmap}" alt="relevance" {size}><br>'
                f"score {examples['score'][e, s]:+.2f}</td>"
            )
        rows.append(f'<tr><th>{text(sample_id)}<br><span class="note">{who}</span></th>{"".join(cells)}</tr>')
    return (
        f'<table class="plain">{head}</tr>{"".join(rows)}</table>'
        '<p class="note">Top: what the model sees; bottom: LRP relevance of the class output '
        "(red positive, blue negative, each map scaled by its max |R|; thesis L936-L942) "
        '<span class="legend-bar"></span></p>'
    )
