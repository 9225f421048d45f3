"""The six ways of making an image square that the padding experiment compares (L2156).

Each strategy is the model's own preprocessing with only its padding step swapped
(:meth:`spray.preprocess.Preprocessing.with_pad_mode`), so the resize, centre crop and
normalisation stay exactly those the model was trained with, for any input size:

1. ``copy_border`` repeats the border pixel (numpy ``edge``): the thesis's pipeline and the
   baseline every other strategy is compared with (L2141, L2444);
2. ``mirror`` mirrors the image into the padded area (``reflect`` by default; SPEC §2 [A]);
3. ``crop`` keeps the largest centred square instead of padding (L2156);
4. ``noise`` fills the padded area with uniform random pixels 0-255 (L2160);
5. ``random_colour`` fills it with one random colour per image (L2162);
6. ``reference_colour`` fills it with one fixed colour, by default a sky blue sampled from the
   class's own images (L2162: "a constant sky-blue sampled from a test image").

The padding is centred on both sides of the short axis (SPEC §2 [A]).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from spray.errors import SprayError
from spray.preprocess import SKY_BLUE, Preprocessing


class PaddingExperimentError(SprayError, ValueError):
    """Settings of the padding experiment that cannot work (colour, mirror mode, class)."""


@dataclass(frozen=True)
class PaddingStrategy:
    """One way of squaring an image: a name for tables, a label for people, its pad mode."""

    name: str
    label: str
    pad_mode: str


BASELINE = "copy_border"
MIRROR_MODES = ("reflect", "symmetric")


def strategies(mirror_mode: str = "reflect") -> tuple[PaddingStrategy, ...]:
    """The six strategies in the thesis's order (L2156), the baseline first."""
    if mirror_mode not in MIRROR_MODES:
        raise PaddingExperimentError(
            f"unknown mirror mode {mirror_mode!r}; use --mirror-mode reflect or --mirror-mode symmetric"
        )
    return (
        PaddingStrategy(BASELINE, "copy border (baseline)", "edge"),
        PaddingStrategy("mirror", "mirror", mirror_mode),
        PaddingStrategy("crop", "crop centre square", "crop"),
        PaddingStrategy("noise", "random noise", "noise"),
        PaddingStrategy("random_colour", "random colour", "random_colour"),
        PaddingStrategy("reference_colour", "reference colour", "constant"),
    )


def strategy_preprocessings(
    base: Preprocessing,
    reference_colour: tuple[int, int, int],
    *,
    mirror_mode: str = "reflect",
    seed: int = 0,
) -> dict[str, Preprocessing]:
    """The model's preprocessing once per strategy, keyed by strategy name.

    ``seed`` (with each sample's id) drives the random strategies, so every sample gets the
    same noise and the same random colour in every process and every rerun.
    """
    colour = parse_colour(reference_colour)
    record = base.to_dict() | {"seed": int(seed)}
    return {
        strategy.name: Preprocessing.from_dict(
            record | {"pad_mode": strategy.pad_mode, "colour": colour if strategy.pad_mode == "constant" else None}
        )
        for strategy in strategies(mirror_mode)
    }


def parse_colour(value: str | Iterable[int]) -> tuple[int, int, int]:
    """``"R,G,B"`` or three integers 0-255 as an RGB tuple; anything else is a clear error."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    try:
        colour = tuple(int(str(part).strip()) for part in parts)
    except ValueError:
        colour = ()
    if len(colour) != 3 or not all(0 <= c <= 255 for c in colour):
        raise PaddingExperimentError(
            f"reference colour {value!r} is not three integers 0-255; write it as R,G,B, e.g. 135,190,235"
        )
    return colour


def orientation(height: int, width: int) -> str:
    """``landscape`` (wider: padded vertically), ``portrait`` (taller: padded horizontally) or ``square``.

    The thesis splits the non-aeroplane images this way for Fig. 6.11 (L2175, L2203).
    """
    if width > height:
        return "landscape"
    if height > width:
        return "portrait"
    return "square"


#: Share of an image's rows taken as "the top rows" when sampling the reference colour.
TOP_ROWS_FRACTION = 0.05


def reference_colour_from_images(images: Iterable[np.ndarray]) -> tuple[tuple[int, int, int], int]:
    """The sky colour of the most typical landscape image, and how many images were looked at.

    For a landscape image the padding goes above and below, so its top rows are what the
    copied border repeats there: for aeroplanes, sky. Each image's colour is the median of
    its top :data:`TOP_ROWS_FRACTION` rows; the result is the medoid of those colours (the one
    closest to all others), a colour that one of the images really has, as the thesis sampled
    its sky blue from a test image (L2162); a per-channel median of several skies could be a
    colour none of them has. Returns (:data:`spray.preprocess.SKY_BLUE`, 0) when no image is
    landscape.
    """
    colours = []
    for image in images:
        height, width = image.shape[:2]
        if orientation(height, width) == "landscape":
            top = max(1, round(height * TOP_ROWS_FRACTION))
            colours.append(np.median(np.asarray(image[:top]).reshape(-1, 3), axis=0))
    if not colours:
        return SKY_BLUE, 0
    points = np.asarray(colours, dtype=np.float64)
    distances = [np.linalg.norm(points - point, axis=1).sum() for point in points]  # O(n) memory
    medoid = points[int(np.argmin(distances))]
    red, green, blue = (round(float(c)) for c in medoid)
    return (red, green, blue), len(colours)
