"""The thesis preprocessing (L2141, L2434): pad modes, determinism, crop, normalisation."""

import numpy as np
import pytest

from spray.errors import SprayError
from spray.preprocess import (
    PAD_MODES,
    PRESETS,
    SKY_BLUE,
    Preprocessing,
    centre_crop,
    pad_to_square,
    resolve_preprocessing,
)


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
    noise = Preprocessing(resize_to=32, pad_mode="noise", crop_size=32)
    first = noise.to_uint8(landscape, "sample-a")
    assert np.array_equal(first, noise.to_uint8(landscape, "sample-a"))
    assert not np.array_equal(first, noise.to_uint8(landscape, "sample-b"))
    reseeded = Preprocessing(resize_to=32, pad_mode="noise", crop_size=32, seed=1)
    assert not np.array_equal(first, reseeded.to_uint8(landscape, "sample-a"))
    edge = Preprocessing(resize_to=32, pad_mode="edge", crop_size=32).to_uint8(landscape, "sample-a")
    _, mask = pad_to_square(landscape, "edge")
    assert np.array_equal(first[~mask], edge[~mask])  # only padded pixels change between modes


def test_pipeline_resizes_longest_side_then_crops_the_centre():
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, :, 0] = np.arange(200, dtype=np.uint8)[None, :]  # a horizontal ramp
    prep = Preprocessing(resize_to=100, pad_mode="edge", crop_size=80)
    square, mask = prep.square(image, "k")
    assert square.shape == (100, 100, 3) and mask[:25].all() and not mask[25:75].any()
    crop = prep.to_uint8(image, "k")
    assert crop.shape == (80, 80, 3) and np.array_equal(crop, centre_crop(square, 80))
    assert np.array_equal(centre_crop(square, 80), square[10:90, 10:90])


def test_crop_mode_scales_the_centre_square_up():
    image = np.zeros((50, 100, 3), np.uint8)
    image[:, 25:75] = 200  # the centred square is uniformly bright
    crop = Preprocessing(resize_to=64, pad_mode="crop", crop_size=64).to_uint8(image, "k")
    assert crop.shape == (64, 64, 3) and (crop[2:-2, 2:-2] == 200).all()


def test_normalisation_matches_the_formula(landscape):
    prep = Preprocessing(resize_to=32, crop_size=32, mean=(0.1, 0.2, 0.3), std=(0.5, 0.25, 2.0))
    expected_pixels = prep.to_uint8(landscape, "k")
    out = prep(landscape, "k")
    assert out.shape == (3, 32, 32) and out.dtype == np.float32
    for channel, (m, s) in enumerate(zip(prep.mean, prep.std, strict=True)):
        np.testing.assert_allclose(out[channel], (expected_pixels[:, :, channel] / 255.0 - m) / s, rtol=1e-5, atol=1e-6)


def test_every_step_is_recorded_and_round_trips():
    prep = Preprocessing(resize_to=72, pad_mode="constant", crop_size=64, colour=(9, 8, 7), seed=3)
    record = prep.to_dict()
    assert record == {
        "resize": "longest",
        "resize_to": 72,
        "pad_mode": "constant",
        "crop_size": 64,
        "channels": "rgb",
        "mean": list(prep.mean),
        "std": list(prep.std),
        "value_range": [0.0, 1.0],
        "colour": [9, 8, 7],
        "seed": 3,
    }
    assert Preprocessing.from_dict(record) == prep
    older = {"longest_side": 72, "pad_mode": "constant", "crop_size": 64, "colour": [9, 8, 7], "seed": 3}
    assert Preprocessing.from_dict(older) == prep  # records of earlier spray versions
    assert prep.with_pad_mode("noise").pad_mode == "noise"


def test_thesis_defaults():
    prep = Preprocessing()
    assert (prep.resize, prep.resize_to, prep.pad_mode, prep.crop_size) == ("longest", 256, "edge", 227)  # L2141
    assert PRESETS["thesis"] == prep


@pytest.mark.parametrize(
    "kwargs",
    [
        {"pad_mode": "wrap"},
        {"crop_size": 300},
        {"crop_size": 0},
        {"channels": "bgr"},
        {"resize": "width"},
        {"mean": (0.5, 0.5)},
        {"std": (0.0,)},
        {"value_range": (1, 0)},
        {"channels": "grey", "mean": (1, 2, 3)},
    ],
)
def test_bad_parameters_raise_a_clear_error(kwargs):
    with pytest.raises(SprayError):
        Preprocessing(**kwargs)
    with pytest.raises(SprayError, match="unknown preprocessing parameters"):
        Preprocessing.from_dict({"pad": "edge"})


# ---- pipelines as settings (presets, channels, value range, input size) --------------------


def test_torchvision_preset_is_resize_shorter_side_then_centre_crop():
    image = np.random.default_rng(2).integers(0, 256, (300, 450, 3), dtype=np.uint8)
    prep = PRESETS["torchvision"]
    seen, mask = prep.model_view(image, "k")
    from PIL import Image

    resized = np.asarray(Image.fromarray(image).resize((384, 256), Image.BILINEAR))  # shorter side 256
    top, left = (256 - 224) // 2, (384 - 224) // 2
    assert np.array_equal(seen, resized[top : top + 224, left : left + 224]) and not mask.any()


def test_native_preset_keeps_the_image_as_stored_scaled_to_unit_range():
    image = np.random.default_rng(3).integers(0, 256, (28, 28, 3), dtype=np.uint8)
    x = PRESETS["native"](image, "k")
    assert x.shape == (3, 28, 28)
    np.testing.assert_allclose(x, image.transpose(2, 0, 1) / 255.0, atol=1e-6)


def test_grey_channels_use_the_luma_of_pil_and_one_input_channel():
    from PIL import Image

    image = np.random.default_rng(4).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    prep = PRESETS["native"].replace(channels="grey")
    x = prep(image, "k")
    luma = np.asarray(Image.fromarray(image).convert("L"), np.float32) / 255.0
    assert x.shape == (1, 20, 20)
    np.testing.assert_allclose(x[0], luma, atol=1 / 255)  # PIL rounds to whole grey levels
    assert prep.to_pixels(x).shape == (20, 20, 3)


def test_value_range_and_statistics_are_applied_in_order():
    image = np.full((4, 4, 3), 255, np.uint8)
    prep = PRESETS["native"].replace(value_range=(-1.0, 1.0), mean=(0.5,), std=(2.0,))
    np.testing.assert_allclose(prep(image, "k"), (1.0 - 0.5) / 2.0)
    np.testing.assert_array_equal(prep.to_pixels(prep(image, "k")), image)


def test_an_image_smaller_than_the_input_is_padded_up_and_a_larger_one_cropped():
    small = np.random.default_rng(5).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    prep = PRESETS["native"].replace(crop_size=16)
    seen, mask = prep.model_view(small, "k")
    assert seen.shape == (16, 16, 3) and mask.sum() == 16 * 16 - 10 * 12
    big = np.random.default_rng(6).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    assert np.array_equal(prep.model_view(big, "k")[0], big[2:18, 2:18])


def test_a_request_resolves_against_the_model_s_own_pipeline_and_channels():
    demo_like = Preprocessing(resize_to=72, crop_size=64)
    assert resolve_preprocessing(None, demo_like, 3) == demo_like
    grey = resolve_preprocessing({"preset": "thesis"}, demo_like, model_channels=1)
    assert grey.channels == "grey" and grey.mean == (pytest.approx(np.mean(PRESETS["thesis"].mean)),)
    sized = resolve_preprocessing({"input_size": 32}, demo_like, 3)
    assert (sized.crop_size, sized.resize_to) == (32, 36)  # the 72/64 ratio is kept
    explicit = resolve_preprocessing({"preset": "native", "channels": "rgb", "mean": "0.1,0.2,0.3"}, demo_like, 1)
    assert explicit.channels == "rgb" and explicit.mean == (0.1, 0.2, 0.3)
    assert resolve_preprocessing(sized.to_dict(), PRESETS["thesis"], 1) == sized  # a resolved record stays


def test_unknown_preset_or_step_is_a_clear_error():
    with pytest.raises(SprayError, match="unknown preprocessing preset 'imagenet'"):
        resolve_preprocessing({"preset": "imagenet"}, Preprocessing())
    with pytest.raises(SprayError, match=r"unknown key\(s\) \['crop'\]"):
        resolve_preprocessing({"crop": 3}, Preprocessing())
