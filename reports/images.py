"""Relevance maps and images as small pictures for HTML: colour map, quantisation, data URIs.

Heatmaps follow the thesis: each map is scaled by its max|R| into [-1, 1] (Eq. 2.62, L942)
and drawn with a diverging colour map symmetric around 0, warm for positive and cold for
negative relevance (matplotlib's ``seismic``, Fig. 2.5a, L936; made exactly symmetric). The same 256-entry table
colours the static pictures here and the hover maps drawn in the browser.
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

#: Quantised code of R = 0; codes 1..255 cover R/max|R| in [-1, 1] with 127 steps per side.
ZERO_CODE = 128

# The warm half of matplotlib's "seismic" (white -> red -> dark red at |t| = 0, 0.5, 1); the
# cold half mirrors it (red and blue swapped), so +R and -R get equally strong colours.
_WARM_T = np.array([0.0, 0.5, 1.0])
_WARM_RGB = np.array([(1.0, 1.0, 1.0), (1.0, 0.0, 0.0), (0.5, 0.0, 0.0)])


def diverging_lut() -> np.ndarray:
    """(256, 3) uint8 colours for the quantised codes: code 128 is white (R = 0), 255 dark red, 1 dark blue."""
    t = np.clip((np.arange(256) - ZERO_CODE) / 127.0, -1.0, 1.0)
    warm = np.stack([np.interp(np.abs(t), _WARM_T, _WARM_RGB[:, c]) for c in range(3)], axis=1)
    rgb = np.where((t < 0)[:, None], warm[:, ::-1], warm)
    return np.round(rgb * 255).astype(np.uint8)


def quantise_maps(maps: np.ndarray) -> np.ndarray:
    """(N, g, g) relevance -> uint8 codes, each map scaled by its own max|R| (L942).

    A map that is zero everywhere stays at the zero code instead of dividing by zero.
    """
    maps = np.asarray(maps, dtype=np.float64)
    scale = np.abs(maps).max(axis=(-2, -1), keepdims=True)
    scaled = np.divide(maps, scale, out=np.zeros_like(maps), where=scale > 0)
    return (np.round(scaled * 127) + ZERO_CODE).astype(np.uint8)


def heatmap_rgb(relevance: np.ndarray) -> np.ndarray:
    """One (g, g) relevance map as a (g, g, 3) uint8 picture in the diverging colour map."""
    return diverging_lut()[quantise_maps(relevance[None])[0]]


def png_data_uri(rgb: np.ndarray) -> str:
    """A lossless PNG data URI; used for heatmaps, whose few pixels compress well losslessly."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def webp_data_uri(rgb: np.ndarray, quality: int = 80) -> str:
    """A lossy WebP data URI for photos: ~1-2 KB at 48 px, a third of a PNG's size."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(buffer, format="WEBP", quality=quality)
    return "data:image/webp;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def shrink(rgb: np.ndarray, longest_side: int) -> np.ndarray:
    """Downscale an (H, W, 3) picture so its longest side is at most ``longest_side`` pixels."""
    height, width = rgb.shape[:2]
    factor = longest_side / max(height, width)
    if factor >= 1:
        return rgb
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return np.asarray(
        Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).resize(size, Image.Resampling.BILINEAR)
    )
