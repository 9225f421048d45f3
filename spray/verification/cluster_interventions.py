"""The two interventions of the cluster test and their controls, on the pixels the model sees.

All work on (S, S, 3) uint8 images as the run's own pipeline hands them to the model
(:meth:`spray.preprocess.Preprocessing.model_view`), before normalisation, and change the
pixels inside a mask only.

- **remove** fills the region by *harmonic inpainting* from its surroundings
  (:func:`inpaint`): each filled pixel is the mean of its four neighbours, with the pixels
  around the region held fixed (Laplace's equation with Dirichlet boundary). It uses no
  pixel inside the region, so nothing of the artefact survives (a blur keeps its brightness
  and outline), and it takes the local background of *this* image, where the class's mean
  background would paste an average that sits badly in any one image and is itself a
  pattern the model may react to. The fill is smooth, not textured; the control removes a
  region of the same shape elsewhere with the same fill, so what smoothness alone does to
  the score is in the control too.
- **remove control**: the same region shape moved to a random place (:func:`control_offset`)
  that does not overlap the region where possible, and filled the same way.
- **transplant** pastes a member image's pixels inside the region into another image at the
  same place (:func:`transplant`); its control pastes the same region cut from an image of
  the class outside the cluster, so both put class-typical content there and only what the
  cluster has at that place differs.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import splu

from spray.verification.cluster_region import ClusterVerificationError

_NEIGHBOURS = ((-1, 0), (1, 0), (0, -1), (0, 1))


def inpaint(pixels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``pixels`` (H, W, C) uint8 with the ``mask`` (H, W) pixels filled harmonically from around them.

    Every filled pixel equals the mean of its 4-neighbours inside the image; the pixels
    outside the mask are unchanged. A part of the mask that touches no pixel outside it (the
    whole image) has nothing to fill from and is an error.
    """
    pixels, mask = np.asarray(pixels), np.asarray(mask, dtype=bool)
    if pixels.shape[:2] != mask.shape:
        raise ClusterVerificationError(f"an image of {pixels.shape[:2]} pixels does not fit a region of {mask.shape}")
    if not mask.any():
        return pixels.copy()
    if mask.all():
        raise ClusterVerificationError("the region covers the whole input, so there is nothing to inpaint it from")
    height, width = mask.shape
    ys, xs = np.nonzero(mask)
    index = np.full(mask.shape, -1, dtype=np.int64)
    index[ys, xs] = np.arange(ys.size)
    values = pixels.reshape(height, width, -1).astype(np.float64)
    rows, cols = [], []
    degree = np.zeros(ys.size)
    rhs = np.zeros((ys.size, values.shape[2]))
    for dy, dx in _NEIGHBOURS:
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
        degree += inside
        unknown = inside.copy()
        unknown[inside] = mask[ny[inside], nx[inside]]
        known = inside & ~unknown
        rows.append(np.flatnonzero(unknown))
        cols.append(index[ny[unknown], nx[unknown]])
        rhs[known] += values[ny[known], nx[known]]
    system = sparse.csc_matrix(
        (
            np.concatenate([degree, *[-np.ones(r.size) for r in rows]]),
            (np.concatenate([np.arange(ys.size), *rows]), np.concatenate([np.arange(ys.size), *cols])),
        ),
        shape=(ys.size, ys.size),
    )
    try:
        filled = splu(system).solve(rhs)
    except RuntimeError:  # singular: a closed part of the mask (cannot happen unless the mask is everything)
        raise ClusterVerificationError("the region has a part with no pixel around it to inpaint from") from None
    out = pixels.copy()
    out[ys, xs] = np.clip(np.rint(filled), 0, 255).astype(pixels.dtype).reshape(out[ys, xs].shape)
    return out


def transplant(target: np.ndarray, donor: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``target`` with the ``donor``'s pixels inside ``mask`` pasted at the same place."""
    target, donor = np.asarray(target), np.asarray(donor)
    if target.shape != donor.shape or target.shape[:2] != np.shape(mask):
        raise ClusterVerificationError(
            f"cannot paste a {donor.shape[:2]} image's region of {np.shape(mask)} into a "
            f"{target.shape[:2]} image; every input must have the model's input size"
        )
    out = target.copy()
    out[mask] = donor[mask]
    return out


def shift_mask(mask: np.ndarray, offset: tuple[int, int]) -> np.ndarray:
    """``mask`` moved by ``offset`` = (rows, columns); pixels moved out of the frame are dropped."""
    dy, dx = offset
    height, width = mask.shape
    out = np.zeros_like(mask)
    if abs(dy) >= height or abs(dx) >= width:
        return out
    out[max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)] = mask[
        max(-dy, 0) : height - max(dy, 0), max(-dx, 0) : width - max(dx, 0)
    ]
    return out


def control_offsets(mask: np.ndarray) -> np.ndarray:
    """(M, 2) every offset that keeps the whole region inside the frame, moves it, and overlaps the
    region the least (no overlap when there is room). Empty when the region cannot move at all."""
    ys, xs = np.nonzero(mask)
    height, width = mask.shape
    dys = np.arange(-ys.min(), height - ys.max())
    dxs = np.arange(-xs.min(), width - xs.max())
    offsets = np.array([(dy, dx) for dy in dys for dx in dxs if dy or dx], dtype=np.int64).reshape(-1, 2)
    if offsets.size == 0:
        return offsets
    # overlap of the region with itself moved by (dy, dx): the region's autocorrelation, via FFT
    spectrum = np.fft.rfft2(mask.astype(np.float64), s=(2 * height, 2 * width))
    correlation = np.fft.irfft2(spectrum * np.conj(spectrum), s=(2 * height, 2 * width))
    overlap = np.rint(correlation[offsets[:, 0] % (2 * height), offsets[:, 1] % (2 * width)]).astype(np.int64)
    return offsets[overlap == overlap.min()]


def control_offset(mask: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
    """One random offset of :func:`control_offsets` (uniform), drawn with ``rng``."""
    offsets = control_offsets(mask)
    if len(offsets) == 0:
        raise ClusterVerificationError(
            "the region spans the whole input, so no region of the same size can be placed elsewhere as a control"
        )
    dy, dx = offsets[int(rng.integers(len(offsets)))]
    return int(dy), int(dx)
