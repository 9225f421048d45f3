"""The demo world: deterministic, photo-like, varied, with per-sample shortcut ground truth."""

import numpy as np
import pytest

from spray.data import open_source
from spray.demo.shortcuts import stamp_watermark
from spray.demo.world import CLASSES, DemoWorld
from spray.errors import SprayError, UnknownClassError


@pytest.fixture(scope="module")
def world():
    return DemoWorld()


@pytest.fixture(scope="module")
def horses(world):
    return [world.load(i) for i in world.ids("test", "horse")]


def test_classes_splits_and_ids(world):
    assert {"aeroplane", "horse", "boat", "car", "bird"} <= set(world.classes) and world.classes == sorted(CLASSES)
    assert len(world.ids("test", "horse")) == 200 and len(world.ids("train", "horse")) == 600
    assert len(world.ids(None)) == 800 * len(CLASSES)
    assert world.labels("test_boat_0003") == frozenset({"boat"})
    with pytest.raises(UnknownClassError, match="aeroplane, bird, boat"):
        world.ids("test", "cow")
    with pytest.raises(SprayError, match="not a demo sample id"):
        world.load("test_boat_9999")


def test_images_are_a_pure_function_of_seed_and_id(world):
    first = world.load("train_car_0017")
    again = open_source(world.spec()).load("train_car_0017")
    assert np.array_equal(first.image, again.image)
    assert not np.array_equal(first.image, DemoWorld(seed=1).load("train_car_0017").image)
    assert world.fingerprint() == DemoWorld().fingerprint() != DemoWorld(seed=1).fingerprint()


def test_images_vary_in_size_and_orientation(world):
    shapes = [world.load(i).image.shape for c in CLASSES for i in world.ids("test", c)[:12]]
    assert all(100 <= max(h, w) <= 200 and d == 3 for h, w, d in shapes)
    assert sum(w > h for h, w, _ in shapes) > 0.3 * len(shapes)
    assert sum(h > w for h, w, _ in shapes) > 0.15 * len(shapes)


def test_images_are_photo_like_not_flat(world):
    images = [world.load(i).image.astype(float) for i in world.ids("test", "dog")[:10]]
    assert all(len(np.unique(image.reshape(-1, 3), axis=0)) > 1000 for image in images)  # noise, textures
    roughness = [np.abs(np.diff(image, axis=1)).mean() for image in images]
    assert np.median(roughness) < 25  # but locally smooth like a photo (white noise: ~85)


def test_about_a_fifth_of_horses_carry_the_watermark_at_the_bottom_left(horses):
    marked = [s for s in horses if s.annotations["shortcut"]]
    assert 0.12 <= len(marked) / len(horses) <= 0.32
    for sample in marked:
        mask = sample.annotations["shortcut_mask"]
        rows, cols = np.nonzero(mask)
        height, width = mask.shape
        assert (
            rows.min() > height * 0.55
            and cols.min() < width * 0.15
            and cols.max() < width * 0.8
            and sample.annotations["shortcut_kind"] == "watermark"
        )
    plain = next(s for s in horses if not s.annotations["shortcut"])
    assert not plain.annotations["shortcut_mask"].any()


def test_watermark_stamp_changes_only_its_box(world):
    image = world.load("test_car_0002").image
    stamped, mask = stamp_watermark(image)
    changed = (stamped != image).any(axis=2)
    assert changed.any() and not changed[~mask].any() and mask.mean() < 0.15


def test_a_minority_of_aeroplanes_are_distant_wide_shots_on_uniform_sky(world):
    planes = [world.load(i) for i in world.ids("test", "aeroplane")]
    marked = [s for s in planes if s.annotations["shortcut"]]
    assert 0.15 < len(marked) / len(planes) < 0.45  # a minority cluster, as in the thesis (Fig. 6.7)
    for sample in marked:
        image, mask = sample.image.astype(float), sample.annotations["shortcut_mask"]
        assert sample.annotations["shortcut_kind"] == "sky_border"
        assert image.shape[1] > 1.45 * image.shape[0] and mask[0].all() and mask[-1].all()
        border_rows = np.concatenate([image[:3], image[-3:]])  # the rows edge padding repeats
        assert border_rows.std(axis=1).max() < 8  # uniform along the row up to sensor noise
    for sample in (s for s in planes if not s.annotations["shortcut"]):
        assert not sample.annotations["shortcut_mask"].any()
    others = [world.load(i) for c in ("car", "cat", "horse") for i in world.ids("test", c)[:20]]
    landscape = [s.image.shape[1] > s.image.shape[0] for s in others]
    assert 0.3 < np.mean(landscape) < 0.8 and not any(s.annotations["shortcut_kind"] == "sky_border" for s in others)


def test_a_minority_of_dogs_carry_a_colour_cast_flagged_over_the_whole_image(world):
    dogs = [world.load(i) for i in world.ids("test", "dog")]
    tinted = [s for s in dogs if s.annotations["shortcut"]]
    assert 0.15 < len(tinted) / len(dogs) < 0.45
    assert all(s.annotations["shortcut_kind"] == "tint" and s.annotations["shortcut_mask"].all() for s in tinted)

    def green_deficit(sample) -> float:  # red and blue over green: a purple cast raises it
        red, green, blue = sample.image.reshape(-1, 3).astype(float).mean(axis=0)
        return (red + blue) / 2 - green

    plain = [s for s in dogs if not s.annotations["shortcut"]]
    assert np.median([green_deficit(s) for s in tinted]) > np.median([green_deficit(s) for s in plain]) + 15
    others = [world.load(i) for c in CLASSES if c != "dog" for i in world.ids("test", c)[:20]]
    assert not any(s.annotations["shortcut_kind"] == "tint" for s in others)


def test_boats_float_on_water_and_the_mask_is_the_water(world):
    boats = [world.load(i) for i in world.ids("test", "boat")[:30]]
    assert sum(s.annotations["shortcut"] for s in boats) >= 25
    for sample in boats:
        if sample.annotations["shortcut"]:
            mask = sample.annotations["shortcut_mask"]
            _, xmin, _ymin, xmax, ymax = sample.annotations["boxes"][0]
            assert mask[-1].any() and not mask[0].any()  # water at the bottom, not at the top
            assert mask[ymax - 1, xmin:xmax].sum() < xmax - xmin  # the hull is not water


def test_boxes_enclose_the_object(world):
    sample = world.load("test_horse_0005")
    name, xmin, ymin, xmax, ymax = sample.annotations["boxes"][0]
    height, width = sample.image.shape[:2]
    assert name == "horse" and 0 <= xmin < xmax <= width and 0 <= ymin < ymax <= height
