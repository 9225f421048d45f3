"""The padding experiment on odd data: any image size and aspect, a corrupt image, a class of
square images only (a clear message, not an empty chart), a model with another input size."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from spray.verification.verdict import UNTESTABLE
from workflows.config import RunConfig
from workflows.verify_padding import PaddingSettings, verify_padding

TWO_CLASS_MODEL = """
import torch
from torch import nn

def tiny():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 5, stride=4), nn.ReLU(), nn.AdaptiveAvgPool2d(3), nn.Flatten(),
                         nn.Linear(36, 2))
"""
SIZES = {"plane": [(40, 90), (90, 40), (1, 60), (300, 7), (33, 34)], "box": [(50, 50), (30, 30)]}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("odd")
    rng = np.random.default_rng(0)
    for class_name, sizes in SIZES.items():
        (folder / "data" / class_name).mkdir(parents=True)
        for i, (height, width) in enumerate(sizes):
            pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / "data" / class_name / f"{i}.png")
    (folder / "data" / "plane" / "broken.png").write_bytes(b"not a png at all")
    (folder / "tiny.py").write_text(TWO_CLASS_MODEL)
    return RunConfig().replace(
        model=f"{folder / 'tiny.py'}:tiny",
        data=str(folder / "data"),
        store=str(folder / "s.zarr"),
        reports=str(folder / "reports"),
        workers=1,
    )


def test_every_size_and_aspect_is_scored_and_a_corrupt_image_is_recorded(world):
    results = verify_padding(world, PaddingSettings("plane", n_examples=2), progress=False)
    table = results.table
    good = table[table["error"] == ""]
    assert good["sample_id"].nunique() == len(SIZES["plane"]) + len(SIZES["box"])
    assert np.isfinite(good["score"]).all() and (good.groupby("sample_id")["strategy"].nunique() == 6).all()
    broken = table[table["sample_id"].str.endswith("broken.png")]
    assert len(broken) == 1 and broken["error"].iloc[0] != "" and results.attrs["n_errors"] == 1
    # each good row counts in its orientation group, and again in "padded" unless square; the broken one in none
    assert results.summary["n"].sum() == len(good) + (good["orientation"] != "square").sum()
    assert dict(zip(*np.unique(good.drop_duplicates("sample_id")["orientation"], return_counts=True), strict=True)) == {
        "landscape": 3,
        "portrait": 2,
        "square": 2,
    }  # 33 x 34 is landscape: one padded row


def test_a_class_of_square_images_gets_a_clear_message(world):
    results = verify_padding(world, PaddingSettings("box", n_examples=2), progress=False)
    assert results.verdict["conclusion"] != UNTESTABLE  # the other images still need padding
    assert any("No landscape box image was sampled" in sentence for sentence in results.verdict["findings"])
    html = results.page.read_text()
    assert "No landscape box image was sampled" in html and "nothing to compare here" in html
