"""Per-cluster descriptors that tell a user what each cluster of a class is [X].

For cluster c of a class (pooled maps P_i, G x G, and affinity W):

- ``size``, ``share``: number and fraction of the class's samples.
- ``prototype``: the mean pooled map of the cluster (G x G).
- ``medoids``: the samples nearest (Euclidean, in feature space) to the cluster mean, best first.
- ``conductance``: cut(c, rest) / min(vol(c), vol(rest)) in W; 0 = no edge leaves the cluster.
- ``border_share``: share of the cluster's positive relevance on the outer ring of the grid;
  ``top_bottom_share`` / ``left_right_share``: on the top and bottom rows / left and right
  columns (the padding artefact of Sec. 6.3.1 puts relevance on the top and bottom, L2173).
- ``concentration``: share of the positive relevance in the 10 % most relevant grid cells.
- ``mean_relevance``: the mean total relevance of the cluster's maps (the logit, Eq. 2.5).

Whether a cluster is a Clever Hans candidate (``suspicion``) is judged against chance in
``spray.analysis.suspicion``; these columns only describe it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from spray.analysis.laplacian import degrees

N_MEDOIDS = 5
CONCENTRATION_TOP_FRACTION = 0.10


def border_masks(grid_rows: int, grid_cols: int) -> dict[str, np.ndarray]:
    """Boolean (G, G) masks of the outer ring, the top+bottom rows and the left+right columns."""
    top_bottom = np.zeros((grid_rows, grid_cols), dtype=bool)
    top_bottom[[0, -1], :] = True
    left_right = np.zeros((grid_rows, grid_cols), dtype=bool)
    left_right[:, [0, -1]] = True
    return {"border": top_bottom | left_right, "top_bottom": top_bottom, "left_right": left_right}


def conductance(affinity: sp.spmatrix, labels: np.ndarray, cluster: int) -> float:
    """cut(c, rest) / min(vol(c), vol(rest)); 0 when the cluster is the whole graph or has no edges."""
    inside = labels == cluster
    d = degrees(affinity)
    volume, volume_rest = d[inside].sum(), d[~inside].sum()
    internal = affinity[inside][:, inside].sum()
    denominator = min(volume, volume_rest)
    return float((volume - internal) / denominator) if denominator > 0 else 0.0


def _share(distribution: np.ndarray, mask: np.ndarray) -> float:
    total = distribution.sum()
    return float(distribution[mask].sum() / total) if total > 0 else 0.0


def _concentration(distribution: np.ndarray) -> float:
    flat = np.sort(distribution.ravel())[::-1]
    top = max(1, round(CONCENTRATION_TOP_FRACTION * flat.size))
    return float(flat[:top].sum() / flat.sum()) if flat.sum() > 0 else 0.0


def describe_clusters(
    pooled: np.ndarray | None, features: np.ndarray, labels: np.ndarray, affinity: sp.spmatrix
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """One row per cluster (noise label -1 excluded) and the (K, G, G) prototypes (None without maps).

    Without pooled maps (features given directly) the spatial columns are NaN.
    """
    spatial = pooled if pooled is not None else features[:, None, :]
    positive = np.clip(spatial, 0, None)
    masks = border_masks(*spatial.shape[1:]) if pooled is not None else None
    clusters = np.unique(labels[labels >= 0])
    n = len(labels)
    rows, prototypes = [], []
    for c in clusters:
        inside = labels == c
        members = np.flatnonzero(inside)
        mean_features = features[inside].mean(axis=0)
        distance_to_mean = np.linalg.norm(features[inside] - mean_features, axis=1)
        cluster_positive = positive[inside].sum(axis=0)
        size = int(inside.sum())
        phi = conductance(affinity, labels, c)
        row = {
            "cluster": int(c),
            "size": size,
            "share": size / n,
            "medoids": members[np.argsort(distance_to_mean, kind="stable")[:N_MEDOIDS]].tolist(),
            "conductance": phi,
            "border_share": _share(cluster_positive, masks["border"]) if masks else np.nan,
            "top_bottom_share": _share(cluster_positive, masks["top_bottom"]) if masks else np.nan,
            "left_right_share": _share(cluster_positive, masks["left_right"]) if masks else np.nan,
            "concentration": _concentration(cluster_positive) if masks else np.nan,
            "mean_relevance": float(spatial[inside].reshape(size, -1).sum(axis=1).mean()),
        }
        rows.append(row)
        if pooled is not None:
            prototypes.append(pooled[inside].mean(axis=0))
    return pd.DataFrame(rows), (np.stack(prototypes) if prototypes else None)
