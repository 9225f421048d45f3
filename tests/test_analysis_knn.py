"""Neighbour search: exact search against scikit-learn, the default k, approximate recall at d=400."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from spray.analysis.affinity import knn_affinity
from spray.analysis.knn import _k_smallest_per_row, default_k, exact_knn, knn, recall


def test_default_k_is_ceil_ln_n_with_floor_two():
    assert [default_k(n) for n in (3, 7, 8, 200, 10_000, 1_000_000)] == [2, 2, 3, 6, 10, 14]
    assert default_k(1000, log_base=10) == 3


def test_exact_knn_matches_sklearn_brute_force_and_excludes_self():
    x = np.random.default_rng(0).standard_normal((700, 40)).astype(np.float32)
    ours = exact_knn(x, 9, block_rows=128)
    distances, indices = NearestNeighbors(n_neighbors=10, algorithm="brute").fit(x).kneighbors(x)
    assert not (ours.indices == np.arange(len(x))[:, None]).any()
    np.testing.assert_array_equal(ours.indices, indices[:, 1:])
    np.testing.assert_allclose(ours.distances, distances[:, 1:], rtol=1e-5)


def test_affinity_is_symmetric_binary_max_or_mean_without_self_loops():
    x = np.random.default_rng(1).standard_normal((300, 5))
    graph = exact_knn(x, 4)
    maximum, mean = knn_affinity(graph, "max"), knn_affinity(graph, "mean")
    for w in (maximum, mean):
        assert (w != w.T).nnz == 0 and w.diagonal().sum() == 0
    assert set(np.unique(maximum.data)) == {1.0}  # Eq. 6.1 with OR symmetrisation (L2067)
    assert set(np.unique(mean.data)) <= {0.5, 1.0}
    heat = knn_affinity(graph, edge_weight="heat")
    assert (heat.data > 0).all() and (heat.data <= 1).all()


@pytest.mark.slow  # pays pynndescent's numba compilation (~1-3 min in a fresh process)
def test_approximate_knn_recall_at_default_settings_on_400_dimensional_data():
    rng = np.random.default_rng(0)
    n, d = 6000, 400
    centres = 3.0 * rng.standard_normal((5, d))
    x = (centres[rng.integers(0, 5, n)] + rng.standard_normal((n, d))).astype(np.float32)
    k = default_k(n)
    approximate = knn(x, k, method="approximate", random_state=0)
    assert not approximate.exact and approximate.indices.shape == (n, k)
    rows = rng.choice(n, 500, replace=False)
    measured = recall(approximate, exact_knn(x, k, rows), rows)
    assert measured >= 0.95, f"recall {measured:.3f}"
    assert math.isclose(recall(exact_knn(x, k), exact_knn(x, k)), 1.0)


@pytest.mark.parametrize("n_cols, k", [(1, 1), (7, 3), (101, 10), (1000, 14), (997, 1)])
def test_k_smallest_per_row_equals_a_full_stable_sort(n_cols, k):
    rng = np.random.default_rng(n_cols)
    scores = rng.integers(0, 5, (40, n_cols)).astype(np.float32)  # many ties
    scores[::3] = rng.standard_normal((len(scores[::3]), n_cols))
    scores[1, 0] = np.inf
    expected = np.argsort(scores, axis=1, kind="stable")[:, :k]  # ties: lower column first
    np.testing.assert_array_equal(_k_smallest_per_row(scores, k), expected)
