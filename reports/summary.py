"""The plain-language summary at the top of a class page, written from the descriptors alone.

Nothing here knows the demo: the sentences are built from the cluster count, the eigengap,
the cluster descriptors (size, border share, suspicion) and the stability scores, so any
model and data set get the same kind of summary.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reports.model import ClassReportData

#: The automatic cluster count looks for the largest gap among the first 10 eigenvalues (SPEC 1.5).
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
    for side in sorted(sides, key=sides.get, reverse=True):
        chosen.append(side)
        if sum(sides[s] for s in chosen) >= SIDES_SHARE * total:
            break
    if len(chosen) > 2:
        return ""
    order = ["top", "bottom", "left", "right"]
    return " and ".join(sorted(chosen, key=order.index))


REGION_NAMES = (
    ("top-left corner", "top edge", "top-right corner"),
    ("left edge", "centre", "right edge"),
    ("bottom-left corner", "bottom edge", "bottom-right corner"),
)


def region_shares(prototype: np.ndarray) -> np.ndarray:
    """(3, 3) shares of a map's positive relevance in the thirds of its rows and columns."""
    positive = np.clip(np.asarray(prototype, dtype=float), 0, None)
    rows = np.linspace(0, positive.shape[0], 4).round().astype(int)
    cols = np.linspace(0, positive.shape[1], 4).round().astype(int)
    sums = np.array([[positive[rows[i]:rows[i + 1], cols[j]:cols[j + 1]].sum() for j in range(3)] for i in range(3)])
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
    gaps = data.gaps
    if k == 1 or k > len(gaps):
        return head + "."
    head += f" (eigengap after \u03bb{k}: {gaps[k - 1]:.3g}"
    suggested = int(np.argmax(gaps[:AUTO_GAP_WINDOW])) + 1
    if suggested != k:
        head += f"; the largest gap among the first {AUTO_GAP_WINDOW} eigenvalues would suggest {suggested}"
    return head + ")."


def _suspicion_sentence(data: ClassReportData) -> str:
    table = data.clusters
    if len(table) < 2 or "suspicion" not in table.columns:
        return ""
    suspect = table.loc[table["suspicion"].idxmax()]
    main = table.loc[table["size"].idxmax()]
    sentence = f"Most suspicious: cluster {suspect['cluster']} ({_images(int(suspect['size']))})"
    if "border_share" not in table.columns:
        return sentence + f" has suspicion score {suspect['suspicion']:.2f}."
    main_name = f"the main cluster {main['cluster']} ({_images(int(main['size']))})"
    if suspect["border_share"] >= NOTABLE_BORDER_SHARE or main["cluster"] == suspect["cluster"]:
        sentence += f" puts {_percent(suspect['border_share'])} of its positive relevance on {_where(suspect)}"
        if main["cluster"] != suspect["cluster"]:
            sentence += f", where {main_name} puts {_percent(main['border_share'])}"
        return sentence + "."
    region, share, main_share = hotspot(suspect["prototype"], main["prototype"])
    return sentence + (
        f" puts {_percent(share)} of its positive relevance in the {region} of the image, "
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
