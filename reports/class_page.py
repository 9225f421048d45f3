"""The class page: summary, spectrum, embeddings with hover, cluster table and cluster cards."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pandas as pd

from reports.class_plots import (
    COLUMN_TITLES,
    cluster_table,
    eigenvalue_plot,
    embedding_plot,
    embedding_plot_name,
    percent_text,
    scatter_source,
    true_positive_share,
)
from reports.cluster_page import cluster_page_filename
from reports.images import heatmap_rgb, png_data_uri, shrink, webp_data_uri
from reports.model import DESCRIPTOR_COLUMNS, ClassReportData
from reports.page import Block, definition_table, write_page
from reports.palettes import cluster_colours
from reports.safe import class_page_filename, text
from reports.summary import class_summary, column_explanations

#: Medoid samples shown per cluster, and the size of their pictures in CSS pixels.
MEDOIDS_SHOWN, MEDOID_PX, PROTOTYPE_PX = 5, 64, 128
_COLOUR_KEY = (
    '<p class="note">Relevance maps: <span class="legend-bar"></span> blue negative, white 0, red positive; '
    "each map scaled by its own max|R| (thesis L936-L942).</p>"
)


def _header(data: ClassReportData) -> str:
    warnings = "".join(f'<p class="warning">{text(note)}</p>' for note in data.notes)
    summary = warnings + "".join(f"<p>{text(sentence)}</p>" for sentence in class_summary(data))
    links = " &middot; ".join(f'<a href="{text(href)}">{text(label)}</a>' for label, href in data.links.items())
    return (
        f"<h1>Class {text(data.class_name)}</h1>"
        f'<p class="subtitle">model {text(data.model_name)} &middot; data {text(data.dataset_name)} '
        f"&middot; {len(data.sample_ids)} samples</p>"
        f'<div class="summary">{summary}</div>' + (f"<p>{links}</p>" if links else "")
    )


def _descriptor_line(cluster: pd.Series) -> str:
    parts = []
    for name in DESCRIPTOR_COLUMNS:
        if name in cluster.index and pd.notna(cluster[name]):
            value = percent_text(cluster[name]) if name.endswith("_share") else f"{cluster[name]:.2f}"
            label = name.replace("_share", "").replace("_", "/") + (" share" if name.endswith("_share") else "")
            parts.append(f"{label} {value}")
    return " &middot; ".join(parts)


def breakable(label: str) -> str:
    """``label`` escaped, with line-break opportunities after "_", "-", ".", "/" and ":" only, so a
    sample id such as ``test_aeroplane_0010`` wraps between its words, not inside one."""
    return "<wbr>".join(text(part) for part in re.split(r"(?<=[_\-./:])", str(label)))


def _medoid_figure(data: ClassReportData, index: int) -> str:
    size = f'width="{MEDOID_PX}" height="{MEDOID_PX}"'
    heatmap = png_data_uri(heatmap_rgb(data.relevance_thumbnails[index]))
    image = ""
    if data.image_thumbnails is not None:
        image = f'<img src="{webp_data_uri(shrink(data.image_thumbnails[index], MEDOID_PX))}" {size} alt="image">'
    sample_id = text(data.sample_ids[index])
    return (
        f'<figure title="{sample_id}">{image}<img class="pixelated" src="{heatmap}" {size} alt="relevance">'
        f"<figcaption>{breakable(data.sample_ids[index])}</figcaption></figure>"
    )


def _cluster_card(data: ClassReportData, cluster: pd.Series, colour: str) -> str:
    size = int(cluster["size"])
    details = f"{percent_text(size / len(data.sample_ids))} of the class"
    if data.is_true_positive is not None:
        details += f", {percent_text(true_positive_share(data, int(cluster['cluster'])))} true positives"
    prototype = png_data_uri(heatmap_rgb(np.asarray(cluster["prototype"], dtype=float)))
    medoids = "".join(_medoid_figure(data, int(i)) for i in list(cluster["medoids"])[:MEDOIDS_SHOWN])
    tested = cluster_page_filename(data.class_name, int(cluster["cluster"]))  # linked when its page was written
    link = f' &middot; <a href="{text(tested)}">shortcut test</a>' if tested in data.links.values() else ""
    return (
        '<div class="card">'
        f'<h3><span class="swatch" style="background:{colour}"></span>Cluster {int(cluster["cluster"])}: '
        f"{size} image{'s' if size != 1 else ''} ({details}){_tag_badge(cluster)}</h3>"
        f'<p class="note">{_descriptor_line(cluster)}{link}</p>'
        '<div class="strip">'
        f'<figure class="prototype"><img class="pixelated" src="{prototype}" width="{PROTOTYPE_PX}" '
        f'height="{PROTOTYPE_PX}" alt="prototype"><figcaption>prototype (mean map)</figcaption></figure>'
        f"{medoids}</div>{_concepts(data, cluster)}{_tag_command(data, cluster)}</div>"
    )


def _column_notes(data: ClassReportData) -> str:
    """One plain sentence per column of the cluster table (``reports.summary.COLUMN_EXPLANATIONS``)."""
    titles = {"share": "of class", **COLUMN_TITLES}
    shown = ["cluster", "size", "share", *(c for c in DESCRIPTOR_COLUMNS if c in data.clusters.columns)]
    items = "".join(
        f"<dt>{text(titles.get(column, column))}</dt><dd>{text(sentence)}</dd>"
        for column, sentence in column_explanations(shown).items()
    )
    return f'<details class="note"><summary>What the columns mean</summary><dl class="columns">{items}</dl></details>'


def _concepts(data: ClassReportData, cluster: pd.Series) -> str:
    """A latent cluster's top channels: where each sits in the medoids (conditional relevance, CRP)
    and the class images that activate it most."""
    views = data.latent_views
    if not views:
        return ""
    k = list(data.clusters["cluster"]).index(int(cluster["cluster"]))
    size = f'width="{MEDOID_PX}" height="{MEDOID_PX}"'
    rows = []
    for t, channel in enumerate(views["channels"][k]):
        maps = "".join(
            f'<figure title="{text(data.sample_ids[int(i)])}"><img class="pixelated" {size} alt="conditional relevance" '
            f'src="{png_data_uri(heatmap_rgb(views["maps"][k, t, m]))}"><figcaption>medoid {m + 1}</figcaption></figure>'
            for m, i in enumerate(views["medoids"][k])
            if i >= 0
        )
        images = (
            ""
            if data.image_thumbnails is None
            else "".join(
                f'<figure title="{text(data.sample_ids[int(i)])}"><img {size} alt="image" '
                f'src="{webp_data_uri(shrink(data.image_thumbnails[int(i)], MEDOID_PX))}"><figcaption>top {r + 1}</figcaption>'
                f"</figure>"
                for r, i in enumerate(views["top_images"][k, t])
            )
        )
        share = f"{100 * float(views['shares'][k, t]):+.0f} points"
        rows.append(
            f'<p class="note">channel {int(channel)} of {text(data.layer or "the layer")}: {share} of the '
            f"cluster's relevance over the class's; where it sits in the medoids, and the images that "
            f'activate it most</p><div class="strip">{maps}{images}</div>'
        )
    return '<div class="concepts"><h4>Top channels (concepts)</h4>' + "".join(rows) + "</div>"


def _tag_badge(cluster: pd.Series) -> str:
    """The person's tag of this cluster (``spray tag``), if any."""
    kind = cluster.get("tag") or ""
    if not kind:
        return ""
    note = cluster.get("tag_note") or ""
    return f' <span class="tag tag-{text(kind)}" title="{text(note)}">tagged {text(kind)}</span>'


def _tag_command(data: ClassReportData, cluster: pd.Series) -> str:
    """The command that tags this cluster (an offline page cannot write to the store)."""
    command = (
        f"spray tag --class {shlex.quote(data.class_name)} --cluster {int(cluster['cluster'])} "
        "--as shortcut|legitimate|unsure --note '...'"
    )
    return f'<p class="note tag-command">Tag it: <code>{text(command)}</code></p>'


def _cluster_cards(data: ClassReportData, colours: dict[int, str]) -> str:
    table = data.clusters
    if "suspicion" in table.columns:
        table = table.sort_values("suspicion", ascending=False, kind="stable")
    cards = "".join(_cluster_card(data, row, colours[int(row["cluster"])]) for _, row in table.iterrows())
    order = "most suspicious first" if "suspicion" in data.clusters.columns else "by label"
    return (
        f'<h2>Clusters ({order})</h2>{_COLOUR_KEY}<p class="note">Each card shows the cluster\'s prototype and '
        f'its medoid samples (image and relevance map).</p><div class="cards">{cards}</div>'
    )


def render_class_page(data: ClassReportData, out_dir: str | Path) -> Path:
    """Write ``data``'s class page into ``out_dir`` as one standalone HTML file; return its path.

    The file name comes from ``class_page_filename`` (safe for any class name).
    """
    colours = cluster_colours(list(data.clusters["cluster"]) + list(np.unique(data.labels)))
    samples = scatter_source(data, colours)
    roots = [eigenvalue_plot(data), cluster_table(data, samples)]
    blocks = [
        Block(html=_header(data)),
        Block(
            html='<h2>Spectrum and clusters</h2><p class="note">Select rows of the table to highlight '
            "those clusters in the embeddings (shift/ctrl-click for several).</p>"
        ),
        Block(html='<div class="side-by-side">'),
        Block(root="spectrum"),
        Block(root="cluster_table"),
        Block(html="</div>"),  # the table goes below the spectrum when the window is too narrow for both
        Block(html=_column_notes(data)),
    ]
    if data.embeddings:
        plots = [embedding_plot(data, method, samples, colours) for method in data.embeddings]
        roots += plots
        blocks += [
            Block(
                html='<h2>Embeddings</h2><p class="note">Hover a point for its image, relevance map, id '
                "and score"
                + (
                    " and whether it is a true positive (circles: true positives; triangles: the rest)."
                    if data.is_true_positive is not None
                    else ". The model's predictions were not stored, so true positives are not marked."
                )
                + "</p>"
            ),
            Block(html='<div class="side-by-side">'),
            *(Block(root=embedding_plot_name(method)) for method in data.embeddings),
            Block(html="</div>"),
        ]
    blocks += [
        Block(html=_cluster_cards(data, colours)),
        Block(
            html='<h2>Stability</h2><p class="note">Agreement (adjusted Rand index) of the cluster labels with '
            "those found at other parameters; 1 means identical.</p>"
            + definition_table(
                {name: f"{ari:.2f}" for name, ari in data.stability.items()}, "No stability analysis was run."
            )
        ),
        Block(html="<h2>Parameters</h2>" + definition_table(dict(data.params), "No parameters recorded.")),
        Block(html="<h2>Provenance</h2>" + definition_table(dict(data.provenance), "No provenance recorded.")),
    ]
    path = Path(out_dir) / class_page_filename(data.class_name)
    return write_page(path, f"spray: class {data.class_name}", roots, blocks)
