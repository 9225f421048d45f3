"""The detection benchmark's diagnostics (benchmarks/detection.py): the hindsight ceiling and the
artefact's share of relevance, checked on data whose answer is known by construction."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "detection.py"


@pytest.fixture(scope="module")
def detection():
    spec = importlib.util.spec_from_file_location("detection_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the script loads
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def _embedding(groups: list[int], rng: np.random.Generator) -> np.ndarray:
    """Rows of an ideal spectral embedding: one tight direction per group (plus small noise)."""
    directions = np.eye(len(groups))
    rows = np.vstack([np.repeat(directions[[g]], size, axis=0) for g, size in enumerate(groups)])
    return rows + 0.01 * rng.standard_normal(rows.shape)


def test_hindsight_count_is_the_first_k_with_a_cluster_that_finds_the_flags(detection) -> None:
    rng = np.random.default_rng(0)
    vectors = _embedding([100, 60, 40], rng)
    flags = np.zeros(200, dtype=bool)
    flags[160:] = True  # the smallest group, which a 2-way cut merges with another
    assert detection.hindsight_count(vectors, flags, seed=0) == 3
    flags[:] = False
    flags[100:160] = True
    assert detection.hindsight_count(vectors, flags, seed=0) in (2, 3)


def test_hindsight_count_is_none_when_the_flags_form_no_group(detection) -> None:
    rng = np.random.default_rng(1)
    vectors = _embedding([100, 100], rng)
    flags = np.zeros(200, dtype=bool)
    flags[rng.choice(200, size=40, replace=False)] = True  # spread over both groups
    assert detection.hindsight_count(vectors, flags, seed=0) is None


def test_artefact_share_is_the_relevance_on_the_artefact_pixels(detection) -> None:
    setting = detection.Setting("patch", "top_left", 0.3, planted=0, seed=0)
    region = detection.plant(np.zeros((1, 28, 28), np.uint8), "patch", "top_left")[0] > 0
    maps = np.ones((4, 28, 28))  # uniform positive relevance: the patch holds 16 of 784 pixels
    maps[:, 20, 20] = -50.0  # negative relevance does not count: 767 pixels of 1 outside the patch
    maps[:2][:, region] = 767 / 16  # carriers: as much on the patch as outside it
    flags = np.array([True, True, False, False])
    assert detection.artefact_share(maps, flags, setting) == f"0.50 / {16 / 783:.2f}"
    brightness = detection.Setting("brightness", "all", 0.3, planted=0, seed=0)
    assert detection.artefact_share(maps, flags, brightness) == ""  # the whole image: no region to compare
