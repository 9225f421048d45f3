"""k-nearest-neighbour search on the feature vectors (Eq. 6.1, L2065).

Exact search is a blocked matrix product (O(n^2 d), no N x N matrix is ever held); above
``EXACT_MAX_N`` samples an approximate NN-descent graph (pynndescent) is built with more
neighbours than needed and cut down to k, which keeps recall high at d=400 where its
defaults lose it (0.87 at 100k, ARCHITECTURE.md "Measured facts").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from spray.analysis.exact_search import exact_neighbors, squared_distances

KNN_LOG_BASE_DEFAULT = math.e
"""k = log(n) following von Luxburg (L2100); the base is unspecified, natural log is the SPEC §1.3 default."""

EXACT_MAX_N = 20_000
"""Largest n searched exactly: ~2 CPU-s at 10k and d=400, and no numba JIT (2-3 min cold) on small classes."""

BUILD_NEIGHBORS_FACTOR = 4
"""NN-descent builds this many times k+1 neighbours and keeps the k nearest. Recall on the d=400
Gaussian mixture of benchmarks/analysis_scale.py, isotropic (intrinsic dimension 400, the
hardest case): at 6000 rows 0.91 with 2x, 0.98 with 3x; at 50 000 rows 0.88 with 3x, 0.93 with
4x (+20 % CPU); at 100 000 rows 0.66 with 2x, 0.86 with 4x; at 1M rows 0.53 with 4x. With
neighbouring cells correlated as in pooled maps (``--smoothing``): 0.99 with 2x at 100 000
rows (smoothing 1.5), 0.935 with 4x at 1M (smoothing 1.0; benchmarks/README.md)."""

BUILD_MAX_CANDIDATES = 60
"""NN-descent candidates per iteration (pynndescent's default is min(60, n_neighbors)): 30 neighbours
with 60 candidates reached recall 0.996 on that mixture for about the same CPU time."""

KnnMethod = Literal["auto", "exact", "approximate"]


@dataclass(frozen=True)
class NeighborGraph:
    """The k nearest neighbours of every sample, self excluded, nearest first."""

    indices: np.ndarray  # (N, k) int64
    distances: np.ndarray  # (N, k) Euclidean distances
    exact: bool

    @property
    def k(self) -> int:
        return self.indices.shape[1]


def default_k(n: int, log_base: float = KNN_LOG_BASE_DEFAULT) -> int:
    """k = max(2, ceil(log_base(n))) (L2100; rounding and floor of 2 from SPEC §1.3)."""
    return max(2, math.ceil(math.log(n) / math.log(log_base)))


def exact_knn(features: np.ndarray, k: int, rows: np.ndarray | None = None, block_rows: int = 1024) -> NeighborGraph:
    """Exact Euclidean kNN of ``rows`` (default all) among all rows, by blocks of ``block_rows`` queries.

    Equal to a full stable sort of the float64 distances (ties to the lower index); a float32
    matrix product with a proven rounding bound selects the candidates (``exact_search``).
    """
    return NeighborGraph(*exact_neighbors(features, k, rows, block_rows), exact=True)


def approximate_knn(
    features: np.ndarray, k: int, random_state: int | None = 0, n_jobs: int | None = None
) -> NeighborGraph:
    """NN-descent graph (pynndescent) with ``BUILD_NEIGHBORS_FACTOR * (k + 1)`` neighbours, cut to k."""
    from pynndescent import NNDescent

    n = len(features)
    n_build = min(n, max(BUILD_NEIGHBORS_FACTOR * (k + 1), 16))
    index = NNDescent(
        features,
        metric="euclidean",
        n_neighbors=n_build,
        max_candidates=BUILD_MAX_CANDIDATES,
        random_state=random_state,
        n_jobs=n_jobs,
        low_memory=True,
    )
    candidates, candidate_distances = index.neighbor_graph
    return NeighborGraph(*_drop_self(features, candidates, candidate_distances, k), exact=False)


def _drop_self(
    features: np.ndarray, candidates: np.ndarray, candidate_distances: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Remove each row's own index (and unfilled -1 slots) from its candidates and keep the k nearest.

    Candidates are ranked by NN-descent's own (float32) distances; only the k kept per row are
    measured again in float64 (all 4(k+1) of them took minutes at 1M rows).
    """
    n = len(candidates)
    rows = np.arange(n)[:, None]
    invalid = (candidates == rows) | (candidates < 0) | ~np.isfinite(candidate_distances)
    ranked = np.where(invalid, np.inf, candidate_distances)
    order = np.argsort(ranked, axis=1, kind="stable")[:, :k]
    if not np.isfinite(np.take_along_axis(ranked, order, axis=1)).all():
        raise RuntimeError("approximate kNN returned fewer than k neighbours for some rows; use knn_method='exact'")
    chosen = np.take_along_axis(candidates, order, axis=1).astype(np.int64)
    distances = _pair_distances(features, chosen)
    resort = np.argsort(distances, axis=1, kind="stable")  # float32 near-ties may swap in float64
    return np.take_along_axis(chosen, resort, axis=1), np.take_along_axis(distances, resort, axis=1)


def _pair_distances(features: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Euclidean distances (float64) between each row and its listed neighbours."""
    rows = np.repeat(np.arange(len(indices)), indices.shape[1])
    return np.sqrt(squared_distances(features, rows, indices.ravel())).reshape(indices.shape)


def knn(
    features: np.ndarray,
    k: int,
    method: KnnMethod = "auto",
    random_state: int | None = 0,
    exact_max_n: int = EXACT_MAX_N,
    n_jobs: int | None = None,
) -> NeighborGraph:
    """The kNN graph of the rows: exact up to ``exact_max_n`` rows, approximate above (``method='auto'``)."""
    if method == "exact" or (method == "auto" and len(features) <= exact_max_n):
        return exact_knn(features, k)
    if method in ("auto", "approximate"):
        return approximate_knn(features, k, random_state=random_state, n_jobs=n_jobs)
    raise ValueError(f"knn_method must be 'auto', 'exact' or 'approximate', not {method!r}")


def recall(approximate: NeighborGraph, exact_of_rows: NeighborGraph, rows: np.ndarray | None = None) -> float:
    """Share of the exact k nearest neighbours of ``rows`` (default all) that the approximate graph found.

    ``exact_of_rows`` is ``exact_knn(features, k, rows)``: its i-th row belongs to ``rows[i]``.
    """
    rows = np.arange(len(exact_of_rows.indices)) if rows is None else rows
    found = sum(len(np.intersect1d(approximate.indices[r], exact_of_rows.indices[i])) for i, r in enumerate(rows))
    return found / (len(rows) * exact_of_rows.k)
