"""Neighbour search: exact search against scikit-learn, the default k, approximate recall at d=400."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from spray.analysis.affinity import knn_affinity
from spray.analysis.exact_search import UNIT_ROUNDOFF_32, score_error
from spray.analysis.knn import default_k, exact_knn, knn, recall


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


def stable_sort_reference(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest rows by a full stable sort of exact float64 squared distances (self excluded)."""
    x = x.astype(np.float64)
    squared = ((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(squared, np.inf)
    order = np.argsort(squared, axis=1, kind="stable")[:, :k]  # ties: lower index first
    return order, np.sqrt(np.take_along_axis(squared, order, axis=1))


@pytest.mark.parametrize(
    ("n", "d", "values", "k", "block_rows"),
    [(300, 3, 3, 5, 64), (257, 8, 2, 10, 1024), (120, 1, 4, 7, 16), (60, 2, 1, 4, 8)],
)
def test_exact_knn_equals_a_full_stable_sort_with_ties_and_duplicates(n, d, values, k, block_rows):
    """Small integer features: many rows tie exactly (and 1 value: every row is a copy of every other)."""
    x = np.random.default_rng(n).integers(0, values, (n, d)).astype(np.float32)
    expected, distances = stable_sort_reference(x, k)
    ours = exact_knn(x, k, block_rows=block_rows)
    np.testing.assert_array_equal(ours.indices, expected)
    np.testing.assert_array_equal(ours.distances, distances)


@pytest.mark.parametrize("blank", [250, 400])
def test_exact_knn_with_a_flood_of_copies_equals_the_stable_sort(blank):
    """Many all-zero maps (a class with blank relevance; or all of them) besides distinct rows: copies tie at 0."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((400, 6))
    x[rng.choice(400, blank, replace=False)] = 0.0
    x[:40:4] = x[1]  # a second, smaller group of copies
    expected, distances = stable_sort_reference(x, 9)
    ours = exact_knn(x, 9, block_rows=128)
    np.testing.assert_array_equal(ours.indices, expected)
    np.testing.assert_allclose(ours.distances, distances, rtol=1e-15, atol=0)


def test_exact_knn_orders_near_ties_that_float32_cannot_see():
    """Distances that differ in the 9th digit: float32 scores tie or swap them, the float64 re-rank does not."""
    rng = np.random.default_rng(4)
    angles = rng.uniform(0, 2 * np.pi, 200)
    radii = 1.0 + 1e-9 * rng.permutation(200)  # distinct radii, 1e-9 apart
    x = np.vstack([[0.0, 0.0], np.column_stack([radii * np.cos(angles), radii * np.sin(angles)])])
    expected, _ = stable_sort_reference(x, 20)
    assert not np.array_equal(
        np.argsort(np.linalg.norm(x[1:].astype(np.float32), axis=1), kind="stable")[:20] + 1, expected[0]
    )  # float32 cannot rank them
    np.testing.assert_array_equal(exact_knn(x, 20).indices[0], expected[0])


@pytest.mark.parametrize("offset, scale", [(1e4, 1e-3), (0.0, 1e-30), (-3e5, 1e30)])
def test_exact_knn_is_exact_far_from_the_origin_and_at_extreme_scales(offset, scale):
    """Centring and a power-of-two scale keep float32 in range: a mean of 1e4 with spread 1e-3, values of
    1e-30 (which square below float32's range) and of 1e30 (which square above it)."""
    x = offset + scale * np.random.default_rng(5).standard_normal((300, 12))
    expected, distances = stable_sort_reference(x, 8)
    ours = exact_knn(x, 8)
    np.testing.assert_array_equal(ours.indices, expected)
    np.testing.assert_allclose(ours.distances, distances, rtol=1e-12, atol=0)


def test_exact_knn_of_some_rows_equals_those_rows_of_all():
    x = np.random.default_rng(6).standard_normal((500, 30)).astype(np.float32)
    rows = np.array([499, 0, 17, 17, 250])
    some, every = exact_knn(x, 6, rows, block_rows=2), exact_knn(x, 6)
    np.testing.assert_array_equal(some.indices, every.indices[rows])
    np.testing.assert_array_equal(some.distances, every.distances[rows])


def test_score_error_bounds_the_float32_scores():
    """The rounding bound that makes the float32 selection safe holds, and is not vacuous (< 1000x the error)."""
    rng = np.random.default_rng(7)
    d = 400
    x = (rng.standard_normal((300, d)) * rng.lognormal(0, 2, d)).astype(np.float32)  # uneven scales
    y = x[:200].astype(np.float64)
    norms = np.einsum("ij,ij->i", y, y)
    targets = np.vstack([-2.0 * x[:200].T, norms.astype(np.float32)])
    computed = np.hstack([x, np.ones((300, 1), np.float32)]) @ targets
    exact = norms[None, :] - 2.0 * x.astype(np.float64) @ y.T  # float64: exact to ~1e-16 relative
    error = np.abs(computed - exact).max(axis=1)
    bound = score_error(np.linalg.norm(x.astype(np.float64), axis=1), np.sqrt(norms.max()), d + 1)
    assert (error <= bound).all()
    assert bound.max() < 1000 * error.max() and UNIT_ROUNDOFF_32 == 2.0**-24
