"""The thesis preprocessing (L2141, L2434): pad modes, determinism, crop, normalisation."""

import numpy as np
import pytest

from spray.errors import SprayError
from spray.preprocess import PAD_MODES, SKY_BLUE, Preprocessing, centre_crop, pad_to_square


@pytest.fixture
def landscape():
    return np.random.default_rng(0).integers(0, 256, (20, 32, 3), dtype=np.uint8)


@pytest.mark.parametrize("mode", [m for m in PAD_MODES if m != "crop"])
def test_padding_keeps_the_image_centred_and_marks_only_new_pixels(landscape, mode):
    square, mask = pad_to_square(landscape, mode, rng=np.random.default_rng(1))
    assert square.shape == (32, 32, 3) and square.dtype == np.uint8
    assert mask.shape == (32, 32) and mask.sum() == 32 * 32 - 20 * 32
    assert np.array_equal(square[6:26], landscape)  # 12 padded rows split 6 above, 6 below
    assert mask[:6].all() and mask[26:].all() and not mask[6:26].any()


def test_edge_repeats_the_border_rows(landscape):
    square, _ = pad_to_square(landscape, "edge")
    assert (square[:6] == landscape[0]).all() and (square[26:] == landscape[-1]).all()


def test_reflect_mirrors_without_and_symmetric_with_the_border_row(landscape):
    reflect, _ = pad_to_square(landscape, "reflect")
    symmetric, _ = pad_to_square(landscape, "symmetric")
    assert np.array_equal(reflect[5], landscape[1]) and np.array_equal(reflect[0], landscape[6])
    assert np.array_equal(symmetric[5], landscape[0]) and np.array_equal(symmetric[0], landscape[5])


def test_constant_fills_the_colour_and_defaults_to_sky_blue(landscape):
    square, mask = pad_to_square(landscape, "constant", colour=(1, 2, 3))
    assert (square[mask] == (1, 2, 3)).all()
    square, mask = pad_to_square(landscape, "constant")
    assert (square[mask] == SKY_BLUE).all()


def test_random_colour_is_one_colour_and_noise_is_many(landscape):
    single, mask = pad_to_square(landscape, "random_colour", rng=np.random.default_rng(3))
    assert len(np.unique(single[mask], axis=0)) == 1
    noise, mask = pad_to_square(landscape, "noise", rng=np.random.default_rng(3))
    values = noise[mask]
    assert len(np.unique(values, axis=0)) > 0.9 * len(values) and values.min() < 10 and values.max() > 245


def test_portrait_is_padded_left_and_right(landscape):
    portrait = landscape.transpose(1, 0, 2)
    square, mask = pad_to_square(portrait, "edge")
    assert mask[:, :6].all() and mask[:, 26:].all() and not mask[:, 6:26].any()
    assert (square[:, :6] == portrait[:, :1]).all()


def test_crop_keeps_the_largest_centred_square(landscape):
    square, mask = pad_to_square(landscape, "crop")
    assert np.array_equal(square, landscape[:, 6:26]) and not mask.any()


def test_random_modes_are_deterministic_per_key_and_seed(landscape):
    noise = Preprocessing(longest_side=32, pad_mode="noise", crop_size=32)
    first = noise.to_uint8(landscape, "sample-a")
    assert np.array_equal(first, noise.to_uint8(landscape, "sample-a"))
    assert not np.array_equal(first, noise.to_uint8(landscape, "sample-b"))
    reseeded = Preprocessing(longest_side=32, pad_mode="noise", crop_size=32, seed=1)
    assert not np.array_equal(first, reseeded.to_uint8(landscape, "sample-a"))
    edge = Preprocessing(longest_side=32, pad_mode="edge", crop_size=32).to_uint8(landscape, "sample-a")
    _, mask = pad_to_square(landscape, "edge")
    assert np.array_equal(first[~mask], edge[~mask])  # only padded pixels change between modes


def test_pipeline_resizes_longest_side_then_crops_the_centre():
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, :, 0] = np.arange(200, dtype=np.uint8)[None, :]  # a horizontal ramp
    prep = Preprocessing(longest_side=100, pad_mode="edge", crop_size=80)
    square, mask = prep.square(image, "k")
    assert square.shape == (100, 100, 3) and mask[:25].all() and not mask[25:75].any()
    crop = prep.to_uint8(image, "k")
    assert crop.shape == (80, 80, 3) and np.array_equal(crop, centre_crop(square, 80))
    assert np.array_equal(centre_crop(square, 80), square[10:90, 10:90])


def test_crop_mode_scales_the_centre_square_up():
    image = np.zeros((50, 100, 3), np.uint8)
    image[:, 25:75] = 200  # the centred square is uniformly bright
    crop = Preprocessing(longest_side=64, pad_mode="crop", crop_size=64).to_uint8(image, "k")
    assert crop.shape == (64, 64, 3) and (crop[2:-2, 2:-2] == 200).all()


def test_normalisation_matches_the_formula(landscape):
    prep = Preprocessing(longest_side=32, crop_size=32, mean=(0.1, 0.2, 0.3), std=(0.5, 0.25, 2.0))
    expected_pixels = prep.to_uint8(landscape, "k")
    out = prep(landscape, "k")
    assert out.shape == (3, 32, 32) and out.dtype == np.float32
    for channel, (m, s) in enumerate(zip(prep.mean, prep.std)):
        np.testing.assert_allclose(out[channel], (expected_pixels[:, :, channel] / 255.0 - m) / s, rtol=1e-5, atol=1e-6)


def test_every_step_is_recorded_and_round_trips():
    prep = Preprocessing(longest_side=72, pad_mode="constant", crop_size=64, colour=(9, 8, 7), seed=3)
    record = prep.to_dict()
    assert record == {
        "longest_side": 72, "pad_mode": "constant", "crop_size": 64, "mean": list(prep.mean),
        "std": list(prep.std), "colour": [9, 8, 7], "seed": 3,
    }
    assert Preprocessing.from_dict(record) == prep
    assert prep.with_pad_mode("noise").pad_mode == "noise"


def test_thesis_defaults():
    prep = Preprocessing()
    assert (prep.longest_side, prep.pad_mode, prep.crop_size) == (256, "edge", 227)  # L2141


@pytest.mark.parametrize(
    "kwargs", [{"pad_mode": "wrap"}, {"crop_size": 300}, {"crop_size": 0}]
)
def test_bad_parameters_raise_a_clear_error(kwargs):
    with pytest.raises(SprayError):
        Preprocessing(**kwargs)
    with pytest.raises(SprayError, match="unknown preprocessing parameters"):
        Preprocessing.from_dict({"pad": "edge"})
