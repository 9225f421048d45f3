"""The cluster region rule on synthetic maps: a planted artefact is found, the threshold is the
highest-density region (checked by a slow loop), one connected part without holes, invariant
to each map's scale, and pooled maps spread back over their cells exactly."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from spray.analysis.pooling import sum_pool
from spray.verification.cluster_region import (
    ClusterVerificationError,
    RegionRule,
    distinctive_region,
    positive_shares,
    upsample_pooled,
)

SIDE, GRID = 64, 20
ARTEFACT = (slice(48, 55), slice(4, 30))  # a stamp near the bottom-left, as the demo's watermark


def object_maps(rng: np.random.Generator, n: int) -> np.ndarray:
    """Relevance on an 'object' blob that moves from image to image, plus signed noise."""
    yy, xx = np.mgrid[:SIDE, :SIDE]
    maps = rng.normal(0.0, 0.02, size=(n, SIDE, SIDE))
    for i, (cy, cx) in enumerate(rng.uniform(18, 46, size=(n, 2))):
        maps[i] += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 6.0**2))
    return maps


def with_artefact(maps: np.ndarray, strength: float = 0.6) -> np.ndarray:
    stamped = maps.copy()
    stamped[:, ARTEFACT[0], ARTEFACT[1]] += strength
    return stamped


@pytest.fixture(scope="module")
def planted():
    rng = np.random.default_rng(0)
    members, reference = with_artefact(object_maps(rng, 30)), object_maps(rng, 120)
    return members, reference


DEFAULT_RULE = RegionRule()


def region_of(members: np.ndarray, reference: np.ndarray, rule: RegionRule = DEFAULT_RULE):
    return distinctive_region(positive_shares(members).mean(0), positive_shares(reference).mean(0), GRID, rule)


def test_the_planted_artefact_is_the_region(planted):
    region = region_of(*planted)
    truth = np.zeros((SIDE, SIDE), bool)
    truth[ARTEFACT] = True
    overlap = (region.mask & truth).sum()
    assert overlap / region.n_pixels > 0.9  # the region is (almost only) the artefact
    assert overlap / truth.sum() > 0.6  # and holds most of it
    assert region.n_pixels == region.mask.sum() and region.fraction == pytest.approx(region.n_pixels / SIDE**2)
    assert f"{region.n_pixels} pixels" in region.describe()


def test_threshold_is_the_smallest_set_carrying_the_mass_by_a_slow_loop(planted):
    members, reference = planted
    rule = RegionRule(mass=0.6, sigma_cells=0.5)
    region = region_of(members, reference, rule)
    excess = np.clip(region.difference, 0, None)
    chosen, carried = np.zeros(excess.shape, bool), 0.0
    for flat in np.argsort(-excess, axis=None, kind="stable"):  # add pixels from the largest excess down
        if carried >= rule.mass * excess.sum():
            break
        chosen.flat[flat] = True
        carried += excess.flat[flat]
    assert region.threshold == pytest.approx(excess[chosen].min())
    assert (region.mask & ~ndimage.binary_fill_holes(chosen)).sum() == 0  # the region lies inside that set
    assert region.mass == pytest.approx(excess[region.mask].sum() / excess.sum())


def test_difference_is_members_minus_reference_smoothed_by_half_a_cell(planted):
    members, reference = planted
    region = region_of(members, reference)
    raw = positive_shares(members).mean(0) - positive_shares(reference).mean(0)
    sigma = 0.5 * SIDE / GRID
    np.testing.assert_allclose(region.difference, ndimage.gaussian_filter(raw, sigma, mode="nearest"), atol=1e-15)
    unsmoothed = region_of(members, reference, RegionRule(sigma_cells=0))
    np.testing.assert_allclose(unsmoothed.difference, raw, atol=1e-15)


def test_one_connected_part_with_the_most_excess_and_no_holes():
    members = np.zeros((4, SIDE, SIDE))
    members[:, 5:25, 5:25] = 1.0  # a ring: a large area with little excess per pixel ...
    members[:, 9:21, 9:21] = 0.0
    members[:, 40:46, 40:46] = 10.0  # ... and a small, strong stamp carrying more in total
    reference = np.full((4, SIDE, SIDE), 1.0)
    rule = RegionRule(mass=1.0, sigma_cells=0)
    region = region_of(members, reference, rule)
    assert ndimage.label(region.mask, structure=np.ones((3, 3)))[1] == 1
    assert region.mask[40:46, 40:46].all() and not region.mask[5:25, 5:25].any()
    ring_only = members.copy()
    ring_only[:, 40:46, 40:46] = 0.0
    ring = region_of(ring_only, reference, rule)
    assert ring.mask[5:25, 5:25].all() and ring.n_pixels == 400  # the hole is filled


def test_each_maps_scale_does_not_matter(planted):
    members, reference = planted
    scales = np.random.default_rng(1).uniform(0.1, 30.0, size=(len(members), 1, 1))
    np.testing.assert_array_equal(region_of(members * scales, reference).mask, region_of(members, reference).mask)


def test_negative_relevance_is_left_out(planted):
    members, reference = planted
    flipped = members - 5.0 * np.clip(-members, 0, None)  # more negative relevance, same positive part
    np.testing.assert_array_equal(region_of(flipped, reference).mask, region_of(members, reference).mask)


@pytest.mark.parametrize("side", [64, 57, 20])
def test_upsampled_pooled_maps_pool_back_exactly(side):
    pooled = np.random.default_rng(2).normal(size=(3, GRID, GRID))
    full = upsample_pooled(pooled, (side, side))
    assert full.shape == (3, side, side)
    np.testing.assert_allclose(sum_pool(full, GRID), pooled, atol=1e-12 * np.abs(pooled).max())


def test_a_cluster_that_differs_nowhere_and_bad_rules_are_refused(planted):
    _, reference = planted
    with pytest.raises(ClusterVerificationError, match="no distinctive region"):
        region_of(reference, reference)
    with pytest.raises(ClusterVerificationError, match="one size"):
        distinctive_region(np.zeros((4, 4)), np.zeros((5, 5)), GRID)
    for bad in ({"mass": 0.0}, {"mass": 1.5}, {"sigma_cells": -1.0}):
        with pytest.raises(ClusterVerificationError):
            RegionRule(**bad)
