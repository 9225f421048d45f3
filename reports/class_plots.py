"""The interactive parts of a class page: eigenvalue bars, embedding scatters with hover, cluster table.

Hover data is kept small (ARCHITECTURE.md, measured facts): each sample's relevance map
travels once, as uint8 codes in one flat array, and is drawn into a PNG by the browser only
when the point is hovered (then cached); image thumbnails are ~48 px WebP data URIs.
"""

from __future__ import annotations

import math

import numpy as np
from bokeh.models import ColumnDataSource, CustomJS, CustomJSHover, DataRange1d, HoverTool
from bokeh.models.annotations import Legend, LegendItem
from bokeh.models.widgets import DataTable, NumberFormatter, TableColumn
from bokeh.plotting import figure

from reports.images import diverging_lut, quantise_maps, shrink, webp_data_uri
from reports.model import DESCRIPTOR_COLUMNS, NOISE_LABEL, ClassReportData

#: First eigenvalues shown per class (Fig. 6.3, L2096).
N_EIGENVALUES_SHOWN = 20
#: Longest side of the hover image thumbnails, in pixels (~1-2 KB each as WebP).
THUMBNAIL_PX = 48
#: Displayed size of hover pictures, in CSS pixels.
HOVER_PX = 72
EMBEDDING_TITLES = {"tsne": "t-SNE", "umap": "UMAP"}
COLUMN_TITLES = {"border_share": "border", "top_bottom_share": "top+bottom"}
ACCENT, MUTED = "#3b6fb6", "#b8c2cc"

# Draws sample ``value``'s relevance map from the flat uint8 codes with the colour table,
# once per sample (cached on the array), and returns a PNG data URI for the tooltip's <img>.
_DRAW_MAP_JS = """
const cache = maps._sprayCache || (maps._sprayCache = new Map());
let uri = cache.get(value);
if (uri === undefined) {
  const n = height * width;
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  const picture = context.createImageData(width, height);
  for (let p = 0; p < n; p++) {
    const code = maps[value * n + p];
    picture.data[4 * p] = lut[3 * code];
    picture.data[4 * p + 1] = lut[3 * code + 1];
    picture.data[4 * p + 2] = lut[3 * code + 2];
    picture.data[4 * p + 3] = 255;
  }
  context.putImageData(picture, 0, 0);
  uri = canvas.toDataURL("image/png");
  cache.set(value, uri);
}
return uri;
"""

# Selecting rows of the cluster table selects (highlights) every point of those clusters.
_SELECT_CLUSTERS_JS = """
const chosen = new Set(table.selected.indices.map((i) => table.data.cluster[i]));
const labels = points.data.cluster;
const picked = [];
for (let i = 0; i < labels.length; i++) {
  if (chosen.has(labels[i])) picked.push(i);
}
points.selected.indices = picked;
"""


def percent(fraction: float) -> int:
    """``fraction`` in whole percent, halves rounded up: the one rounding rule of the class page, so the
    table and the cards show the same number (97 of 200 is 49% in both, not 49% and 48%)."""
    return math.floor(100 * fraction + 0.5 + 1e-9)  # 1e-9: 0.485 is stored as 0.48499999...


def percent_text(fraction: float) -> str:
    """``fraction`` as "49%" by :func:`percent`; "n/a" when unknown (NaN)."""
    return f"{percent(fraction)}%" if np.isfinite(fraction) else "n/a"


def eigenvalue_plot(data: ClassReportData) -> figure:
    """Bars of the first 20 eigenvalues of L_sym, the chosen count's eigengap marked (Fig. 6.3).

    The eigengap's caption is a legend entry in the empty top left corner (eigenvalues ascend), so
    it stays inside the plot wherever the gap lies; a text label beside the gap ran off the right
    edge for gaps after about lambda_8.
    """
    values = np.asarray(data.eigenvalues, dtype=float)[:N_EIGENVALUES_SHOWN]
    k = data.n_clusters
    index = np.arange(1, len(values) + 1)
    gaps = data.gaps
    source = ColumnDataSource(
        {
            "i": index,
            "value": values,
            "gap": np.append(gaps[: len(values) - 1], np.nan)[: len(values)],
            "colour": [ACCENT if i <= k else MUTED for i in index],
        }
    )
    y_range = DataRange1d()  # figure's default, kept to set its bounds below
    plot = figure(
        y_range=y_range,
        title="Smallest eigenvalues of L_sym",
        width=520,
        height=320,
        x_axis_label="i",
        y_axis_label="\u03bb_i",
        tools="save,reset",
        toolbar_location="right",
        name="spectrum",
    )
    bars = plot.vbar(x="i", top="value", width=0.8, color="colour", source=source)
    plot.add_tools(
        HoverTool(
            renderers=[bars], tooltips=[("\u03bb", "@i"), ("value", "@value{0.0000}"), ("gap to next", "@gap{0.0000}")]
        )
    )
    plot.xaxis.ticker = list(index)
    top = float(values.max()) if values.max() > 0 else 1.0
    y_range.start, y_range.end = 0, 1.3 * top  # headroom for the caption above the bars
    if k < len(values):
        line = plot.segment(
            x0=k + 0.5, y0=0, x1=k + 0.5, y1=1.3 * top, line_color="crimson", line_dash="dashed", line_width=2
        )
        plot.segment(x0=k + 0.5, y0=values[k - 1], x1=k + 0.5, y1=values[k], line_color="crimson", line_width=4)
        caption = f"eigengap after \u03bb{k}: {gaps[k - 1]:.3g} \u2192 {k} cluster{'s' if k > 1 else ''}"
        # bokeh's stubs type renderers as list[GlyphRenderer[Glyph]], invariant in the glyph
        plot.add_layout(
            Legend(
                items=[LegendItem(label=caption, renderers=[line])],  # type: ignore[list-item]
                location="top_left",
                label_text_color="crimson",
                label_text_font_size="10pt",
                background_fill_alpha=0.8,
                border_line_alpha=0,
                name="eigengap_caption",
            )
        )
    return plot


def scatter_source(data: ClassReportData, colours: dict[int, str]) -> ColumnDataSource:
    """One row per sample: coordinates of every embedding, hover fields, cluster and colour."""
    labels = np.asarray(data.labels).astype(int)
    tp = None if data.is_true_positive is None else np.asarray(data.is_true_positive, dtype=bool)
    columns: dict[str, object] = {
        "row": np.arange(len(labels)),
        "sample_id": [str(s) for s in data.sample_ids],
        "score": np.asarray(data.scores, dtype=float),
        "marker": np.full(len(labels), "circle") if tp is None else np.where(tp, "circle", "triangle"),
        "cluster": labels,
        "colour": [colours[c] for c in labels],
    }
    if tp is not None:
        columns["tp"] = np.where(tp, "yes", "no")
    for method, coords in data.embeddings.items():
        coords = np.asarray(coords, dtype=float)
        columns[f"x_{method}"], columns[f"y_{method}"] = coords[:, 0], coords[:, 1]
    if data.image_thumbnails is not None:
        columns["image"] = [webp_data_uri(shrink(image, THUMBNAIL_PX)) for image in data.image_thumbnails]
    return ColumnDataSource(columns, name="samples")


def _hover(data: ClassReportData) -> HoverTool:
    maps = quantise_maps(data.relevance_thumbnails)
    _, height, width = maps.shape
    draw_map = CustomJSHover(
        args={"maps": maps.ravel(), "lut": diverging_lut().ravel(), "height": height, "width": width},
        code=_DRAW_MAP_JS,
    )
    size = f'width="{HOVER_PX}" height="{HOVER_PX}"'
    frame = "object-fit:contain;border:1px solid #ccc"
    image = f'<img src="@image" {size} style="{frame}">' if data.image_thumbnails is not None else ""
    template = (
        f'<div style="display:flex;gap:4px">{image}'
        f'<img src="@row{{map}}" {size} style="{frame};image-rendering:pixelated"></div>'
        '<div style="max-width:160px;word-break:break-all"><b>@sample_id</b></div>'
        "<div>cluster @cluster &middot; score @score{0.000}</div>"
        + ("<div>true positive: @tp</div>" if data.is_true_positive is not None else "")
    )
    return HoverTool(tooltips=template, formatters={"@row": draw_map})


def embedding_plot_name(method: str) -> str:
    """The Bokeh root name of the ``method`` embedding's plot (the page embeds it by this name)."""
    return f"embedding-{method}"


def embedding_plot(data: ClassReportData, method: str, source: ColumnDataSource, colours: dict[int, str]) -> figure:
    """A 2-D embedding coloured by cluster; hovering shows image, relevance map, id, score, TP."""
    plot = figure(
        title=f"{EMBEDDING_TITLES.get(method, method)} embedding, coloured by cluster",
        name=embedding_plot_name(method),
        width=560,
        height=480,
        tools="pan,wheel_zoom,box_zoom,box_select,tap,reset,save",
        active_scroll="wheel_zoom",
        toolbar_location="right",
    )
    points = plot.scatter(
        x=f"x_{method}",
        y=f"y_{method}",
        source=source,
        marker="marker",
        size=7,
        fill_color="colour",
        line_color="colour",
        fill_alpha=0.75,
        nonselection_fill_alpha=0.08,
        nonselection_line_alpha=0.15,
        selection_fill_alpha=0.95,
    )
    hover = _hover(data)
    hover.renderers = [points]
    plot.add_tools(hover)
    # each legend entry copies the glyph of one member: prefer a true positive (a circle)
    labels, circles = np.asarray(source.data["cluster"]), np.asarray(source.data["marker"]) == "circle"
    items = [
        LegendItem(
            label="noise" if c == NOISE_LABEL else f"cluster {c}",
            renderers=[points],  # type: ignore[list-item]  # bokeh's stubs: invariant GlyphRenderer[Glyph]
            index=int(np.lexsort((~circles, labels != c))[0]),
        )
        for c in sorted(colours)
        if (labels == c).any()
    ]
    plot.add_layout(Legend(items=items, title="cluster", label_text_font_size="9pt"), "right")
    plot.xaxis.visible = plot.yaxis.visible = False
    plot.grid.visible = False
    return plot


def true_positive_share(data: ClassReportData, cluster: int) -> float:
    """Share of true positives among a cluster's samples (NaN for an empty cluster)."""
    members = np.asarray(data.labels) == cluster
    return float(np.asarray(data.is_true_positive, dtype=bool)[members].mean()) if members.any() else float("nan")


def _table_column(field: str, title: str, number: str | None) -> TableColumn:
    """A column of the cluster table; ``number``: the NumberFormatter format (None keeps the default formatter)."""
    if number:
        return TableColumn(
            field=field, title=title, width=_column_width(title), formatter=NumberFormatter(format=number)
        )
    return TableColumn(field=field, title=title, width=_column_width(title))


def _column_width(title: str) -> int:
    """Pixels a table column needs to show its title whole (~7 px per character at the table's font)."""
    return max(48, 7 * len(title) + 22)


def cluster_table(data: ClassReportData, points: ColumnDataSource) -> DataTable:
    """The cluster descriptors as a table; selecting rows highlights those clusters' points.

    Every column is as wide as its title (the table scales nothing: ``force_fit`` squeezed the first
    header to "cluste"), and shares are rounded by :func:`percent` as on the cluster cards.
    """
    table = data.clusters
    n = len(data.sample_ids)

    def shares(values: np.ndarray) -> np.ndarray:
        return np.array([percent(v) / 100 if np.isfinite(v) else np.nan for v in values])

    columns = {
        "cluster": table["cluster"].astype(int).to_numpy(),
        "size": table["size"].astype(int).to_numpy(),
        "share": shares(table["size"].to_numpy(dtype=float) / n),
    }
    shown = [("cluster", "cluster", None), ("size", "size", None), ("share", "of class", "0%")]
    if data.is_true_positive is not None:
        columns["tp_share"] = shares(np.array([true_positive_share(data, c) for c in table["cluster"]]))
        shown.append(("tp_share", "true positives", "0%"))
    for name in DESCRIPTOR_COLUMNS:
        if name in table.columns:
            values = table[name].to_numpy(dtype=float)
            columns[name] = shares(values) if name.endswith("_share") else values
            shown.append((name, COLUMN_TITLES.get(name, name), "0%" if name.endswith("_share") else "0.00"))
    table_columns = [_table_column(field, title, number) for field, title, number in shown]
    source = ColumnDataSource(columns, name="clusters")
    source.selected.js_on_change(
        "indices", CustomJS(args={"table": source, "points": points}, code=_SELECT_CLUSTERS_JS)
    )
    return DataTable(
        source=source,
        columns=table_columns,
        autosize_mode="none",
        width=sum(column.width for column in table_columns) + 4,
        height=min(320, 30 * (len(table) + 1) + 8),
        index_position=None,
        selectable=True,
        sortable=True,
        reorderable=False,
        name="cluster_table",
    )
