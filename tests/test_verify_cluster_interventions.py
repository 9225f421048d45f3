"""The cluster test's interventions: only the region's pixels change, the harmonic fill matches
Laplace's equation (exact on linear ramps, equal to a slow Jacobi iteration, within the boundary's
range), pastes copy the donor, and control regions stay in the frame, off the region, seeded."""

from __future__ import annotations

import numpy as np
import pytest

from spray.verification.cluster_interventions import control_offset, control_offsets, inpaint, shift_mask, transplant
from spray.verification.cluster_region import ClusterVerificationError

SIDE = 32


def image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(SIDE, SIDE, 3), dtype=np.uint8)


def box(top: int, left: int, height: int, width: int) -> np.ndarray:
    mask = np.zeros((SIDE, SIDE), bool)
    mask[top : top + height, left : left + width] = True
    return mask


def blob() -> np.ndarray:
    """An irregular region touching the left edge, with a diagonal arm."""
    mask = box(20, 0, 6, 9)
    for i in range(8):
        mask[12 + i, 8 + i] = True
    return mask


@pytest.mark.parametrize("mask", [box(10, 10, 8, 12), blob()], ids=["box", "blob at the edge"])
def test_inpaint_changes_only_the_region(mask):
    pixels = image()
    filled = inpaint(pixels, mask)
    assert filled.dtype == np.uint8 and filled.shape == pixels.shape
    np.testing.assert_array_equal(filled[~mask], pixels[~mask])
    assert (filled[mask] != pixels[mask]).any()


def test_inpaint_reproduces_a_linear_ramp():
    """Linear functions are harmonic: the fill must continue a ramp exactly (up to rounding)."""
    yy, xx = np.mgrid[:SIDE, :SIDE]
    ramp = np.stack([3 * yy + 2 * xx, 200 - 4 * xx, 5 * yy], axis=-1).astype(np.uint8)
    mask = box(8, 6, 12, 14)
    np.testing.assert_array_equal(inpaint(np.where(mask[..., None], 0, ramp).astype(np.uint8), mask), ramp)


def test_inpaint_equals_a_slow_jacobi_iteration_and_keeps_the_boundary_range():
    pixels, mask = image(1), blob()
    values = pixels.astype(np.float64)
    values[mask] = 128.0
    ys, xs = np.nonzero(mask)
    for _ in range(5000):  # u <- mean of the in-frame 4-neighbours, on the region only
        padded = np.pad(values, ((1, 1), (1, 1), (0, 0)), constant_values=np.nan)
        neighbours = np.stack([padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]])
        values[ys, xs] = np.nanmean(neighbours, axis=0)[ys, xs]
    filled = inpaint(pixels, mask)
    assert np.abs(filled[mask].astype(float) - values[mask]).max() <= 0.5 + 1e-6
    ring = np.zeros_like(mask)
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        ring |= shift_mask(mask, (dy, dx))
    ring &= ~mask
    assert filled[mask].min(axis=0).tolist() >= pixels[ring].min(axis=0).tolist()  # maximum principle
    assert filled[mask].max(axis=0).tolist() <= pixels[ring].max(axis=0).tolist()


def test_inpaint_refuses_the_whole_frame_and_misfits():
    with pytest.raises(ClusterVerificationError, match="whole input"):
        inpaint(image(), np.ones((SIDE, SIDE), bool))
    with pytest.raises(ClusterVerificationError, match="does not fit"):
        inpaint(image(), np.ones((4, 4), bool))
    np.testing.assert_array_equal(inpaint(image(), np.zeros((SIDE, SIDE), bool)), image())


def test_transplant_copies_the_donor_inside_only():
    target, donor, mask = image(2), image(3), blob()
    pasted = transplant(target, donor, mask)
    np.testing.assert_array_equal(pasted[mask], donor[mask])
    np.testing.assert_array_equal(pasted[~mask], target[~mask])
    np.testing.assert_array_equal(target, image(2))  # the inputs are not changed
    with pytest.raises(ClusterVerificationError, match="input size"):
        transplant(target, donor[:16], mask)


@pytest.mark.parametrize("offset", [(3, -2), (-5, 7), (0, 1), (-20, 0)])
def test_shift_mask_moves_the_region(offset):
    mask = box(22, 9, 5, 6)
    expected = np.roll(mask, offset, axis=(0, 1))  # no pixel crosses the frame for these offsets
    np.testing.assert_array_equal(shift_mask(mask, offset), expected)
    assert shift_mask(mask, (0, 40)).sum() == 0


def brute_overlaps(mask: np.ndarray) -> dict[tuple[int, int], int]:
    """Overlap with the region of every in-frame move but none, by moving it."""
    found = {}
    for dy in range(-SIDE, SIDE):
        for dx in range(-SIDE, SIDE):
            moved = shift_mask(mask, (dy, dx))
            if (dy or dx) and moved.sum() == mask.sum():
                found[(dy, dx)] = int((moved & mask).sum())
    return found


@pytest.mark.parametrize("mask", [blob(), box(2, 2, 20, 25)], ids=["small", "large"])
def test_control_offsets_are_in_frame_and_overlap_least(mask):
    overlaps = brute_overlaps(mask)
    least = min(overlaps.values())
    assert {tuple(o) for o in control_offsets(mask).tolist()} == {o for o, v in overlaps.items() if v == least}
    assert (least == 0) == (mask.sum() < 200)  # the small region always finds a free place


def test_control_offset_is_seeded_and_a_spanning_region_is_refused():
    mask = blob()
    draws = [control_offset(mask, np.random.default_rng(7)) for _ in range(2)]
    assert draws[0] == draws[1]
    assert len({control_offset(mask, np.random.default_rng(seed)) for seed in range(20)}) > 5
    with pytest.raises(ClusterVerificationError, match="whole input"):
        control_offset(np.ones((SIDE, SIDE), bool), np.random.default_rng(0))
