"""The index page: every analysed class ranked by lambda_2 (Fig. 6.5) and by suspicion.

The headline names a class only when one of its clusters is suspicious (suspicion >= the
threshold of ``spray.analysis.suspicion``, the same in every class); classes are ranked across
suspicious classes first (by their top cluster's suspicion), then the others by lambda_2
(``spray.analysis.ranking``); lambda_2 is shown beside it and in the Fig. 6.5 chart.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bokeh.models import ColumnDataSource, FactorRange, HoverTool, OpenURL, TapTool
from bokeh.plotting import figure

from reports.model import ClassSummary, IndexReportData
from reports.page import Block, definition_table, write_page
from reports.palettes import categorical
from reports.safe import text
from spray.analysis.ranking import suspicion_order_key
from spray.analysis.suspicion import SUSPICION_THRESHOLD

#: Eigenvalues per class in the cross-class chart (Fig. 6.5, L2117, L2124).
N_EIGENVALUES_COMPARED = 5
#: Classes drawn in the chart (all are in the tables); more would make the bars unreadable.
MAX_CLASSES_CHARTED = 60
INDEX_FILENAME = "index.html"


def rank_by_lambda_2(classes: Sequence[ClassSummary]) -> list[ClassSummary]:
    """Classes by lambda_2 ascending, the most clustered (most suspicious) first (L2124).

    Ties (several disconnected graphs have lambda_2 = 0) are broken by lambda_3, lambda_4, ...,
    then by name.
    """
    def key(summary: ClassSummary) -> tuple:
        return (summary.lambda_2, *map(float, summary.eigenvalues[2:N_EIGENVALUES_COMPARED]), summary.class_name)

    return sorted(classes, key=key)


def rank_by_suspicion(classes: Sequence[ClassSummary]) -> list[ClassSummary]:
    """The cross-class order (``spray.analysis.ranking``): classes with a suspicious cluster first,
    most suspicious first; then the others by lambda_2 as in Fig. 6.5; classes without a score last."""
    return sorted(classes, key=lambda c: suspicion_order_key(c.top_suspicion, c.lambda_2, c.class_name))


def is_suspicious(summary: ClassSummary) -> bool:
    """A cluster of the class clears the suspicion threshold."""
    return summary.top_suspicion is not None and summary.top_suspicion >= SUSPICION_THRESHOLD


def spectra_chart(classes: Sequence[ClassSummary]) -> figure:
    """Grouped bars of the 5 smallest eigenvalues per class, ordered by lambda_2 and coloured by
    the class's alphabetical index, as in Fig. 6.5 (L2124). Clicking a bar opens the class page."""
    alphabetical = sorted(c.class_name for c in classes)
    colour_of = dict(zip(alphabetical, categorical(len(alphabetical))))
    ranked = rank_by_lambda_2(classes)[:MAX_CLASSES_CHARTED]
    rows: dict[str, list] = {"x": [], "class_name": [], "i": [], "value": [], "colour": [], "href": []}
    for summary in ranked:
        for i, value in enumerate(summary.eigenvalues[:N_EIGENVALUES_COMPARED], start=1):
            rows["x"].append((summary.class_name, str(i)))
            rows["class_name"].append(summary.class_name)
            rows["i"].append(i)
            rows["value"].append(float(value))
            rows["colour"].append(colour_of[summary.class_name])
            rows["href"].append(summary.page_href)
    source = ColumnDataSource(rows, name="spectra")
    plot = figure(
        x_range=FactorRange(*rows["x"], group_padding=0.8),
        title=f"{N_EIGENVALUES_COMPARED} smallest eigenvalues of L_sym per class, by \u03bb2",
        width=min(1230, max(560, 34 * len(ranked) + 120)),
        height=360,
        tools="tap,save,reset",
        toolbar_location="right",
        name="spectra_chart",
    )
    bars = plot.vbar(x="x", top="value", width=0.85, color="colour", source=source)
    plot.add_tools(HoverTool(renderers=[bars], tooltips=[("class", "@class_name"), ("\u03bb", "@i"), ("value", "@value{0.0000}")]))
    plot.select_one(TapTool).callback = OpenURL(url="@href", same_tab=True)
    plot.y_range.start = 0
    plot.xaxis.major_label_text_font_size = "0pt"
    plot.xaxis.group_label_orientation = 0.9 if len(ranked) > 8 else "horizontal"
    plot.xgrid.grid_line_color = None
    return plot


def _class_link(summary: ClassSummary) -> str:
    return f'<a href="{text(summary.page_href)}">{text(summary.class_name)}</a>'


def _ranking_table(classes: Sequence[ClassSummary]) -> str:
    header = ("<tr><th>#</th><th>class</th><th>top suspicion</th><th>suspicious</th><th>\u03bb2</th>"
              "<th>largest gap</th><th>clusters</th><th>samples</th></tr>")
    body = "".join(
        f"<tr><td>{rank}</td><td>{_class_link(c)}</td>"
        f"<td>{'' if c.top_suspicion is None else f'{c.top_suspicion:.2f}'}</td>"
        f"<td>{'yes' if is_suspicious(c) else ''}</td><td>{c.lambda_2:.4f}</td><td>{c.largest_gap:.4f}</td>"
        f"<td>{c.n_clusters}</td><td>{c.n_samples}</td></tr>"
        for rank, c in enumerate(classes, start=1)
    )
    return f'<table class="plain">{header}{body}</table>'


def headline(classes: Sequence[ClassSummary]) -> list[str]:
    """The index's summary lines (plain text): a class is named only when it holds a suspicious cluster."""
    lines = [f"{len(classes)} class{'es' if len(classes) != 1 else ''} analysed."]
    flagged = [c for c in rank_by_suspicion(classes) if is_suspicious(c)]
    if not flagged:
        scored = [c.top_suspicion for c in classes if c.top_suspicion is not None]
        highest = f" (highest suspicion {max(scored):.2f}; {SUSPICION_THRESHOLD:g} is the threshold)" if scored else ""
        lines.append(f"No suspicious cluster in any class{highest}.")
        return lines
    first = flagged[0]
    lines.append(f"Most suspicious: {first.class_name} (suspicion {first.top_suspicion:.2f}; "
                 f"{SUSPICION_THRESHOLD:g} is the threshold).")
    if len(flagged) > 1:
        others = ", ".join(f"{c.class_name} ({c.top_suspicion:.2f})" for c in flagged[1:])
        lines.append(f"Also suspicious: {others}.")
    return lines


def _header(data: IndexReportData) -> str:
    summary = "".join(f"<p>{text(line)}</p>" for line in headline(data.classes))
    links = " &middot; ".join(f'<a href="{text(href)}">{text(label)}</a>' for label, href in data.links.items())
    return f'<h1>spray report</h1><div class="summary">{summary}</div>' + (f"<p>{links}</p>" if links else "")


def render_index_page(data: IndexReportData, out_dir: str | Path) -> Path:
    """Write the index page (``index.html``) into ``out_dir``; return its path."""
    charted = min(len(data.classes), MAX_CLASSES_CHARTED)
    chart_note = "" if charted == len(data.classes) else f" The chart shows the first {charted}; the tables list all."
    blocks = [
        Block(html=_header(data)),
        Block(html="<h2>Classes ranked by \u03bb2</h2><p class=\"note\">A small \u03bb2 means the class's relevance "
              "maps fall into well-separated groups: the first classes deserve a look first (thesis L2117-L2124). "
              "Bar colours follow the alphabetical order of the class names; click a bar to open its class."
              + text(chart_note) + "</p>"),
        Block(root="spectra_chart"),
        Block(html=_ranking_table(rank_by_lambda_2(data.classes))),
        Block(html="<h2>Classes ranked by suspicion</h2><p class=\"note\">Each class by the suspicion of its most "
              "suspicious cluster: the weaker of how well the cluster stands apart in the graph and how much of its "
              "relevance lies where the rest of the class does not look, both measured against chance in that "
              f"class, so the scores compare across classes. {SUSPICION_THRESHOLD:g} or more is suspicious; "
              "classes without a suspicious cluster follow in the \u03bb2 order.</p>"
              + _ranking_table(rank_by_suspicion(data.classes))),
        Block(html="<h2>Parameters</h2>" + definition_table(dict(data.params), "No parameters recorded.")),
        Block(html="<h2>Provenance</h2>" + definition_table(dict(data.provenance), "No provenance recorded.")),
    ]
    return write_page(Path(out_dir) / INDEX_FILENAME, "spray: all classes", [spectra_chart(data.classes)], blocks)
