"""A user's own model that learnt a planted shortcut, run from the CLI on an image folder: spray
finds the shortcut's images without being told, names the class on the index, and raises no
alarm in the classes without one. Ground truth: the planted files' names, never a proxy.

The model is a small CNN trained here for two epochs on Fashion-MNIST with a bright 4x4 patch in
the top-left corner of 30 % of the shirts (train and test). Seeds 0, 1 and 2 gave the shirts'
most suspicious cluster precision 0.98-1.00, recall 1.00 and suspicion 2.1-2.7; this test uses
seed 0 (about 35 s)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from relevance_store import open_store
from spray.cli import cli
from spray.data.fashion_mnist import CLASS_NAMES, DEFAULT_ROOT, FILES, read_idx

pytestmark = pytest.mark.skipif(
    not all((DEFAULT_ROOT / name).is_file() for pair in FILES.values() for name in pair),
    reason="needs the Debian package dataset-fashion-mnist (installed by `make test`)",
)

MODEL = textwrap.dedent(
    """
    from torch import nn


    def network():
        return nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(16 * 7 * 7, 10),
        )
    """
)
PLANTED_CLASS, PREVALENCE, SEED = "shirt", 0.3, 0
FOLDER_CLASSES = ("shirt", "coat", "pullover")
PER_CLASS = 300


def _planted(split: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first ``n`` images of ``split`` with the patch in ``PREVALENCE`` of the planted class's."""
    images = read_idx(DEFAULT_ROOT / FILES[split][0])[:n].copy()
    labels = read_idx(DEFAULT_ROOT / FILES[split][1])[:n].astype(np.int64)
    members = np.flatnonzero(labels == CLASS_NAMES.index(PLANTED_CLASS))
    flags = np.zeros(n, dtype=bool)
    flags[rng.choice(members, size=round(PREVALENCE * len(members)), replace=False)] = True
    images[np.ix_(flags, range(1, 5), range(1, 5))] = 255
    return images, labels, flags


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, str]:
    """The model trained on planted data, the planted test images as a folder, and `spray run --class all`."""
    root = tmp_path_factory.mktemp("shortcut")
    (root / "my_model.py").write_text(MODEL)
    namespace: dict = {}
    exec(MODEL, namespace)
    torch.manual_seed(SEED)
    network = namespace["network"]()
    rng = np.random.default_rng(SEED)
    images, labels, _ = _planted("train", 12000, rng)
    x, y = torch.from_numpy(images[:, None].astype(np.float32) / 255.0), torch.from_numpy(labels)
    optimiser = torch.optim.Adam(network.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(SEED)
    for _ in range(2):
        for batch in torch.randperm(len(y), generator=generator).split(128):
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(network(x[batch]), y[batch]).backward()
            optimiser.step()
    torch.save(network.state_dict(), root / "weights.pt")

    images, labels, flags = _planted("test", 10000, rng)
    for name in FOLDER_CLASSES:
        (root / "images" / name).mkdir(parents=True)
        for i in np.flatnonzero(labels == CLASS_NAMES.index(name))[:PER_CLASS]:
            Image.fromarray(images[i]).save(root / "images" / name / f"{i:05d}{'-planted' if flags[i] else ''}.png")
    (root / "class_names.txt").write_text("\n".join(CLASS_NAMES) + "\n")  # the model's output order

    result = CliRunner().invoke(
        cli,
        [
            "run",
            "--class",
            "all",
            "--data",
            str(root / "images"),
            "--model",
            f"{root / 'my_model.py'}:network",
            "--weights",
            str(root / "weights.pt"),
            "--class-names",
            str(root / "class_names.txt"),
            "--preprocessing",
            "native",
            "--store",
            str(root / "store.zarr"),
            "--reports",
            str(root / "reports"),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return root, result.output


def _top_cluster(root: Path, class_name: str) -> tuple[bool, float, float]:
    """Whether the class's most suspicious cluster is marked suspicious, and its precision and
    recall against the planted files."""
    group = open_store(root / "store.zarr").find_class(class_name)
    analysis = group.read_analysis()
    rows, labels = np.asarray(analysis.arrays["rows"]), np.asarray(analysis.arrays["labels"])
    table = analysis.tables["clusters"]
    top = table.loc[table["suspicion_rank"] == 1].iloc[0]
    planted = np.array(["-planted" in group.sample_ids[i] for i in rows])
    members = labels == top["cluster"]
    recall = planted[members].sum() / planted.sum() if planted.any() else float("nan")
    return bool(top["suspicious"]), float(planted[members].mean()), float(recall)


def test_the_planted_shortcut_is_the_suspicious_top_cluster_of_its_class(run) -> None:
    root, output = run
    assert f"{PLANTED_CLASS}: {PER_CLASS} samples" in output
    suspicious, precision, recall = _top_cluster(root, PLANTED_CLASS)
    assert suspicious and precision >= 0.9 and recall >= 0.8, (suspicious, precision, recall)


def test_the_index_names_the_planted_class_and_no_other(run) -> None:
    root, _ = run
    for name in set(FOLDER_CLASSES) - {PLANTED_CLASS}:
        assert not _top_cluster(root, name)[0], f"{name} has no shortcut but was flagged"
    text = re.sub(r"<[^>]+>", " ", (root / "reports" / "index.html").read_text())
    assert re.search(rf"Most suspicious:\s*{PLANTED_CLASS} \(suspicion", text)
    assert "Also suspicious" not in text
