"""Checks of the maps handed to the spectral analysis, with errors a user can act on."""

from __future__ import annotations

import warnings

import numpy as np

from spray.errors import AnalysisInputError

MIN_SAMPLES = 3
"""Fewest samples with a meaningful kNN graph and spectrum (k >= 2 neighbours plus the sample itself)."""


class DegenerateMapsWarning(UserWarning):
    """All maps of a class are identical after preprocessing: the analysis reports a single cluster."""


def check_maps(maps: object, grid: int | None) -> np.ndarray:
    """The maps as an array: (N, H, W) when ``grid`` is set, (N, D) or (N, G, G) when ``grid`` is None."""
    array = np.asarray(maps)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise AnalysisInputError(
            f"maps must be numeric, got dtype {array.dtype}; pass a float array of relevance maps."
        )
    if grid is not None and array.ndim != 3:
        raise AnalysisInputError(
            f"maps must have shape (N, H, W) when grid={grid}, got {array.shape}; sum colour channels first (L938) "
            "or pass already pooled features with grid=None."
        )
    if grid is None and array.ndim not in (2, 3):
        raise AnalysisInputError(f"pooled features must have shape (N, D) or (N, G, G), got {array.shape}.")
    if len(array) < MIN_SAMPLES:
        raise AnalysisInputError(
            f"the spectral analysis needs at least {MIN_SAMPLES} maps, got {len(array)}; analyse a class with more samples."
        )
    finite = np.isfinite(array.reshape(len(array), -1)).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        shown = ", ".join(map(str, bad[:10])) + (" ..." if len(bad) > 10 else "")
        raise AnalysisInputError(
            f"{len(bad)} of {len(array)} maps contain NaN or Inf (rows {shown}); recompute or drop those maps."
        )
    return array


def check_k(k: int, n: int) -> int:
    """k must satisfy 1 <= k < n (a sample cannot be its own neighbour, Eq. 6.1)."""
    if not 1 <= k < n:
        raise AnalysisInputError(f"k={k} neighbours needs 1 <= k < n={n} samples; choose a smaller k or leave k=None.")
    return int(k)


def warn_if_degenerate(features: np.ndarray) -> bool:
    """Warn and return True when every feature row is identical (no structure to cluster)."""
    if np.ptp(features, axis=0).max() > 0:
        return False
    warnings.warn(
        f"all {len(features)} maps are identical after preprocessing; reporting a single cluster.",
        DegenerateMapsWarning,
        stacklevel=3,
    )
    return True
