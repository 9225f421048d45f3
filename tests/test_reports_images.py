"""Heatmap colours and quantisation follow the thesis: symmetric diverging map, scaled by max|R|."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from reports.images import ZERO_CODE, diverging_lut, heatmap_rgb, png_data_uri, quantise_maps, shrink, webp_data_uri


def test_colour_table_is_white_at_zero_red_for_positive_blue_for_negative():
    lut = diverging_lut().astype(int)
    assert tuple(lut[ZERO_CODE]) == (255, 255, 255)
    assert lut[255][0] > lut[255][2] and lut[200][0] > lut[200][2]  # warm for R > 0 (L936)
    assert lut[1][2] > lut[1][0] and lut[60][2] > lut[60][0]  # cold for R < 0


def test_colour_table_is_symmetric_around_zero():
    """+R and -R get mirrored colours: red and blue channels swap (seismic is symmetric)."""
    lut = diverging_lut().astype(int)
    for step in range(1, 128):
        plus, minus = lut[ZERO_CODE + step], lut[ZERO_CODE - step]
        assert (plus[0], plus[1], plus[2]) == (minus[2], minus[1], minus[0])


def test_quantisation_scales_each_map_by_its_max_abs():
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(5, 7, 9)) * np.array([1e-3, 1, 10, 1e4, 0.5])[:, None, None]
    codes = quantise_maps(maps)
    expected = np.round(maps / np.abs(maps).max(axis=(1, 2), keepdims=True) * 127) + 128  # Eq. 2.62, L942
    np.testing.assert_array_equal(codes, expected)
    assert codes.dtype == np.uint8
    # the extreme of every map lands on the end of the scale, whatever its magnitude
    assert set(np.abs(codes.astype(int) - ZERO_CODE).max(axis=(1, 2))) == {127}


def test_all_zero_map_is_white_not_nan():
    codes = quantise_maps(np.zeros((1, 4, 4)))
    assert (codes == ZERO_CODE).all()
    assert (heatmap_rgb(np.zeros((4, 4))) == 255).all()


def test_png_data_uri_decodes_to_the_same_pixels():
    rgb = heatmap_rgb(np.linspace(-1, 1, 400).reshape(20, 20))
    uri = png_data_uri(rgb)
    assert uri.startswith("data:image/png;base64,")
    decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"))
    np.testing.assert_array_equal(decoded, rgb)


def test_webp_thumbnail_is_small():
    rng = np.random.default_rng(0)
    photo = np.clip(rng.normal(120, 30, size=(300, 400, 3)), 0, 255).astype(np.uint8)
    thumbnail = shrink(photo, 48)
    assert thumbnail.shape == (36, 48, 3)
    assert len(webp_data_uri(thumbnail)) < 6000
