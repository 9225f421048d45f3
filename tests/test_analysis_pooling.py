"""Sum pooling (L2100) and the optional preprocessing steps."""

from __future__ import annotations

import numpy as np
import pytest

from spray.analysis.pooling import normalize_rows, preprocess, sum_pool


def slow_sum_pool(maps: np.ndarray, grid: int) -> np.ndarray:
    """Obvious reference: loop over linspace blocks and sum the pixels of each."""
    rows = np.round(np.linspace(0, maps.shape[1], grid + 1)).astype(int)
    cols = np.round(np.linspace(0, maps.shape[2], grid + 1)).astype(int)
    out = np.zeros((len(maps), grid, grid))
    for i in range(grid):
        for j in range(grid):
            out[:, i, j] = maps[:, rows[i] : rows[i + 1], cols[j] : cols[j + 1]].sum(axis=(1, 2))
    return out


@pytest.mark.parametrize("shape", [(40, 40), (37, 53), (227, 227), (13, 8)])
@pytest.mark.parametrize("grid", [5, 10, 20, 50])
def test_sum_pool_preserves_each_maps_total_and_matches_the_loop(shape, grid):
    maps = np.random.default_rng(0).standard_normal((3, *shape))
    pooled = sum_pool(maps, grid)
    assert pooled.shape == (3, grid, grid)
    np.testing.assert_allclose(pooled.sum(axis=(1, 2)), maps.sum(axis=(1, 2)), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(pooled, slow_sum_pool(maps, grid), rtol=1e-12, atol=1e-10)


def test_divisible_pooling_equals_block_reshape_sum():
    maps = np.random.default_rng(1).standard_normal((2, 40, 60))
    blocks = maps.reshape(2, 20, 2, 20, 3).sum(axis=(2, 4))
    np.testing.assert_allclose(sum_pool(maps, 20), blocks, rtol=1e-12, atol=1e-12)


def test_normalisations_scale_each_row_and_leave_zero_rows_alone():
    features = np.array([[3.0, -4.0], [0.0, 0.0], [1.0, 1.0]])
    np.testing.assert_allclose(normalize_rows(features, "maxabs"), [[0.75, -1.0], [0, 0], [1, 1]])
    np.testing.assert_allclose(np.linalg.norm(normalize_rows(features, "l2")[[0, 2]], axis=1), 1.0)
    assert normalize_rows(features, None) is features


def test_fft_features_are_invariant_to_cyclic_shifts():
    maps = np.random.default_rng(2).random((1, 20, 20))
    shifted = np.roll(maps, (3, 5), axis=(1, 2))
    a, _ = preprocess(maps, grid=20, fft=True)
    b, _ = preprocess(shifted, grid=20, fft=True)
    np.testing.assert_allclose(a, b, atol=1e-10)


def test_gaussian_low_pass_changes_maps_and_keeps_shape():
    maps = np.zeros((1, 30, 30))
    maps[0, 15, 15] = 1.0
    smoothed, _pooled = preprocess(maps, grid=10, smooth_sigma=2.0)
    plain, _ = preprocess(maps, grid=10)
    assert smoothed.shape == plain.shape == (1, 100)
    assert (smoothed > 0).sum() > (plain > 0).sum()
