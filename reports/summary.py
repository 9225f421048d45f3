"""The plain-language summary at the top of a class page, written from the descriptors alone,
and one plain sentence per column of the cluster table (``COLUMN_EXPLANATIONS``).

Nothing here knows the demo: the sentences are built from the cluster count, the eigengap,
the cluster descriptors (size, border share, separation, distinctness, suspicion) and the
stability scores, so any model and data set get the same kind of summary. A cluster is named
as suspicious only when it clears the suspicion threshold (``spray.analysis.suspicion``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reports.model import ClassReportData
from spray.analysis.suspicion import DISTINCTNESS_THRESHOLD, SEPARATION_THRESHOLD, SUSPICION_THRESHOLD

#: The largest-gap rule looks at the first 10 eigenvalues (SPEC 1.5).
AUTO_GAP_WINDOW = 10
#: Share of the border's positive relevance that the named sides must hold together.
SIDES_SHARE = 0.75
#: Border share from which the summary names the sides holding it; below, it says "image border".
NOTABLE_BORDER_SHARE = 0.3
#: Mean ARI at or above which clusters count as stable, and below which they are a warning.
STABLE_ARI, UNSTABLE_ARI = 0.8, 0.5


def border_sides(prototype: np.ndarray) -> str:
    """Which borders hold a map's positive relevance: "top and bottom", "left", ... or "" (all round).

    The border is a band of max(1, G // 10) pixels (2 at the default G = 20); corners count to
    the top and bottom rows. The fewest sides that hold ``SIDES_SHARE`` of the band's positive
    relevance are named; three or four sides, or no positive relevance, give "".
    """
    positive = np.clip(np.asarray(prototype, dtype=float), 0, None)
    band = max(1, positive.shape[0] // 10)
    middle = positive[band:-band]
    sides = {
        "top": positive[:band].sum(),
        "bottom": positive[-band:].sum(),
        "left": middle[:, :band].sum(),
        "right": middle[:, -band:].sum(),
    }
    total = sum(sides.values())
    if total <= 0:
        return ""
    chosen: list[str] = []
    for side in sorted(sides, key=lambda name: sides[name], reverse=True):
        chosen.append(side)
        if sum(sides[s] for s in chosen) >= SIDES_SHARE * total:
            break
    if len(chosen) > 2:
        return ""
    order = ["top", "bottom", "left", "right"]
    return " and ".join(sorted(chosen, key=order.index))


REGION_NAMES = (
    ("top-left ninth", "top-middle ninth", "top-right ninth"),
    ("middle-left ninth", "central ninth", "middle-right ninth"),
    ("bottom-left ninth", "bottom-middle ninth", "bottom-right ninth"),
)
"""Names of the cells of a 3 x 3 partition of the image. Said as "ninths" so that they are not
mistaken for the border rows and columns that ``border_share`` and ``top_bottom_share`` count."""


def region_shares(prototype: np.ndarray) -> np.ndarray:
    """(3, 3) shares of a map's positive relevance in the thirds of its rows and columns."""
    positive = np.clip(np.asarray(prototype, dtype=float), 0, None)
    rows = np.linspace(0, positive.shape[0], 4).round().astype(int)
    cols = np.linspace(0, positive.shape[1], 4).round().astype(int)
    sums = np.array(
        [[positive[rows[i] : rows[i + 1], cols[j] : cols[j + 1]].sum() for j in range(3)] for i in range(3)]
    )
    total = sums.sum()
    return sums / total if total > 0 else sums


def hotspot(prototype: np.ndarray, reference: np.ndarray) -> tuple[str, float, float]:
    """The region (of a 3 x 3 partition) where ``prototype`` has the most positive relevance in
    excess of ``reference``: its name, the prototype's share there, and the reference's share."""
    shares, reference_shares = region_shares(prototype), region_shares(reference)
    i, j = np.unravel_index(np.argmax(shares - reference_shares), shares.shape)
    return REGION_NAMES[i][j], float(shares[i, j]), float(reference_shares[i, j])


def _percent(share: float) -> str:
    return f"{100 * share:.0f}%"


def _images(count: int) -> str:
    return f"{count} image" + ("" if count == 1 else "s")


def _where(row: pd.Series) -> str:
    sides = border_sides(row["prototype"]) if row["border_share"] >= NOTABLE_BORDER_SHARE else ""
    return f"the {sides} border" if sides else "the image border"


def _strategy_sentence(data: ClassReportData) -> str:
    k, n = data.n_clusters, len(data.sample_ids)
    head = f"{k} prediction strateg{'y' if k == 1 else 'ies'} among {_images(n)}"
    rule = data.params.get("n_clusters_rule")
    if data.params.get("n_clusters") is not None:
        return head + " (the number was set by hand)."
    if rule == "significant-gap":
        return head + _significant_gap_reason(data)
    gaps = data.gaps
    if k == 1 or k > len(gaps):
        return head + "."
    head += f" (eigengap after \u03bb{k}: {gaps[k - 1]:.3g}"
    suggested = int(np.argmax(gaps[:AUTO_GAP_WINDOW])) + 1
    if suggested != k:
        head += f"; the largest gap among the first {AUTO_GAP_WINDOW} eigenvalues would suggest {suggested}"
    return head + ")."


def _significant_gap_reason(data: ClassReportData) -> str:
    """Why the significant-gap rule chose ``data.n_clusters`` (spray.analysis.spectrum)."""
    k, values = data.n_clusters, np.asarray(data.eigenvalues, dtype=float)
    if k == 1:
        return ": no gap in the spectrum is larger than in structureless twins of the class."
    if k >= len(values):
        return "."
    if values[k - 1] <= 1e-9:
        return f": the first {k} eigenvalues are 0, so the maps fall into {k} groups with no edge between them."
    ratio = values[k] / values[k - 1]
    return (
        f": the spectrum jumps after \u03bb{k} (\u03bb{k + 1} is {ratio:.1f} times \u03bb{k}), "
        "more than in structureless twins of the class."
    )


def suspicious_rows(clusters: pd.DataFrame) -> pd.DataFrame:
    """The clusters that clear the suspicion threshold, most suspicious first."""
    if "suspicion" not in clusters.columns:
        return clusters.iloc[:0]
    flagged = (
        clusters["suspicious"] if "suspicious" in clusters.columns else clusters["suspicion"] >= SUSPICION_THRESHOLD
    )
    return clusters[flagged.astype(bool)].sort_values("suspicion", ascending=False, kind="stable")


def _evidence(row: pd.Series) -> str:
    """The two parts of a suspicious cluster's score in words, when the table has them."""
    if "separation" not in row.index or "distinctness" not in row.index:
        return f" has suspicion {row['suspicion']:.2f} (threshold {SUSPICION_THRESHOLD:g})"
    return (
        f" is a group of its own ({np.exp(row['separation']):.1f} times fewer graph edges leave it than chance "
        f"allows) and {_percent(row['distinctness'])} of its relevance lies where the rest of the class does "
        "not look"
    )


def _suspicion_sentence(data: ClassReportData) -> str:
    table = data.clusters
    if len(table) < 2 or "suspicion" not in table.columns:
        return ""
    flagged = suspicious_rows(table)
    if not len(flagged):
        return (
            f"No cluster is suspicious: none is both better separated than chance and looking where the rest "
            f"of the class does not (highest suspicion {table['suspicion'].max():.2f}; "
            f"{SUSPICION_THRESHOLD:g} is the threshold)."
        )
    suspect = flagged.iloc[0]
    main = table.loc[table["size"].idxmax()]
    more = (
        f" ({len(flagged) - 1} more suspicious cluster{'s' if len(flagged) > 2 else ''} below)"
        if len(flagged) > 1
        else ""
    )
    head = f"Suspicious: cluster {suspect['cluster']} ({_images(int(suspect['size']))}){_evidence(suspect)}{more}."
    if "border_share" not in table.columns:
        return head
    main_name = f"the main cluster {main['cluster']} ({_images(int(main['size']))})"
    if suspect["border_share"] >= NOTABLE_BORDER_SHARE or main["cluster"] == suspect["cluster"]:
        where = f" It puts {_percent(suspect['border_share'])} of its positive relevance on {_where(suspect)}"
        if main["cluster"] != suspect["cluster"]:
            where += f", where {main_name} puts {_percent(main['border_share'])}"
        return head + where + "."
    region, share, main_share = hotspot(suspect["prototype"], main["prototype"])
    return head + (
        f" It puts {_percent(share)} of its positive relevance in the {region} of the image, "
        f"where {main_name} puts {_percent(main_share)}."
    )


def _stability_sentence(data: ClassReportData) -> str:
    if not data.stability:
        return ""
    mean = float(np.mean(list(data.stability.values())))
    variants = f"mean ARI {mean:.2f} over {len(data.stability)} parameter variants"
    if mean >= STABLE_ARI:
        return f"The clusters are stable when the parameters change ({variants})."
    if mean < UNSTABLE_ARI:
        return f"Caution: the clusters change with the parameters ({variants}); they may be artefacts of the settings."
    return f"The clusters are moderately stable when the parameters change ({variants})."


def class_summary(data: ClassReportData) -> list[str]:
    """The summary as plain-text sentences (escape them before they reach HTML)."""
    sentences = [_strategy_sentence(data), _suspicion_sentence(data), _stability_sentence(data)]
    return [s for s in sentences if s]


COLUMN_EXPLANATIONS: dict[str, str] = {
    "cluster": "The cluster's number; 0 is the largest cluster, the class's main strategy.",
    "size": "How many images of the class the cluster holds.",
    "share": "The fraction of the class's images in the cluster.",
    "border_share": "The share of the cluster's positive relevance on the outermost ring of grid cells "
    "(the image border).",
    "top_bottom_share": "The share of the cluster's positive relevance on the top and bottom rows of grid cells, "
    "where padding above and below an image shows (thesis L2173).",
    "left_right_share": "The share of the cluster's positive relevance on the left and right columns of grid cells.",
    "conductance": "The fraction of the cluster's graph edges that lead to images outside it: 0 means no image of "
    "the cluster has a nearest neighbour outside it.",
    "concentration": "The share of the cluster's positive relevance in its 10% most relevant grid cells: "
    "near 1, the relevance sits in one small place.",
    "mean_relevance": "The average total relevance of the cluster's maps, which is the model's score for the class.",
    "separation": "How well the cluster stands apart in the graph compared with chance: the natural log of how many "
    "times fewer edges leave it than leave the clusters of structureless twins of the class "
    f"(Gaussian samples with the class's mean and covariance); {SEPARATION_THRESHOLD:g} or more "
    "counts as apart.",
    "distinctness": "The share of the cluster's relevance that lies where the rest of the class does not look "
    "(more than two standard deviations above the rest's share in a cell), minus what random "
    f"groups of the same size show; {DISTINCTNESS_THRESHOLD:g} or more counts as distinct.",
    "suspicion": "The weaker of separation and distinctness, each divided by its threshold: "
    f"{SUSPICION_THRESHOLD:g} or more means the cluster is both a group of its own and looks where the "
    "rest of the class does not, as a shortcut would. Compare it across classes freely.",
    "suspicious": f"Yes when the suspicion is {SUSPICION_THRESHOLD:g} or more: a person should look at this cluster.",
    "suspicion_rank": "The order of the clusters by suspicion; 1 is the most suspicious cluster of the class.",
    "stability": "How much the cluster's images stay together when the grid or k change (adjusted Rand index; 1 is "
    "identical).",
}
"""One plain sentence per cluster-table column, for the class page to show beside the table."""


def column_explanations(columns: list[str]) -> dict[str, str]:
    """The explanations of the given columns that have one, in the given order."""
    return {column: COLUMN_EXPLANATIONS[column] for column in columns if column in COLUMN_EXPLANATIONS}
