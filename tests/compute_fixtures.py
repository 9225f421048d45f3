"""A tiny model and image folder for the compute tests (fast enough for real processes)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

CLASSES = ("cat", "dog", "fox")
HERE = Path(__file__).resolve().parent
FACTORY = f"{HERE / 'compute_fixtures.py'}:tiny_cnn"
PACED_FACTORY = f"{HERE / 'compute_fixtures.py'}:paced_tiny_cnn"
SMALL_PREPROCESSING = {"resize_to": 40, "input_size": 32, "pad_mode": "edge"}


def tiny_cnn() -> nn.Module:
    """A seeded conv-ReLU-maxpool-dense network with one output per class in CLASSES."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(4),
        nn.Conv2d(6, 6, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(24, len(CLASSES)),
    ).eval()


def paced_tiny_cnn() -> nn.Module:
    """:func:`tiny_cnn` (same outputs) taking at least 0.3 s per forward pass, so that a test can
    act mid-run on any machine, however fast."""
    model = tiny_cnn()
    model.register_forward_pre_hook(lambda module, inputs: time.sleep(0.3))
    return model


def write_image_folder(root: Path, per_class: int = 12, corrupt: str | None = None) -> Path:
    """``root/{train,test}/<class>/*.png`` of seeded noise images in landscape and portrait sizes.

    ``corrupt`` names a class that also gets an undecodable ``test`` file.
    """
    rng = np.random.default_rng(0)
    for split, count in (("train", 1), ("test", per_class)):
        for index_class, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                height, width = (30, 44) if i % 2 else (44, 30)
                pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
                pixels[..., index_class] //= 2  # a little class signal
                Image.fromarray(pixels).save(folder / f"{name}{i:03d}.png")
    if corrupt is not None:
        (root / "test" / corrupt / f"{corrupt}999-broken.png").write_bytes(b"not a png at all")
    return root
