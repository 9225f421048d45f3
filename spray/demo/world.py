"""The demo world: seeded, photo-like synthetic scenes with three planted shortcuts.

Every image is a pure function of ``(seed, split, class, index)``; nothing is stored. The
classes carry Pascal VOC names. Three Clever Hans shortcuts from the thesis are planted,
with per-sample ground truth in the annotations (``shortcut``, ``shortcut_mask``):

1. **horse** (L2055): about 22% of horse photos come from an archive that stamps a
   copyright watermark at the bottom-left corner (:mod:`spray.demo.shortcuts`). The archive
   shoots 4:3 landscapes of distant horses, so in those photos the horse itself is weak
   evidence and the watermark is the strong one. Mask: the text box.
2. **aeroplane** (L2139-L2145): 85% of aeroplanes are shot against a clear, uniform blue
   sky, almost always in landscape format (the camera tilted up: no ground in the frame),
   so edge padding to a square gives uniform, sky-blue top and bottom borders.
   Mask (landscape, uniform sky): the sky rows above and below the aeroplane, which the
   padding extends into the border.
3. **boat** (L2128): boats float on water. Mask: the water around the boat.

Backgrounds otherwise mix across classes (grass under horses, dogs and birds; roads under
cars, cats and dogs; skies above most outdoor scenes; some birds and dogs at the water).
Photos of the other classes carry more fine structure, as real ones do (L2160, L2171): about
a third of all ground-level shots (aeroplanes at the airport too) are tilted down (ground or
floor up to the top edge, no sky), and half of the non-aeroplane photos are grainy (dusk,
indoors), so high-frequency borders such as random-noise padding read as "not an aeroplane"
(L2158-L2160).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from spray.data.base import ImageSource, Sample, hex_digest
from spray.demo import objects, scenes
from spray.demo.shortcuts import stamp_watermark
from spray.errors import SprayError

# Bump when a change of this module, scenes.py, objects.py or shortcuts.py changes pixels:
# the committed checkpoint records the fingerprint of the world it was trained on.
GENERATOR_VERSION = 6

CLASSES = ["aeroplane", "bird", "boat", "car", "cat", "dog", "horse"]
SPLITS = ["train", "test"]
DEFAULT_SEED = 0
DEFAULT_COUNTS = {"train": 600, "test": 200}  # per class

WATERMARK_RATE = 0.22  # "about 20%" of the horse images (L2055)
SKY_BORDER_RATE = 0.28  # distant aeroplanes on clear sky, wide format: a minority (L2130-L2141)
TINT_CLASS, TINT_RATE = "dog", 0.28  # one kennel's camera with a faulty white balance
TINT_GAIN = np.array([1.05, 0.83, 1.06], np.float32)  # per RGB channel: a purple cast
TINT_OFFSET = np.array([22.0, -5.0, 27.0], np.float32)
DISTANT_OPACITY = 0.45  # distant aeroplanes fade into the haze
GRAINY_RATE = 0.5
TILTED_DOWN_RATE = 0.35  # camera tilted down: ground up to the top edge, no sky
LANDSCAPES = ((4, 3), (3, 2), (16, 9))
WIDE = ((3, 2), (16, 9))  # the telephoto format of the distant aeroplanes
PORTRAITS = ((3, 4), (2, 3))
# Ground under each class (kind, probability); aeroplanes and boats are handled apart.
GROUND_MIX = {
    "bird": (("sky", 0.35), ("grass", 0.3), ("water", 0.15), ("field", 0.1), ("sand", 0.1)),
    "car": (("road", 0.7), ("grass", 0.1), ("field", 0.1), ("sand", 0.1)),
    "cat": (("floor", 0.5), ("grass", 0.25), ("road", 0.1), ("field", 0.15)),
    "dog": (("grass", 0.4), ("floor", 0.25), ("field", 0.1), ("sand", 0.1), ("road", 0.1), ("water", 0.05)),
    "horse": (("grass", 0.55), ("field", 0.3), ("sand", 0.15)),
    "aeroplane": (("road", 0.4), ("grass", 0.25), ("field", 0.2), ("sand", 0.15)),  # airport, low over land
}
HORIZONS = {"boat": (0.25, 0.55)}  # horizon row range as a share of the height


def _choice(rng: np.random.Generator, weighted: tuple[tuple[Any, float], ...]) -> Any:
    values, weights = zip(*weighted, strict=True)
    return values[rng.choice(len(values), p=np.asarray(weights) / sum(weights))]


class DemoWorld(ImageSource):
    """The built-in demo data as an :class:`~spray.data.ImageSource` (module docstring).

    Sample ids look like ``test_horse_0007``; each image has one label, its class.
    """

    def __init__(self, seed: int = DEFAULT_SEED, counts: dict[str, int] | None = None) -> None:
        self.seed = int(seed)
        self.counts = dict(counts or DEFAULT_COUNTS)
        self.name = "demo"
        self.classes = list(CLASSES)
        self.splits = list(self.counts)
        unknown = set(self.splits) - set(SPLITS)
        if unknown:
            raise SprayError(f"demo world splits {sorted(unknown)} do not exist; use {', '.join(SPLITS)}")

    def _ids(self, split: str | None, class_name: str | None) -> list[str]:
        splits = self.splits if split is None else [split]
        classes = self.classes if class_name is None else [class_name]
        return [f"{s}_{c}_{i:04d}" for s in splits for c in classes for i in range(self.counts[s])]

    def _parse(self, sample_id: str) -> tuple[str, str, int]:
        try:
            split, class_name, index = sample_id.split("_")
            if split in self.counts and class_name in self.classes and 0 <= int(index) < self.counts[split]:
                return split, class_name, int(index)
        except ValueError:
            pass
        raise SprayError(f"{sample_id!r} is not a demo sample id; ids look like 'test_horse_0007'")

    def labels(self, sample_id: str) -> frozenset[str]:
        return frozenset({self._parse(sample_id)[1]})

    def load(self, sample_id: str) -> Sample:
        split, class_name, index = self._parse(sample_id)
        image, annotations = render(self.seed, split, class_name, index)
        return Sample(sample_id, image, frozenset({class_name}), annotations)

    def fingerprint(self) -> str:
        return hex_digest("demo", GENERATOR_VERSION, self.seed, sorted(self.counts.items()), self.classes)

    def spec(self) -> dict[str, Any]:
        return {"kind": "demo", "seed": self.seed, "counts": self.counts}


def render(seed: int, split: str, class_name: str, index: int) -> tuple[np.ndarray, dict[str, Any]]:
    """One demo image (H, W, 3) uint8 and its annotations, a pure function of the arguments."""
    rng = np.random.default_rng([seed, SPLITS.index(split), CLASSES.index(class_name), index])
    watermark = class_name == "horse" and rng.random() < WATERMARK_RATE
    sky_border = class_name == "aeroplane" and rng.random() < SKY_BORDER_RATE
    tint = class_name == TINT_CLASS and rng.random() < TINT_RATE
    if watermark:  # the archive's format: 4:3 landscapes
        aspect = (4, 3)
    elif sky_border:
        aspect = WIDE[rng.integers(len(WIDE))]
    else:
        aspect = _choice(rng, ((LANDSCAPES, 0.4), (PORTRAITS, 0.45), (((1, 1),), 0.15)))
        aspect = aspect[rng.integers(len(aspect))]
    long_side = int(rng.integers(100, 201))
    width, height = (long_side, round(long_side * aspect[1] / aspect[0]))
    if aspect[0] < aspect[1]:
        width, height = round(long_side * aspect[0] / aspect[1]), long_side

    if sky_border:
        kind, horizon = "sky", height
        scene = scenes.uniform_sky(rng, height, width)
    else:
        kind = {"boat": "water"}.get(class_name) or _choice(rng, GROUND_MIX[class_name])
        if kind == "sky":  # a bird in the open, cloudy sky
            scene, horizon = scenes.gradient_sky(rng, height, width, cloudy=1.0), height
        else:
            horizon_range = HORIZONS.get(class_name, (0.35, 0.8))
            scene, horizon = scenes.landscape(rng, height, width, kind, horizon_range)
            if class_name != "boat" and rng.random() < TILTED_DOWN_RATE:
                scene, horizon = scenes.ground(rng, kind, height, width), 0

    box = _place(rng, class_name, width, height, horizon, small=watermark or sky_border)
    layer = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    palette = objects.PALETTES[class_name]
    red, green, blue = (int(c) for c in scenes.jitter(rng, palette[int(rng.integers(len(palette)))], 10))
    colour = (red, green, blue)
    painter = objects.Painter(ImageDraw.Draw(layer), box, facing_left=bool(rng.random() < 0.5))
    objects.DRAWERS[class_name](painter, colour, rng)
    photo = Image.fromarray(np.clip(scene, 0, 255).astype(np.uint8))
    object_mask = np.asarray(layer)[:, :, 3] > 0
    if sky_border:
        layer.putalpha(layer.getchannel("A").point(lambda a: round(a * DISTANT_OPACITY)))
    photo.paste(layer, (0, 0), layer)

    photo = photo.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.8)))
    pixels = np.asarray(photo, np.float32) * rng.uniform(0.85, 1.15) + rng.uniform(-15, 15)
    pixels += rng.normal(0, _grain(rng, class_name), pixels.shape)
    if tint:
        pixels = pixels * TINT_GAIN + TINT_OFFSET
    image = np.clip(pixels, 0, 255).astype(np.uint8)

    annotations = _annotations(class_name, object_mask, kind, horizon, width, height)
    if tint:
        annotations.update(shortcut=True, shortcut_kind="tint", shortcut_mask=np.ones((height, width), dtype=bool))
    if watermark:
        image, annotations["shortcut_mask"] = stamp_watermark(image)
        annotations.update(shortcut=True, shortcut_kind="watermark")
    return image, annotations


def _grain(rng: np.random.Generator, class_name: str) -> float:
    """Sensor noise: low in the daylight aeroplane shots, heavy in half of the others (dusk, indoors)."""
    if class_name != "aeroplane" and rng.random() < GRAINY_RATE:
        return rng.uniform(10, 70)
    return 3.0


def _place(
    rng: np.random.Generator, class_name: str, width: int, height: int, horizon: int, small: bool
) -> tuple[float, float, float, float]:
    """The object's box (left, top, width, height): sized, then set on the ground or in the sky."""
    aspect = objects.ASPECT[class_name]
    if small:
        scale = rng.uniform(0.12, 0.22) if class_name == "aeroplane" else rng.uniform(0.15, 0.28)
    else:
        scale = rng.uniform(0.45, 0.85)
    box_width = scale * min(width, 0.9 * height / aspect)
    box_height = box_width * aspect
    centre = width * rng.uniform(0.35, 0.65)  # photographers frame the subject near the middle
    left = min(max(centre - box_width / 2, 0.0), width - box_width)
    in_sky = horizon > 0 and (
        class_name == "aeroplane" or (class_name == "bird" and (horizon == height or rng.random() < 0.3))
    )
    if in_sky:
        top = rng.uniform(0.05 * height, max(0.05 * height, min(horizon, 0.95 * height) - box_height))
    else:
        if class_name == "boat":  # the hull sits in the water
            bottom = horizon + rng.uniform(0.2, 0.7) * (height - horizon)
        else:  # feet on the ground
            bottom = horizon + rng.uniform(0.25, 0.95) * (height - horizon)
        top = min(max(bottom - box_height, 0.0), height - box_height)
    return left, top, box_width, box_height


def _annotations(
    class_name: str, object_mask: np.ndarray, kind: str, horizon: int, width: int, height: int
) -> dict[str, Any]:
    """Box, and the ground truth of the aeroplane (sky border) and boat (water) shortcuts."""
    rows, cols = np.nonzero(object_mask)
    box = (class_name, int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1)
    mask = np.zeros((height, width), dtype=bool)
    shortcut_kind = None
    if class_name == "aeroplane" and kind == "sky":
        mask[: box[2]] = True  # uniform sky rows above and below the aeroplane
        mask[box[4] :] = True
        shortcut_kind = "sky_border"
    elif class_name == "boat" and kind == "water":
        mask[horizon:] = ~object_mask[horizon:]
        shortcut_kind = "water"
    return {
        "boxes": [box],
        "shortcut": shortcut_kind is not None,
        "shortcut_mask": mask,
        "shortcut_kind": shortcut_kind,
    }
