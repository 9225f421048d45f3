"""Which cluster is which across analyses: prototypes matched one to one by cosine similarity.

Cluster labels carry no identity across runs (they are arbitrary, L2087), so two clusters are
the same strategy when their prototypes (mean pooled relevance maps) point the same way:
cosine similarity at least a threshold, paired one to one by the Hungarian assignment
(``scipy.optimize.linear_sum_assignment``) that maximises the total similarity. Audits compare
model versions this way, and a person's tag follows its cluster into later analyses this way.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

SAME_STRATEGY_SIMILARITY = 0.8
"""Cosine similarity of two prototypes above which two clusters are the same strategy; a product
default [X], the audits' ``prototype_similarity`` threshold."""


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise cosine similarity of the rows of ``a`` (m, d) and ``b`` (n, d); 0 for a zero row."""
    a_norm = np.linalg.norm(a, axis=1, keepdims=True)
    b_norm = np.linalg.norm(b, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        similarity = (a @ b.T) / (a_norm * b_norm.T)
    return np.nan_to_num(similarity, nan=0.0)


def prototype_similarity(previous: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Cosine similarity (m, n) of flattened prototypes; all 0 when their sizes differ (another
    pooling grid: the maps are not comparable)."""
    previous = np.asarray(previous, dtype=float).reshape(len(previous), -1)
    current = np.asarray(current, dtype=float).reshape(len(current), -1)
    if previous.shape[1] != current.shape[1]:
        return np.zeros((len(previous), len(current)))
    return cosine_similarity(previous, current)


def match_clusters(
    similarity: np.ndarray, min_similarity: float = SAME_STRATEGY_SIMILARITY
) -> list[tuple[int, int, float]]:
    """One-to-one pairs ``(row, column, similarity)`` maximising the total similarity (Hungarian
    assignment), keeping the pairs at least ``min_similarity`` alike."""
    if similarity.size == 0:
        return []
    rows, cols = linear_sum_assignment(similarity, maximize=True)
    return [
        (int(r), int(c), float(similarity[r, c]))
        for r, c in zip(rows, cols, strict=True)
        if similarity[r, c] >= min_similarity
    ]


__all__ = ["SAME_STRATEGY_SIMILARITY", "cosine_similarity", "match_clusters", "prototype_similarity"]
