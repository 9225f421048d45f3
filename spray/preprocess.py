"""Image -> model input: the thesis's pipeline, generalised so that any model's input fits.

Steps, each a recorded parameter (SPEC §2; thesis L2141, L2434, L2444):

1. **resize** (``resize``/``resize_to``): the longest side to ``resize_to`` (the thesis: 256),
   the shorter side to ``resize_to`` (torchvision's ImageNet models), or ``none``;
2. **pad** the short side to a centred square (``pad_mode``; the thesis copies the border
   pixel, numpy's ``edge``). The padding experiment (§6.3.1, L2156) swaps this step only;
3. **centre crop** to ``crop_size`` (227 for CaffeNet, 224 for torchvision); a square smaller
   than the crop is padded up to it with ``pad_mode``; ``crop_size=None`` keeps the square;
4. **channels**: ``rgb`` or ``grey`` (ITU-R 601-2 luma, PIL's "L" conversion);
5. **value range**: pixel / 255 scaled to ``value_range`` ((0, 1) for torchvision-style
   models; (0, 255) for Caffe-style ones);
6. **normalise**: (x - ``mean``) / ``std`` per channel.

With the ``shorter`` rule the crop (<= ``resize_to``) lies inside the image, so step 2 adds
nothing the model sees: it equals torchvision's ``Resize(256)`` + ``CenterCrop(224)``.

Named presets (:data:`PRESETS`): ``thesis`` (256 longest side, edge padding, 227 crop,
ImageNet statistics), ``torchvision`` (256 shorter side, 224 crop, ImageNet statistics) and
``native`` (the image as stored, scaled to [0, 1], no resize, no normalisation: MNIST- and
CIFAR-sized models). :func:`resolve_preprocessing` turns a preset plus overrides (flags, a
``[preprocessing]`` TOML table) into one :class:`Preprocessing`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import numpy as np
from PIL import Image

from spray.errors import SprayError

PAD_MODES = ("edge", "reflect", "symmetric", "constant", "noise", "random_colour", "crop")
RESIZE_RULES = ("longest", "shorter", "none")
CHANNELS = ("rgb", "grey")

# L2162: "a constant sky-blue sampled from a test image"; the exact RGB is not given [A].
SKY_BLUE = (135, 190, 235)

# The usual ImageNet statistics of torchvision-style models [A]: the thesis's Caffe models
# subtract a per-pixel BGR mean instead, which a user model can set through mean/std.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# ITU-R 601-2 luma weights, as PIL's ``convert("L")`` uses.
_NUMPY_PAD_MODES: dict[str, Literal["edge", "reflect", "symmetric"]] = {
    "edge": "edge",
    "reflect": "reflect",
    "symmetric": "symmetric",
}
"""The pad modes numpy's ``np.pad`` does itself."""
_LUMA = np.asarray((0.299, 0.587, 0.114), np.float32)


class PreprocessingError(SprayError, ValueError):
    """A preprocessing setting that cannot work; the message names the flag or TOML key."""


def _check_mode(mode: str) -> None:
    if mode not in PAD_MODES:
        raise PreprocessingError(f"unknown pad mode {mode!r}; use --pad-mode with one of {', '.join(PAD_MODES)}")


def pad_to_square(
    image: np.ndarray,
    mode: str = "edge",
    *,
    colour: tuple[int, int, int] | None = None,
    rng: np.random.Generator | None = None,
    side: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pad an (H, W, 3) uint8 image, centred, to a ``side`` x ``side`` square (default: its long side).

    Returns the square image and a (S, S) bool mask that is True on padded pixels. Modes:
    ``edge`` repeats the border pixel (thesis default, L2141); ``reflect``/``symmetric``
    mirror without/with the border pixel; ``constant`` fills ``colour`` (default
    :data:`SKY_BLUE`, L2162); ``noise`` fills uniform random values 0-255 (L2160);
    ``random_colour`` fills one random colour per image (L2162); ``crop`` instead keeps the
    largest centred square, so nothing is padded (L2156). ``rng`` drives the random modes.
    """
    _check_mode(mode)
    height, width = image.shape[:2]
    if mode == "crop":
        small = min(height, width)
        top, left = (height - small) // 2, (width - small) // 2
        square = image[top : top + small, left : left + small]
        return np.ascontiguousarray(square), np.zeros((small, small), dtype=bool)
    side = max(height, width, side or 0)
    top, left = (side - height) // 2, (side - width) // 2
    pad_width = ((top, side - height - top), (left, side - width - left), (0, 0))
    mask = np.ones((side, side), dtype=bool)
    mask[top : top + height, left : left + width] = False
    numpy_mode = _NUMPY_PAD_MODES.get(mode)
    if numpy_mode is not None:
        if numpy_mode != "edge" and min(height, width) < 2:
            numpy_mode = "edge"  # mirroring a 1-pixel-thin image is undefined; edge is the limit
        return np.pad(image, pad_width, mode=numpy_mode), mask  # numpy mirrors repeatedly if needed
    rng = rng if rng is not None else np.random.default_rng(0)
    square = np.pad(image, pad_width, mode="constant")
    if mode == "constant":
        square[mask] = np.asarray(colour if colour is not None else SKY_BLUE, dtype=np.uint8)
    elif mode == "random_colour":
        square[mask] = rng.integers(0, 256, size=3, dtype=np.uint8)
    else:  # noise
        square[mask] = rng.integers(0, 256, size=(int(mask.sum()), 3), dtype=np.uint8)
    return square, mask


def resize(image: np.ndarray, rule: str, size: int | None) -> np.ndarray:
    """Resize (bilinear, aspect kept) so that the ``rule`` side ("longest"/"shorter") is ``size`` px."""
    if rule == "none" or size is None:
        return image
    height, width = image.shape[:2]
    scale = size / (max(height, width) if rule == "longest" else min(height, width))
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if new_size == (width, height):
        return image
    return np.asarray(Image.fromarray(image).resize(new_size, Image.Resampling.BILINEAR))


def resize_longest_side(image: np.ndarray, longest_side: int) -> np.ndarray:
    """Resize (bilinear, aspect kept) so that the longer side is ``longest_side`` pixels."""
    return resize(image, "longest", longest_side)


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The centred ``size`` x ``size`` square of a square image (L2141)."""
    side = image.shape[0]
    start = (side - size) // 2
    return image[start : start + size, start : start + size]


def _floats(value: Any, name: str) -> tuple[float, ...]:
    values = value.split(",") if isinstance(value, str) else (list(value) if isinstance(value, Sequence) else [value])
    try:
        result = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        result = ()
    if not result:
        raise PreprocessingError(
            f"{name} {value!r} is not a list of numbers; write it as a,b,c (e.g. 0.485,0.456,0.406)"
        )
    return result


@dataclass(frozen=True)
class Preprocessing:
    """Image -> model input; see the module docstring for the steps.

    ``colour`` is the fill of ``pad_mode="constant"`` (default :data:`SKY_BLUE`); ``seed``
    together with each sample's key seeds the random pad modes, so a sample is padded the
    same way in every process and run. ``mean``/``std`` hold one value per channel (a single
    value applies to every channel).
    """

    resize: str = "longest"
    resize_to: int | None = 256
    pad_mode: str = "edge"
    crop_size: int | None = 227
    channels: str = "rgb"
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    value_range: tuple[float, float] = (0.0, 1.0)
    colour: tuple[int, int, int] | None = None  # None -> SKY_BLUE
    seed: int = 0

    def __post_init__(self) -> None:
        _check_mode(self.pad_mode)
        if self.resize not in RESIZE_RULES:
            raise PreprocessingError(
                f"unknown resize rule {self.resize!r}; use --resize with one of {', '.join(RESIZE_RULES)}"
            )
        if self.resize != "none" and (not isinstance(self.resize_to, int) or self.resize_to < 1):
            raise PreprocessingError(f"resize to {self.resize_to!r} px is not a positive integer; set --resize-to N")
        if self.crop_size is not None and (not isinstance(self.crop_size, int) or self.crop_size < 1):
            raise PreprocessingError(f"input size {self.crop_size!r} is not a positive integer; set --input-size N")
        if (
            self.resize == "longest"
            and self.crop_size is not None
            and self.resize_to is not None
            and self.crop_size > self.resize_to
        ):
            raise PreprocessingError(
                f"input size {self.crop_size} is larger than the longest side {self.resize_to}; "
                "lower --input-size or raise --resize-to"
            )
        if self.channels not in CHANNELS:
            raise PreprocessingError(f"unknown channels {self.channels!r}; use --channels rgb, grey or auto")
        mean, std = _floats(self.mean, "mean"), _floats(self.std, "std")
        for name, values in (("mean", mean), ("std", std)):
            if len(values) not in (1, self.n_channels):
                raise PreprocessingError(
                    f"--{name} has {len(values)} values for {self.n_channels} channel(s); give one per channel or one for all"
                )
        if any(s <= 0 for s in std):
            raise PreprocessingError(f"--std {std} must be positive")
        value_range = _floats(self.value_range, "value range")
        if len(value_range) != 2 or value_range[0] >= value_range[1]:
            raise PreprocessingError(f"--value-range {self.value_range!r} must be two numbers low,high with low < high")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)
        object.__setattr__(self, "value_range", value_range)
        object.__setattr__(self, "colour", tuple(self.colour) if self.colour is not None else SKY_BLUE)

    @property
    def n_channels(self) -> int:
        return 1 if self.channels == "grey" else 3

    @property
    def input_size(self) -> int | None:
        """Side of the model input when every image gives the same one (None: the image's own size)."""
        if self.crop_size is not None:
            return self.crop_size
        return self.resize_to if self.resize == "longest" else None

    def rng_for(self, key: str) -> np.random.Generator:
        """The random generator of one sample: a function of ``seed`` and ``key`` only."""
        digest = hashlib.sha256(f"{self.seed}\0{key}".encode()).digest()
        return np.random.default_rng(int.from_bytes(digest[:8], "little"))

    def square(self, image: np.ndarray, key: str) -> tuple[np.ndarray, np.ndarray]:
        """Resize and pad (or crop) to a square; returns (image, pad mask)."""
        if self.pad_mode == "crop":  # crop the largest centred square, then scale it
            square, _ = pad_to_square(image, "crop")
            square = resize(square, self.resize, self.resize_to)
            return square, np.zeros(square.shape[:2], bool)
        resized = resize(image, self.resize, self.resize_to)
        return pad_to_square(resized, self.pad_mode, colour=self.colour, rng=self.rng_for(key))

    def model_view(self, image: np.ndarray, key: str) -> tuple[np.ndarray, np.ndarray]:
        """The (S, S, 3) uint8 RGB pixels the model sees (before channels and normalisation) and
        the (S, S) mask of the pixels that padding made."""
        square, mask = self.square(image, key)
        if self.crop_size is None:
            return square, mask
        if square.shape[0] < self.crop_size:  # a small image: pad up to the input size
            pad_mode = "edge" if self.pad_mode == "crop" else self.pad_mode
            grown, grown_mask = pad_to_square(
                square, pad_mode, colour=self.colour, rng=self.rng_for(key + "\0up"), side=self.crop_size
            )
            offset = (self.crop_size - square.shape[0]) // 2
            grown_mask[offset : offset + mask.shape[0], offset : offset + mask.shape[1]] |= mask
            return grown, grown_mask
        return centre_crop(square, self.crop_size), centre_crop(mask, self.crop_size)

    def to_uint8(self, image: np.ndarray, key: str) -> np.ndarray:
        """The (S, S, 3) uint8 RGB image the model sees, before channels and normalisation."""
        return self.model_view(image, key)[0]

    def normalise(self, pixels: np.ndarray) -> np.ndarray:
        """(S, S, 3) uint8 RGB -> float32 (C, S, S) model input: channels, value range, mean/std."""
        values: np.ndarray = pixels.astype(np.float32)
        if self.channels == "grey":
            values = (values @ _LUMA)[:, :, None]
        low, high = self.value_range
        values = values * np.float32((high - low) / 255.0) + np.float32(low)
        values = (values - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return np.ascontiguousarray(values.transpose(2, 0, 1))

    def to_pixels(self, x: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`normalise` for pictures: float (C, S, S) -> (S, S, 3) uint8 (grey repeated)."""
        low, high = self.value_range
        values = x.transpose(1, 2, 0) * np.asarray(self.std, np.float32) + np.asarray(self.mean, np.float32)
        values = (values - low) * (255.0 / (high - low))
        pixels = np.clip(values + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels

    def __call__(self, image: np.ndarray, key: str) -> np.ndarray:
        """Preprocess an (H, W, 3) uint8 RGB image to a float32 (C, S, S) model input."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise SprayError(f"expected an (H, W, 3) uint8 image for {key!r}, got {image.dtype} {image.shape}")
        return self.normalise(self.to_uint8(image, key))

    def to_dict(self) -> dict[str, Any]:
        """Every parameter as JSON (the constant colour resolved), for provenance."""
        record = asdict(self)
        record["colour"] = list(self.colour if self.colour is not None else SKY_BLUE)  # resolved by __post_init__
        record["mean"], record["std"] = list(self.mean), list(self.std)
        record["value_range"] = list(self.value_range)
        return record

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Preprocessing:
        """Inverse of :meth:`to_dict`; also reads the older ``longest_side`` records (resize longest)."""
        record = dict(record)
        if "longest_side" in record:
            record.setdefault("resize", "longest")
            record["resize_to"] = record.pop("longest_side")
        unknown = set(record) - PREPROCESSING_KEYS
        if unknown:
            raise PreprocessingError(
                f"unknown preprocessing parameters {sorted(unknown)}; known: {sorted(PREPROCESSING_KEYS)}"
            )
        return cls(**record)

    def replace(self, **changes: Any) -> Preprocessing:
        """A copy with ``changes`` (validated again)."""
        return Preprocessing.from_dict(self.to_dict() | changes)

    def with_pad_mode(self, pad_mode: str, colour: tuple[int, int, int] | None = None) -> Preprocessing:
        """The same pipeline with another padding step (the padding experiment swaps it)."""
        return self.replace(pad_mode=pad_mode, colour=colour)

    def describe(self) -> str:
        """One line for people: the steps with their values."""
        steps = {
            "longest": f"longest side {self.resize_to}",
            "shorter": f"shorter side {self.resize_to}",
            "none": "no resize",
        }[self.resize]
        crop = f"centre crop {self.crop_size}" if self.crop_size else "no crop"
        scale = f"x/255 to [{self.value_range[0]:g}, {self.value_range[1]:g}]"
        norm = f"mean {', '.join(f'{m:g}' for m in self.mean)}, std {', '.join(f'{s:g}' for s in self.std)}"
        return f"{steps}, {self.pad_mode} padding, {crop}, {self.channels}, {scale}, {norm}"


PREPROCESSING_KEYS = frozenset(f.name for f in fields(Preprocessing))

PRESETS: dict[str, Preprocessing] = {
    "thesis": Preprocessing(),
    "torchvision": Preprocessing(resize="shorter", resize_to=256, crop_size=224),
    "native": Preprocessing(resize="none", resize_to=None, crop_size=None, mean=(0.0,), std=(1.0,)),
}
"""``thesis``: L2141/L2434 (CaffeNet: longest side 256, edge padding, centre crop 227; ImageNet
statistics for PyTorch models); ``torchvision``: what torchvision's ImageNet models expect
(Resize(256) of the shorter side, CenterCrop(224), ImageNet statistics); ``native``: the
image as stored, scaled to [0, 1] (MNIST/CIFAR-style models trained on pixels / 255)."""

REQUEST_KEYS = frozenset({"preset", "input_size", *PREPROCESSING_KEYS})
"""Keys of a preprocessing request (``--preprocessing`` flags, a ``[preprocessing]`` TOML table):
a preset, then any step; ``input_size`` is the centre-crop size (``crop_size`` in records);
``channels`` may be ``auto``."""


def check_request(request: Mapping[str, Any], where: str = "preprocessing") -> dict[str, Any]:
    """The request without unset values; unknown keys and presets are errors naming ``where``.

    An older record with ``longest_side`` is read as "resize the longest side".
    """
    request = {key.replace("-", "_"): value for key, value in request.items() if value is not None}
    if "longest_side" in request:
        request.setdefault("resize", "longest")
        request["resize_to"] = request.pop("longest_side")
    if "crop_size" in request:
        request.setdefault("input_size", request.pop("crop_size"))
    unknown = sorted(set(request) - REQUEST_KEYS)
    if unknown:
        raise PreprocessingError(f"unknown key(s) {unknown} in {where}; known keys: {', '.join(sorted(REQUEST_KEYS))}")
    preset = request.get("preset")
    if preset is not None and preset not in PRESETS:
        raise PreprocessingError(f"unknown preprocessing preset {preset!r}; use one of {', '.join(PRESETS)}")
    return request


def resolve_preprocessing(
    request: Mapping[str, Any] | None, base: Preprocessing, model_channels: int | None = None
) -> Preprocessing:
    """One pipeline from ``base`` (the model's own default), a preset and explicit steps.

    ``input_size`` sets the centre crop; when the preset resizes and no ``resize_to`` is
    given, the resize target keeps the preset's ratio to its crop (256/227 for ``thesis``).
    ``channels="auto"`` (the default when unset) takes the model's input channels
    (``model_channels``: 1 -> grey, 3 -> rgb). Statistics of 3 channels given by a preset (not
    by the user) become their average for a grey model.
    """
    if request is not None and set(request) >= PREPROCESSING_KEYS:
        return Preprocessing.from_dict(request)  # a resolved record (a model spec): nothing to resolve
    request = check_request(request or {})
    preset = PRESETS[request.pop("preset")] if "preset" in request else base
    record = preset.to_dict()
    input_size = request.pop("input_size", None)
    if input_size is not None:
        record["crop_size"] = input_size
        if "resize_to" not in request and record["resize"] != "none" and preset.crop_size:
            record["resize_to"] = max(int(input_size), round(input_size * preset.resize_to / preset.crop_size))
    channels = request.pop("channels", "auto")
    record.update(request)
    if channels == "auto":
        channels = (
            {1: "grey", 3: "rgb"}.get(model_channels, record["channels"]) if model_channels else record["channels"]
        )
    record["channels"] = channels
    if channels == "grey":
        for name in ("mean", "std"):
            if name not in request and len(record[name]) == 3:
                record[name] = [float(np.mean(record[name]))]
    return Preprocessing.from_dict(record)


__all__ = [
    "CHANNELS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "PAD_MODES",
    "PRESETS",
    "RESIZE_RULES",
    "SKY_BLUE",
    "Preprocessing",
    "PreprocessingError",
    "centre_crop",
    "check_request",
    "pad_to_square",
    "resize",
    "resize_longest_side",
    "resolve_preprocessing",
]
