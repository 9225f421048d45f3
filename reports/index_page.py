"""The index page: every analysed class in one sortable, filterable table, and the Fig. 6.5 chart.

The headline names a class only when one of its clusters is suspicious (suspicion >= the
threshold of ``spray.analysis.suspicion``, the same in every class); classes are ranked across
suspicious classes first (by their top cluster's suspicion), then the others by lambda_2
(``spray.analysis.ranking``); lambda_2 is shown beside it and in the Fig. 6.5 chart.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bokeh.models import CategoricalAxis, ColumnDataSource, DataRange1d, FactorRange, HoverTool, OpenURL, TapTool
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
    colour_of = dict(zip(alphabetical, categorical(len(alphabetical)), strict=True))
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
        x_range=FactorRange(factors=rows["x"], group_padding=0.8),
        y_range=DataRange1d(start=0),
        title=f"{N_EIGENVALUES_COMPARED} smallest eigenvalues of L_sym per class, by \u03bb2",
        width=min(1230, max(560, 34 * len(ranked) + 120)),
        height=360,
        tools="tap,save,reset",
        toolbar_location="right",
        name="spectra_chart",
    )
    bars = plot.vbar(x="x", top="value", width=0.85, color="colour", source=source)
    plot.add_tools(
        HoverTool(renderers=[bars], tooltips=[("class", "@class_name"), ("\u03bb", "@i"), ("value", "@value{0.0000}")])
    )
    tap = plot.select_one({"type": TapTool})
    if isinstance(tap, TapTool):  # the "tap" tool asked for above
        tap.callback = OpenURL(url="@href", same_tab=True)
    plot.xaxis.major_label_text_font_size = "0pt"
    for axis in plot.xaxis:  # categorical: the x range is a FactorRange
        if isinstance(axis, CategoricalAxis):
            axis.group_label_orientation = 0.9 if len(ranked) > 8 else "horizontal"
    plot.xgrid.grid_line_color = None
    return plot


def _class_link(summary: ClassSummary) -> str:
    return f'<a href="{text(summary.page_href)}">{text(summary.class_name)}</a>'


def _cell(value: float | int | str | None, shown: str) -> str:
    """A table cell that sorts by ``value`` (numbers as numbers; empty last)."""
    sort = "" if value is None or value != value else value
    return f'<td data-sort="{text(sort)}">{shown}</td>'


def _ranking_table(classes: Sequence[ClassSummary]) -> str:
    """Every class in the cross-class order, one row each, sortable by any column and filterable by
    name (a few lines of script: usable with a thousand classes)."""
    titles = [
        "#",
        "class",
        "top suspicion",
        "suspicious",
        "\u03bb2",
        "largest gap",
        "clusters",
        "samples",
        "tags",
        "tests",
    ]
    header = "".join(f'<th data-column="{i}" title="sort by {text(t)}">{t}</th>' for i, t in enumerate(titles))
    rows = []
    for rank, c in enumerate(classes, start=1):
        links = " ".join(f'<a href="{text(href)}">{text(label)}</a>' for label, href in c.links.items())
        rows.append(
            f'<tr data-name="{text(c.class_name.lower())}">{_cell(rank, str(rank))}{_cell(c.class_name, _class_link(c))}'
            + _cell(c.top_suspicion, "" if c.top_suspicion is None else f"{c.top_suspicion:.2f}")
            + _cell(int(is_suspicious(c)), "yes" if is_suspicious(c) else "")
            + _cell(c.lambda_2, f"{c.lambda_2:.4f}")
            + _cell(c.largest_gap, f"{c.largest_gap:.4f}")
            + _cell(c.n_clusters, str(c.n_clusters))
            + _cell(c.n_samples, str(c.n_samples))
            + _cell(" ".join(c.tags), text(", ".join(c.tags)))
            + _cell(len(c.links), links)
            + "</tr>"
        )
    return (
        '<p><input type="search" id="class-filter" placeholder="filter classes by name" '
        f'aria-label="filter classes by name"> <span class="note" id="class-count">{len(classes)} classes</span></p>'
        f'<table class="plain sortable" id="ranking"><thead><tr>{header}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>{_TABLE_SCRIPT}"
    )


_TABLE_SCRIPT = """<script>
(() => {
  const table = document.getElementById("ranking"), filter = document.getElementById("class-filter");
  const count = document.getElementById("class-count"), body = table.tBodies[0];
  const rows = Array.from(body.rows);
  filter.addEventListener("input", () => {
    const wanted = filter.value.trim().toLowerCase();
    let shown = 0;
    for (const row of rows) {
      const keep = !wanted || row.dataset.name.includes(wanted);
      row.hidden = !keep;
      shown += keep;
    }
    count.textContent = `${shown} of ${rows.length} classes`;
  });
  let sorted = {column: 0, ascending: true};
  for (const th of table.tHead.rows[0].cells) {
    th.addEventListener("click", () => {
      const column = Number(th.dataset.column);
      const ascending = sorted.column === column ? !sorted.ascending : true;
      const value = (row) => row.cells[column].dataset.sort;
      const numeric = rows.every((row) => value(row) === "" || !isNaN(Number(value(row))));
      const order = (a, b) => {
        const x = value(a), y = value(b);
        if (x === "" || y === "") return (x === "") - (y === "");
        const compared = numeric ? Number(x) - Number(y) : x.localeCompare(y);
        return ascending ? compared : -compared;
      };
      body.append(...rows.slice().sort(order));
      sorted = {column, ascending};
    });
  }
})();
</script>"""


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
    lines.append(
        f"Most suspicious: {first.class_name} (suspicion {first.top_suspicion:.2f}; "
        f"{SUSPICION_THRESHOLD:g} is the threshold)."
    )
    if len(flagged) > 1:
        others = ", ".join(f"{c.class_name} ({c.top_suspicion:.2f})" for c in flagged[1:])
        lines.append(f"Also suspicious: {others}.")
    return lines


def _header(data: IndexReportData) -> str:
    lines = headline(data.classes)
    if data.skipped:
        lines.append(f"Skipped (fewer than 3 usable relevance maps): {', '.join(sorted(data.skipped))}.")
    summary = "".join(f"<p>{text(line)}</p>" for line in lines)
    links = " &middot; ".join(f'<a href="{text(href)}">{text(label)}</a>' for label, href in data.links.items())
    return f'<h1>spray report</h1><div class="summary">{summary}</div>' + (f"<p>{links}</p>" if links else "")


def render_index_page(data: IndexReportData, out_dir: str | Path) -> Path:
    """Write the index page (``index.html``) into ``out_dir``; return its path."""
    charted = min(len(data.classes), MAX_CLASSES_CHARTED)
    chart_note = (
        "" if charted == len(data.classes) else f" The chart shows the first {charted} by \u03bb2; the table lists all."
    )
    blocks = [
        Block(html=_header(data)),
        Block(
            html='<h2>Classes</h2><p class="note">In the cross-class order: classes with a suspicious cluster '
            "first, by the suspicion of their most suspicious cluster (the weaker of how well it stands apart in "
            "the graph and how much of its relevance lies where the rest of its class does not look, both against "
            f"chance in that class, so the scores compare across classes; {SUSPICION_THRESHOLD:g} or more is "
            "suspicious), then the others by \u03bb2 (Fig. 6.5). Click a column title to sort by it; type to "
            "filter.</p>" + _ranking_table(rank_by_suspicion(data.classes))
        ),
        Block(
            html='<h2>Spectra by \u03bb2</h2><p class="note">A small \u03bb2 means the class\'s relevance '
            "maps fall into well-separated groups (thesis L2117-L2124). Bar colours follow the alphabetical "
            "order of the class names; click a bar to open its class." + text(chart_note) + "</p>"
        ),
        Block(root="spectra_chart"),
        Block(html="<h2>Parameters</h2>" + definition_table(dict(data.params), "No parameters recorded.")),
        Block(html="<h2>Provenance</h2>" + definition_table(dict(data.provenance), "No provenance recorded.")),
    ]
    if data.skipped:
        blocks.insert(-2, Block(html="<h2>Skipped classes</h2>" + definition_table(dict(data.skipped), "")))
    return write_page(Path(out_dir) / INDEX_FILENAME, "spray: all classes", [spectra_chart(data.classes)], blocks)
