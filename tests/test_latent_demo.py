"""The demo's colour-cast shortcut (issue 18): a tint over a share of the dog images sits
everywhere in a heatmap, so the pixel analysis cannot isolate it; the relevance at the last
conv layer's channels can. Judged against the world's per-image flags."""

from __future__ import annotations

import numpy as np
import pytest

from relevance_store import open_store
from spray.data import open_source
from workflows.config import RunConfig
from workflows.pipeline import run

pytestmark = pytest.mark.slow
CLASS, LAYER = "dog", "9"  # the demo network's last conv layer (64 channels)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("latent-demo")
    pixel = RunConfig().replace(classes=(CLASS,), store=str(folder / "store.zarr"), reports=str(folder / "reports"))
    run(pixel, progress=False)
    run(pixel.replace(layer=LAYER), progress=False)
    return folder / "store.zarr"


def _best_cluster(store, layer: str | None) -> tuple[float, float]:
    """Precision and recall against the tint flags of the cluster that matches them best (F1)."""
    opened = open_store(store)
    groups = [opened.class_group(key) for key in opened.class_keys()]
    (group,) = [g for g in groups if g.provenance.get("config", {}).get("layer") == layer]
    analysis = group.read_analysis()
    rows, labels = np.asarray(analysis.arrays["rows"]), np.asarray(analysis.arrays["labels"])
    source = open_source("demo")
    flagged = np.array([source.load(group.sample_ids[i]).annotations["shortcut_kind"] == "tint" for i in rows])
    scores = []
    for cluster in np.unique(labels):
        members = labels == cluster
        hits = int((members & flagged).sum())
        scores.append((hits / members.sum(), hits / flagged.sum()))
    return max(scores, key=lambda pr: 2 * pr[0] * pr[1] / max(pr[0] + pr[1], 1e-12))


def test_the_latent_analysis_isolates_the_tinted_dogs(store):
    precision, recall = _best_cluster(store, LAYER)
    assert precision >= 0.9 and recall >= 0.8, f"latent: precision {precision:.2f}, recall {recall:.2f}"


def test_the_pixel_analysis_of_the_same_class_does_not(store):
    precision, recall = _best_cluster(store, None)
    assert not (precision >= 0.9 and recall >= 0.8), f"pixel: precision {precision:.2f}, recall {recall:.2f}"
