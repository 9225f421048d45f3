"""The thesis's image preprocessing, with every step a named, recorded parameter.

Pipeline (SPEC §2, thesis L2141, L2434, L2444): resize so the longest side is
``longest_side`` (256), pad the short side to a square (``pad_mode``; the thesis copies the
border pixel, numpy's ``edge``), take the centred ``crop_size`` square (227 for CaffeNet),
scale to [0, 1] and normalise with ``mean``/``std``. The padding step is swappable because
the padding-hypothesis experiment (§6.3.1, L2156) compares six strategies.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image

from spray.errors import SprayError

PAD_MODES = ("edge", "reflect", "symmetric", "constant", "noise", "random_colour", "crop")

# L2162: "a constant sky-blue sampled from a test image"; the exact RGB is not given [A].
SKY_BLUE = (135, 190, 235)

# The usual ImageNet statistics of torchvision-style models [A]: the thesis's Caffe models
# subtract a per-pixel BGR mean instead, which a user model can set through mean/std.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _check_mode(mode: str) -> None:
    if mode not in PAD_MODES:
        raise SprayError(f"unknown pad mode {mode!r}; use one of {', '.join(PAD_MODES)}")


def pad_to_square(
    image: np.ndarray,
    mode: str = "edge",
    *,
    colour: tuple[int, int, int] | None = None,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pad the short side of an (H, W, 3) uint8 image, centred, to a square.

    Returns the square image and a (S, S) bool mask that is True on padded pixels. Modes:
    ``edge`` repeats the border pixel (thesis default, L2141); ``reflect``/``symmetric``
    mirror without/with the border pixel; ``constant`` fills ``colour`` (default
    :data:`SKY_BLUE`, L2162); ``noise`` fills uniform random values 0-255 (L2160);
    ``random_colour`` fills one random colour per image (L2162); ``crop`` instead keeps the
    largest centred square, so nothing is padded (L2156). ``rng`` drives the random modes.
    """
    _check_mode(mode)
    height, width = image.shape[:2]
    side = min(height, width) if mode == "crop" else max(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    if mode == "crop":
        square = image[-top : -top + side, -left : -left + side]
        return np.ascontiguousarray(square), np.zeros((side, side), dtype=bool)
    pad_width = ((top, side - height - top), (left, side - width - left), (0, 0))
    mask = np.ones((side, side), dtype=bool)
    mask[top : top + height, left : left + width] = False
    if mode in ("edge", "reflect", "symmetric"):
        if mode != "edge" and min(height, width) < 2:
            mode = "edge"  # mirroring a 1-pixel-thin image is undefined; edge is the limit
        return np.pad(image, pad_width, mode=mode), mask  # numpy mirrors repeatedly if needed
    rng = rng if rng is not None else np.random.default_rng(0)
    square = np.pad(image, pad_width, mode="constant")
    if mode == "constant":
        square[mask] = np.asarray(colour if colour is not None else SKY_BLUE, dtype=np.uint8)
    elif mode == "random_colour":
        square[mask] = rng.integers(0, 256, size=3, dtype=np.uint8)
    else:  # noise
        square[mask] = rng.integers(0, 256, size=(int(mask.sum()), 3), dtype=np.uint8)
    return square, mask


def resize_longest_side(image: np.ndarray, longest_side: int) -> np.ndarray:
    """Resize (bilinear, aspect kept) so that the longer side is ``longest_side`` pixels."""
    height, width = image.shape[:2]
    scale = longest_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size == (width, height):
        return image
    return np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The centred ``size`` x ``size`` square of a square image (L2141)."""
    side = image.shape[0]
    start = (side - size) // 2
    return image[start : start + size, start : start + size]


@dataclass(frozen=True)
class Preprocessing:
    """Image -> model input, as in the thesis (L2141, L2434); see the module docstring.

    ``colour`` is the fill of ``pad_mode="constant"`` (default :data:`SKY_BLUE`); ``seed``
    together with each sample's key seeds the random pad modes, so a sample is padded the
    same way in every process and run.
    """

    longest_side: int = 256
    pad_mode: str = "edge"
    crop_size: int = 227
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    colour: tuple[int, int, int] | None = None  # None -> SKY_BLUE
    seed: int = 0

    def __post_init__(self) -> None:
        _check_mode(self.pad_mode)
        if not 0 < self.crop_size <= self.longest_side:
            raise SprayError(
                f"crop size {self.crop_size} must be between 1 and the longest side {self.longest_side}; "
                "lower --crop-size or raise --longest-side"
            )
        object.__setattr__(self, "mean", tuple(self.mean))
        object.__setattr__(self, "std", tuple(self.std))
        object.__setattr__(self, "colour", tuple(self.colour) if self.colour is not None else SKY_BLUE)

    def rng_for(self, key: str) -> np.random.Generator:
        """The random generator of one sample: a function of ``seed`` and ``key`` only."""
        digest = hashlib.sha256(f"{self.seed}\0{key}".encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "little"))

    def square(self, image: np.ndarray, key: str) -> tuple[np.ndarray, np.ndarray]:
        """Resize and pad (or crop) to a ``longest_side`` square; returns (image, pad mask)."""
        if self.pad_mode == "crop":  # crop the largest centred square, then scale it up
            square, mask = pad_to_square(image, "crop")
            return resize_longest_side(square, self.longest_side), np.zeros((self.longest_side,) * 2, bool)
        resized = resize_longest_side(image, self.longest_side)
        return pad_to_square(resized, self.pad_mode, colour=self.colour, rng=self.rng_for(key))

    def to_uint8(self, image: np.ndarray, key: str) -> np.ndarray:
        """The (crop, crop, 3) uint8 image the model sees, before normalisation."""
        square, _ = self.square(image, key)
        return centre_crop(square, self.crop_size)

    def __call__(self, image: np.ndarray, key: str) -> np.ndarray:
        """Preprocess an (H, W, 3) uint8 image to a float32 (3, crop, crop) model input."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise SprayError(f"expected an (H, W, 3) uint8 image for {key!r}, got {image.dtype} {image.shape}")
        pixels = self.to_uint8(image, key).astype(np.float32) / 255.0
        pixels = (pixels - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(pixels.transpose(2, 0, 1))

    def to_dict(self) -> dict[str, Any]:
        """Every parameter as JSON (the constant colour resolved), for provenance."""
        record = asdict(self)
        record["colour"] = list(self.colour)
        record["mean"], record["std"] = list(self.mean), list(self.std)
        return record

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Preprocessing:
        """Inverse of :meth:`to_dict`."""
        known = {"longest_side", "pad_mode", "crop_size", "mean", "std", "colour", "seed"}
        unknown = set(record) - known
        if unknown:
            raise SprayError(f"unknown preprocessing parameters {sorted(unknown)}; known: {sorted(known)}")
        return cls(**record)

    def with_pad_mode(self, pad_mode: str, colour: tuple[int, int, int] | None = None) -> Preprocessing:
        """The same pipeline with another padding step (the padding experiment swaps it)."""
        record = self.to_dict() | {"pad_mode": pad_mode, "colour": colour}
        return Preprocessing.from_dict(record)
