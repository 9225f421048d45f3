"""The six padding strategies of the padding experiment (thesis L2156): shape, which pixels
change, determinism with a seed, and that crop keeps the centre."""

from __future__ import annotations

import numpy as np
import pytest

from spray.preprocess import SKY_BLUE, Preprocessing
from spray.verification import (
    PaddingExperimentError,
    orientation,
    parse_colour,
    reference_colour_from_images,
    strategies,
    strategy_preprocessings,
)

HEIGHT, WIDTH = 20, 40  # landscape: padded by 10 rows above and below to 40 x 40
COLOUR = (12, 200, 34)


def landscape_image() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)


def preps(longest_side: int = WIDTH, seed: int = 0, mirror_mode: str = "reflect") -> dict[str, Preprocessing]:
    """Strategies on a pipeline that does not resize or crop a 20 x 40 image, so pixels can be compared."""
    base = Preprocessing(resize_to=longest_side, crop_size=longest_side, mean=(0, 0, 0), std=(1, 1, 1))
    return strategy_preprocessings(base, COLOUR, mirror_mode=mirror_mode, seed=seed)


def test_six_strategies_in_the_thesis_order_baseline_first():
    assert [s.name for s in strategies()] == [
        "copy_border",
        "mirror",
        "crop",
        "noise",
        "random_colour",
        "reference_colour",
    ]
    assert list(preps()) == [s.name for s in strategies()]


@pytest.mark.parametrize("name", ["copy_border", "mirror", "noise", "random_colour", "reference_colour"])
def test_padding_strategies_pad_vertically_and_keep_the_image(name):
    image = landscape_image()
    square, mask = preps()[name].square(image, "sample-1")
    assert square.shape == (WIDTH, WIDTH, 3) and square.dtype == np.uint8
    expected_mask = np.zeros((WIDTH, WIDTH), bool)
    expected_mask[:10], expected_mask[30:] = True, True
    np.testing.assert_array_equal(mask, expected_mask)
    np.testing.assert_array_equal(square[10:30], image)  # only the padded pixels are new


def test_what_each_strategy_puts_in_the_padded_area():
    image = landscape_image()
    made = {name: prep.square(image, "sample-1")[0] for name, prep in preps().items()}
    np.testing.assert_array_equal(made["copy_border"][:10], np.broadcast_to(image[0], (10, WIDTH, 3)))
    np.testing.assert_array_equal(made["copy_border"][30:], np.broadcast_to(image[-1], (10, WIDTH, 3)))
    np.testing.assert_array_equal(made["mirror"][:10], image[10:0:-1])  # reflect: without the edge row
    np.testing.assert_array_equal(made["mirror"][30:], image[-2:-12:-1])
    assert np.all(made["reference_colour"][:10] == COLOUR) and np.all(made["reference_colour"][30:] == COLOUR)
    padded = np.concatenate([made["random_colour"][:10], made["random_colour"][30:]]).reshape(-1, 3)
    assert len(np.unique(padded, axis=0)) == 1  # one colour per image
    noise = np.concatenate([made["noise"][:10], made["noise"][30:]]).reshape(-1)
    assert len(np.unique(noise)) > 200 and 100 < noise.mean() < 155  # uniform 0-255


def test_symmetric_mirror_repeats_the_edge_row():
    square, _ = preps(mirror_mode="symmetric")["mirror"].square(landscape_image(), "s")
    np.testing.assert_array_equal(square[:10], landscape_image()[9::-1])


def test_portrait_images_are_padded_horizontally():
    portrait = landscape_image().transpose(1, 0, 2).copy()  # 40 x 20
    square, mask = preps()["noise"].square(portrait, "s")
    assert square.shape == (WIDTH, WIDTH, 3)
    assert mask[:, :10].all() and mask[:, 30:].all() and not mask[:, 10:30].any()
    np.testing.assert_array_equal(square[:, 10:30], portrait)


@pytest.mark.parametrize("name", ["noise", "random_colour"])
def test_random_strategies_are_deterministic_per_seed_and_sample(name):
    image = landscape_image()
    first = preps(seed=3)[name].square(image, "sample-1")[0]
    np.testing.assert_array_equal(first, preps(seed=3)[name].square(image, "sample-1")[0])
    assert not np.array_equal(first, preps(seed=4)[name].square(image, "sample-1")[0])
    assert not np.array_equal(first, preps(seed=3)[name].square(image, "sample-2")[0])


def test_crop_keeps_the_centred_square_and_pads_nothing():
    image = landscape_image()
    square, mask = preps(longest_side=HEIGHT)["crop"].square(image, "s")  # no rescale of the 20 x 20 crop
    np.testing.assert_array_equal(square, image[:, 10:30])
    assert not mask.any()


def test_crop_is_scaled_to_the_model_input_size():
    prep = preps()["crop"]  # 20 x 20 centre, scaled up to 40 x 40
    assert prep(landscape_image(), "s").shape == (3, WIDTH, WIDTH)
    assert not prep.square(landscape_image(), "s")[1].any()


def test_square_images_are_left_unchanged_by_every_strategy():
    image = landscape_image()[:, :HEIGHT].copy()
    for prep in preps(longest_side=HEIGHT).values():
        square, mask = prep.square(image, "s")
        np.testing.assert_array_equal(square, image)
        assert not mask.any()


def test_model_input_size_comes_from_the_models_preprocessing():
    base = Preprocessing(resize_to=64, crop_size=56)
    for prep in strategy_preprocessings(base, COLOUR).values():
        assert prep(landscape_image(), "s").shape == (3, 56, 56)
        assert (prep.resize_to, prep.crop_size, prep.mean) == (64, 56, base.mean)


def test_orientation_names_the_padded_axis():
    assert orientation(20, 40) == "landscape" and orientation(40, 20) == "portrait" and orientation(5, 5) == "square"


def test_parse_colour_accepts_r_g_b_and_rejects_the_rest():
    assert parse_colour("135, 190,235") == (135, 190, 235)
    for bad in ("1,2", "a,b,c", "0,0,256", (1, 2, 3, 4)):
        with pytest.raises(PaddingExperimentError, match="R,G,B"):
            parse_colour(bad)
    with pytest.raises(PaddingExperimentError, match="mirror"):
        strategies("wrap")


def test_reference_colour_is_the_sky_of_the_most_typical_landscape_image():
    def sky(colour, height=40, width=100):
        image = np.zeros((height, width, 3), np.uint8)
        image[:2] = colour  # the top 5% rows: 2 of 40
        image[2, :10] = (255, 255, 255)  # below the top rows: ignored
        return image

    tall = np.full((100, 40, 3), 255, np.uint8)  # portrait: not used
    assert reference_colour_from_images([sky((100, 150, 250)), tall, sky((110, 160, 240)), sky((104, 155, 245))]) == (
        (104, 155, 245),
        3,
    )
    # the per-channel median (0, 0, 125) is a colour no image has; the medoid is one of theirs
    skies = [sky((255, 0, 0)), sky((0, 255, 0)), sky((0, 0, 255)), sky((0, 0, 250))]
    assert reference_colour_from_images(skies) == ((0, 0, 250), 4)
    assert reference_colour_from_images([tall]) == (SKY_BLUE, 0)
