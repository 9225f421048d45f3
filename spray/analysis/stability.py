"""Stability of the cluster labels under parameter changes (the thesis's open question, L2188) [X].

The thesis reports that 5x5 to 50x50 grids give the same qualitative results (L2100) and leaves
the sensitivity to parameters open (L2188). Here a fitted analysis is refitted at the other grid
sizes and at nearby k, with the same number of clusters, and each refit's labels are compared
with the original by the adjusted Rand index: values near 1 mean the clusters are a property
of the maps, not of the parameters.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score

STABILITY_GRIDS = (5, 10, 20, 50)
"""Grid sizes the thesis found qualitatively equivalent (L2100)."""

STABILITY_K_OFFSETS = (-2, -1, 1, 2)
"""Nearby neighbour counts around the k used."""

QUICK_GRID, QUICK_K_OFFSET = 10, 1
"""The two refits of a quick check: one coarser grid (10x10, or the next of STABILITY_GRIDS) and k + 1."""

STABILITY_TWINS = 3
"""Structureless twins per refit: a refit's suggested count is shown for information only, so
3 twins (not the 10 of the fit itself) keep the refits cheap (0.08 CPU-s each at 200 maps)."""


def stability_variants(fitted, n: int, mode: str = "full") -> list[tuple[str, int]]:
    """The refits of a stability check: ``full`` every other grid of STABILITY_GRIDS and k-2..k+2
    (7 refits), ``quick`` one other grid and k + 1 (2 refits)."""
    grids = [g for g in STABILITY_GRIDS if g != fitted.grid] if fitted.grid is not None else []
    ks = [fitted.k_ + d for d in STABILITY_K_OFFSETS if 2 <= fitted.k_ + d < n]
    if mode == "quick":
        grids = sorted(grids, key=lambda g: (g != QUICK_GRID, abs(g - QUICK_GRID)))[:1]
        ks = [k for k in ks if k == fitted.k_ + QUICK_K_OFFSET][:1] or ks[:1]
    return [("grid", g) for g in grids] + [("k", k) for k in ks]


def label_stability(fitted, maps: np.ndarray, mode: str = "full") -> pd.DataFrame:
    """One row per variant: parameter, value, the cluster count the refit's rule suggests, and ARI with ``fitted.labels_``.

    ``fitted`` is a fitted ``SpectralRelevanceAnalysis``; the variants (:func:`stability_variants`)
    skip embeddings and use its ``n_clusters_``. Grid variants need raw maps (``grid`` set); k
    variants keep 2 <= k < n.
    """
    n = len(fitted.labels_)
    variants = stability_variants(fitted, n, mode)
    rows = []
    for parameter, value in variants:
        refit = clone(fitted).set_params(
            embeddings=(), n_clusters=fitted.n_clusters_, k=fitted.k_, n_twins=min(fitted.n_twins, STABILITY_TWINS)
        )
        refit.set_params(**{parameter: value}).fit(maps)
        rows.append(
            {
                "parameter": parameter,
                "value": value,
                "auto_n_clusters": refit.suggested_n_clusters_,
                "ari": float(adjusted_rand_score(fitted.labels_, refit.labels_)),
            }
        )
    return pd.DataFrame(rows, columns=["parameter", "value", "auto_n_clusters", "ari"])
