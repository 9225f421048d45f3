"""The region that carries a cluster's distinctive relevance, as a mask at the model input's resolution.

SpRAy's clusters are groups of relevance maps (thesis Ch. 6); to test one by intervention
(``spray verify cluster``) we need *where* it differs from the class's usual strategy. The
rule, each step with its reason:

1. **Shares of positive relevance.** Every map is cut to its positive part and divided by its
   sum, so it says *where* the model found evidence for the class, not *how much* (a map's
   total is the class score, by conservation, L544; unscaled, a few confident images would
   decide the mean). Negative relevance is left out: the question is where the cluster finds
   evidence *for* the class. A map without positive relevance adds nothing.
2. **Excess over the reference.** ``difference = mean share of the members - mean share of
   the reference``: positive where the cluster puts relevance and the reference does not. The
   reference is the main (largest) cluster, or the rest of the class when the cluster *is*
   the main one.
3. **Smoothing** with a Gaussian of ``sigma`` pooling cells (default half a cell of the
   analysis grid): the clusters were found on pooled maps (20x20, L2100), so structure finer
   than a cell did not make the cluster, and single-pixel LRP speckle (text strokes, edges)
   should not cut the region into pieces.
4. **Threshold by mass.** The region is the smallest set of pixels that together carry
   ``mass`` (default 80%) of the positive excess: a highest-density region. Unlike a
   fraction of the peak it does not depend on how sharp the peak is, and unlike a fixed area
   it grows with a spread-out difference and shrinks with a compact one. Most of the excess,
   not half: the removal must take the artefact away whole, since what is left of it keeps
   driving the score (measured on the demo's watermark cluster: the half-mass core was a
   thin band through the letters, and removing it lowered the horse score by 3.5; the 80%
   region held the tag's letters and removing it lowered the score by 7.5, against 0.2-0.3 for
   the same-shaped controls both times). The last fifth is the thin tail that smoothing and
   LRP speckle spread over the rest of the image.
5. **Connected.** Of the 8-connected components above the threshold, the one carrying the
   most excess is kept (one artefact, one place: an intervention on scattered specks would
   test several things at once), with its holes filled (an inpainting must not draw on
   pixels inside the artefact).

When the store keeps no full-resolution maps, the pooled maps are spread evenly over the
pixels of their cells (:func:`upsample_pooled`), the inverse of sum pooling, and the same
rule runs at the input resolution.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from spray.analysis.pooling import block_assignment
from spray.errors import SprayError


class ClusterVerificationError(SprayError, ValueError):
    """A cluster or class that the intervention test cannot use; the message says why and what to do."""


@dataclass(frozen=True)
class RegionRule:
    """The parameters of the region rule (module docstring); all are part of the results' store key."""

    mass: float = 0.8
    """Share of the positive excess relevance the region carries (a highest-density region)."""
    sigma_cells: float = 0.5
    """Gaussian smoothing of the excess, in pooling cells of the analysis grid (0: none)."""

    def __post_init__(self) -> None:
        if not 0 < self.mass <= 1:
            raise ClusterVerificationError(f"region mass {self.mass!r} must be in (0, 1]; 0.8 keeps most of the excess")
        if self.sigma_cells < 0:
            raise ClusterVerificationError(f"region smoothing {self.sigma_cells!r} must be >= 0 pooling cells")

    def to_dict(self) -> dict:
        return {
            "rule": "highest-density region of the smoothed excess share, largest-excess 8-connected "
            "component, holes filled"
        } | asdict(self)


@dataclass(frozen=True)
class ClusterRegion:
    """The region of a cluster and the maps it was cut from, all (H, W) at the input resolution."""

    mask: np.ndarray
    """bool: the region."""
    difference: np.ndarray
    """float: smoothed mean share of the members minus that of the reference."""
    member_share: np.ndarray
    """float: mean share of positive relevance of the members."""
    reference_share: np.ndarray
    threshold: float
    """The excess above which pixels entered the region (before the component was chosen)."""
    mass: float
    """Share of the positive excess that the kept region carries (at most about ``rule.mass``)."""

    @property
    def n_pixels(self) -> int:
        return int(self.mask.sum())

    @property
    def fraction(self) -> float:
        """Share of the input the region covers."""
        return self.n_pixels / self.mask.size

    def describe(self) -> str:
        ys, xs = np.nonzero(self.mask)
        height, width = self.mask.shape
        return (
            f"{self.n_pixels} pixels ({self.fraction:.1%} of the {height}x{width} input), rows "
            f"{ys.min()}-{ys.max()}, columns {xs.min()}-{xs.max()}, carrying {self.mass:.0%} of the cluster's "
            "excess positive relevance"
        )


def positive_shares(maps: np.ndarray) -> np.ndarray:
    """(N, H, W) maps -> each map's positive part divided by its sum (all-zero where it has none)."""
    positive = np.clip(np.asarray(maps, dtype=np.float64), 0.0, None)
    totals = positive.sum(axis=(1, 2), keepdims=True)
    return np.divide(positive, totals, out=np.zeros_like(positive), where=totals > 0)


def upsample_pooled(pooled: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(N, G, G) sum-pooled maps -> (N, H, W): each cell's value spread evenly over its pixels.

    Uses the pooling's own cells (:func:`spray.analysis.pooling.block_assignment`), so sum
    pooling the result gives the pooled maps back exactly.
    """
    pooled = np.asarray(pooled, dtype=np.float64)
    rows = block_assignment(shape[0], pooled.shape[1])
    cols = block_assignment(shape[1], pooled.shape[2])
    density = pooled / np.outer(rows.sum(axis=1), cols.sum(axis=1))
    return np.einsum("gh,ngk,kw->nhw", rows, density, cols, optimize=True)


def distinctive_region(
    member_share: np.ndarray, reference_share: np.ndarray, grid: int, rule: RegionRule = RegionRule()
) -> ClusterRegion:
    """The region where the members put positive relevance and the reference does not (module docstring).

    ``member_share`` and ``reference_share`` are the (H, W) means of :func:`positive_shares` over
    the members' and the reference's maps at the input resolution (means, so that a caller can
    sum a large class chunk by chunk); ``grid`` is the analysis's pooling grid (the unit of
    ``rule.sigma_cells``).
    """
    members, reference = np.asarray(member_share, dtype=np.float64), np.asarray(reference_share, dtype=np.float64)
    if members.ndim != 2 or members.shape != reference.shape:
        raise ClusterVerificationError(
            f"the members' mean map {members.shape} and the reference's {reference.shape} must be two maps of one size"
        )
    sigma = rule.sigma_cells * np.asarray(members.shape, dtype=np.float64) / grid
    difference = members - reference
    if rule.sigma_cells > 0:
        difference = ndimage.gaussian_filter(difference, sigma=sigma, mode="nearest")
    excess = np.clip(difference, 0.0, None)
    total = float(excess.sum())
    if not total > 0:
        raise ClusterVerificationError(
            "the cluster puts positive relevance nowhere more than the rest of the class, "
            "so it has no distinctive region to test"
        )
    ordered = np.sort(excess.ravel())[::-1]
    threshold = float(ordered[min(int(np.searchsorted(np.cumsum(ordered), rule.mass * total)), ordered.size - 1)])
    above = excess >= max(threshold, np.finfo(np.float64).tiny)
    components, count = ndimage.label(above, structure=np.ones((3, 3), dtype=bool))
    carried = ndimage.sum(excess, components, index=np.arange(1, count + 1))
    mask = ndimage.binary_fill_holes(components == 1 + int(np.argmax(carried)))
    return ClusterRegion(
        mask=mask,
        difference=difference,
        member_share=members,
        reference_share=reference,
        threshold=threshold,
        mass=float(excess[mask].sum()) / total,
    )
