"""Preprocessing of relevance maps into the feature vectors that SpRAy clusters (step 1, L2061).

Sum pooling keeps relevance additive (L982, L1434, L2209): the pooled map of every sample
has exactly the total relevance of the raw map, whatever H and W are. Block edges are placed
with ``linspace`` so maps whose size is not a multiple of the grid (the FV model takes images
of any size, L2061) pool without cropping.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

GRID_DEFAULT = 20
"""Pooled grid side, G x G = 20 x 20 (L2100); 5, 10 and 50 give the same qualitative results (L2100)."""

Normalization = Literal["maxabs", "l2"] | None


def block_assignment(size: int, grid: int) -> np.ndarray:
    """A (grid, size) 0/1 matrix that sends each pixel row (or column) to exactly one block.

    Edges are ``round(linspace(0, size, grid + 1))``, so every pixel is counted once and the
    blocks differ in size by at most one pixel.
    """
    edges = np.round(np.linspace(0, size, grid + 1)).astype(np.int64)
    block_of_pixel = np.searchsorted(edges, np.arange(size), side="right") - 1
    assignment = np.zeros((grid, size))
    assignment[block_of_pixel, np.arange(size)] = 1.0
    return assignment


def sum_pool(maps: np.ndarray, grid: int = GRID_DEFAULT) -> np.ndarray:
    """Sum-pool a (N, H, W) stack to (N, grid, grid) in float64, preserving each map's sum (L2100)."""
    maps = np.asarray(maps, dtype=np.float64)
    rows = block_assignment(maps.shape[1], grid)
    cols = block_assignment(maps.shape[2], grid)
    return np.einsum("gh,nhw,kw->ngk", rows, maps, cols, optimize=True)


def gaussian_low_pass(maps: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of each map before pooling, the interpolation alternative of L2209/L2562.

    It helps FV maps and hurts DNN maps (L2590), so it is off by default; sigma is in pixels
    of the raw map and not given by the thesis.
    """
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(np.asarray(maps, dtype=np.float64), sigma=(0, sigma, sigma), mode="nearest")


def fft_magnitude(pooled: np.ndarray) -> np.ndarray:
    """Magnitudes of the 2-D real FFT of each (N, G, G) pooled map: features invariant to cyclic shifts (L2209)."""
    return np.abs(np.fft.rfft2(pooled, axes=(1, 2)))


def normalize_rows(features: np.ndarray, how: Normalization) -> np.ndarray:
    """Per-sample scaling of the feature vectors: none (default, SPEC §1.1 from L2590), max-abs (Eq. 2.62, L942) or L2.

    All-zero rows are left at zero instead of becoming NaN.
    """
    if how is None:
        return features
    if how == "maxabs":
        scale = np.abs(features).max(axis=1)
    elif how == "l2":
        scale = np.linalg.norm(features, axis=1)
    else:
        raise ValueError(f"normalize must be None, 'maxabs' or 'l2', not {how!r}")
    scale = np.where(scale > 0, scale, 1.0)
    return features / scale[:, None]


def preprocess(
    maps: np.ndarray,
    grid: int | None = GRID_DEFAULT,
    smooth_sigma: float | None = None,
    fft: bool = False,
    normalize: Normalization = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Turn raw maps into (features (N, D), pooled maps (N, G, G) or None).

    With ``grid=None`` the input is taken as already pooled: (N, D) rows, or (N, G, G) maps
    that are flattened and also returned as the pooled maps for the cluster descriptors.
    """
    maps = np.asarray(maps)
    if not np.issubdtype(maps.dtype, np.floating):
        maps = maps.astype(np.float64)
    if grid is None:
        # Already pooled: keep the caller's float dtype (float32 halves memory at 1M rows).
        pooled = maps if maps.ndim == 3 else None
    else:
        if smooth_sigma:
            maps = gaussian_low_pass(maps, smooth_sigma)
        pooled = sum_pool(maps, grid)
    spatial = pooled if pooled is not None else maps
    if fft:
        spatial = fft_magnitude(spatial)
    return normalize_rows(spatial.reshape(len(maps), -1), normalize), pooled
