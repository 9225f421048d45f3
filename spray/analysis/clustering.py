"""Cluster labels from the spectral embedding (L2087).

The default is Ng-Jordan-Weiss, the algorithm the thesis cites (L2100): k-means on the
row-normalised first K eigenvectors of L_sym. Density-based and agglomerative clusterers on
the same embedding are options [X]. Labels are renumbered by cluster size, so label 0 is
always the largest cluster (the class's main strategy); noise stays -1.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Clusterer = Literal["njw", "dbscan", "hdbscan", "agglomerative"]

CLUSTERER_DEFAULT: Clusterer = "njw"
"""Ng-Jordan-Weiss spectral clustering (cited at L2100; "e.g. k-means on the N eigenvectors", L2087)."""

N_INIT_DEFAULT = 10
"""k-means restarts; SPEC §1.6 asks for a fixed seed and n_init >= 10."""


def row_normalized(eigenvectors: np.ndarray, n_clusters: int) -> np.ndarray:
    """The first ``n_clusters`` eigenvectors with every row scaled to unit length (zero rows stay zero)."""
    rows = np.asarray(eigenvectors[:, :n_clusters], dtype=np.float64)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.divide(rows, norms, out=np.zeros_like(rows), where=norms > 0)


def relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Renumber labels 0, 1, ... by decreasing cluster size (ties: smaller old label first); -1 is kept."""
    labels = np.asarray(labels, dtype=np.int64)
    kept = labels[labels >= 0]
    if kept.size == 0:
        return labels.copy()
    sizes = np.bincount(kept)
    present = np.flatnonzero(sizes)
    order = present[np.lexsort((present, -sizes[present]))]
    new_label = np.full(len(sizes), -1, dtype=np.int64)
    new_label[order] = np.arange(len(order))
    return np.where(labels >= 0, new_label[np.maximum(labels, 0)], -1)


def cluster_spectral_embedding(
    eigenvectors: np.ndarray,
    n_clusters: int,
    method: Clusterer = CLUSTERER_DEFAULT,
    random_state: int | None = 0,
    n_init: int = N_INIT_DEFAULT,
    **clusterer_params,
) -> np.ndarray:
    """Labels (N,) from the row-normalised first ``n_clusters`` eigenvectors, ordered by cluster size.

    ``method``: ``njw`` (k-means, seeded), ``dbscan`` / ``hdbscan`` (density-based, may label
    noise -1; ``clusterer_params`` go to scikit-learn), or ``agglomerative`` (Ward; O(N^2)
    memory, for small classes only).
    """
    n = len(eigenvectors)
    if n_clusters <= 1 and method in ("njw", "agglomerative"):
        return np.zeros(n, dtype=np.int64)
    embedding = row_normalized(eigenvectors, max(n_clusters, 2))
    if method == "njw":
        from sklearn.cluster import KMeans

        labels = KMeans(n_clusters=n_clusters, n_init=n_init, random_state=random_state).fit_predict(embedding)
    elif method == "dbscan":
        from sklearn.cluster import DBSCAN

        labels = DBSCAN(**{"eps": 0.1, **clusterer_params}).fit_predict(embedding)
    elif method == "hdbscan":
        from sklearn.cluster import HDBSCAN

        labels = HDBSCAN(**{"min_cluster_size": 5, **clusterer_params}).fit_predict(embedding)
    elif method == "agglomerative":
        from sklearn.cluster import AgglomerativeClustering

        labels = AgglomerativeClustering(n_clusters=n_clusters, **clusterer_params).fit_predict(embedding)
    else:
        raise ValueError(f"clusterer must be 'njw', 'dbscan', 'hdbscan' or 'agglomerative', not {method!r}")
    return relabel_by_size(np.asarray(labels))
