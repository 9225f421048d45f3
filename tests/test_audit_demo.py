"""Audits of two demo model versions through the real pipeline: one trained with the horse
watermark (the committed demo model) and one trained without it (here, in the test).

Both are the built-in demo model (``model`` left out of ``[run]``: the demo architecture and
preprocessing) and differ only in their weights, as two versions of a production model
would. ``load_model`` takes other weights only with a ``--model`` factory, so the test swaps
the demo weights file in-process (the pipeline computes in-process with ``workers = 1``).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from spray.analysis.pooling import sum_pool
from spray.cli import cli
from spray.demo.model import CONFIG_FILE, WEIGHTS_FILE, load_demo_network, network_from_config, read_config
from spray.demo.shortcuts import stamp_watermark
from spray.demo.train import DEMO_PREPROCESSING
from spray.demo.world import DemoWorld
from workflows.audit import AuditHistory
from workflows.audit.comparison import NEW_CLUSTER, RESOLVED_CLUSTER

pytestmark = pytest.mark.slow

GRID = 20
N_CLUSTERS = 3
"""Fixed for audits, so that versions are compared at the same cluster count (the automatic
count, the largest gap, is 1 for the demo horse class: one cloud with the watermarked images
at its edge; at 3 they form their own cluster)."""
HEAD_TRAIN_PER_CLASS = 150
HEAD_EPOCHS = 30
HEAD_INIT_SCALE = 0.05

def retrain_head(marked: dict[str, torch.Tensor], seed: int = 0, watermarked: bool = False) -> dict[str, torch.Tensor]:
    """The watermark model with its dense layers trained again, from scratch with ``seed``, on demo
    images with every watermarked horse left out unless ``watermarked`` (seconds, where a whole
    new CNN takes minutes here).

    The dense layers are where the convolutional features, the watermark detectors among them,
    are turned into class evidence; trained without a single watermark they give the watermark
    no reason to count as "horse".
    """
    network = network_from_config(read_config())
    network.load_state_dict(marked)
    network.eval()
    flatten = next(i for i, layer in enumerate(network) if isinstance(layer, nn.Flatten))
    features, head = network[: flatten + 1], network[flatten + 1 :]
    world = DemoWorld(counts={"train": HEAD_TRAIN_PER_CLASS})
    inputs, targets = [], []
    for sample_id in world.ids("train"):
        sample = world.load(sample_id)
        if not watermarked and sample.annotations.get("shortcut_kind") == "watermark":
            continue
        inputs.append(DEMO_PREPROCESSING(sample.image, sample_id))
        targets.append(world.classes.index(next(iter(sample.labels))))
    with torch.no_grad():
        x = features(torch.from_numpy(np.stack(inputs)))
    y = torch.tensor(targets)
    torch.manual_seed(seed)
    first = True
    for layer in head:
        if isinstance(layer, nn.Linear):
            layer.reset_parameters()
            if first:  # features never active in training (the watermark's) keep weights near 0
                layer.weight.data.mul_(HEAD_INIT_SCALE)
                first = False
    optimiser = torch.optim.Adam(head.parameters(), lr=1e-3, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(seed)
    head.train()
    for _ in range(HEAD_EPOCHS):
        for batch in torch.randperm(len(y), generator=generator).split(64):
            optimiser.zero_grad()
            nn.functional.cross_entropy(head(x[batch]), y[batch]).backward()
            optimiser.step()
    return network.state_dict()


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    """The two weight files: the committed demo model's and the one retrained without the watermark."""
    folder = tmp_path_factory.mktemp("models")
    marked = torch.load(WEIGHTS_FILE, weights_only=True)
    torch.save(marked, folder / "marked.pt")
    torch.save(retrain_head(marked), folder / "clean.pt")
    return folder


def watermark_effect(state: dict[str, torch.Tensor]) -> float:
    """Mean rise of the horse logit when the watermark is stamped on non-horse test images:
    how much a version uses the shortcut (the demo world's own check of it, issue 3)."""
    network = network_from_config(read_config())
    network.load_state_dict(state)
    network.eval()
    world = DemoWorld(counts={"test": 20})
    ids = [sample_id for sample_id in world.ids("test") if "_horse_" not in sample_id]
    images = [world.load(sample_id).image for sample_id in ids]
    plain = np.stack([DEMO_PREPROCESSING(image, i) for image, i in zip(images, ids)])
    stamped = np.stack([DEMO_PREPROCESSING(stamp_watermark(image)[0], i) for image, i in zip(images, ids)])
    horse = world.classes.index("horse")
    with torch.no_grad():
        rise = network(torch.from_numpy(stamped))[:, horse] - network(torch.from_numpy(plain))[:, horse]
    return float(rise.mean())


def write_config(folder: Path, version: str, n_clusters: int | None = N_CLUSTERS) -> Path:
    path = folder / "audit.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            [run]
            classes = ["horse"]
            store = "{folder / 'store.zarr'}"
            reports = "{folder / 'reports'}"
            embeddings = []
            workers = 1
            {f"n_clusters = {n_clusters}" if n_clusters else ""}

            [audit]
            model_name = "demo-classifier"
            version = "{version}"
            """
        )
    )
    return path


def audit(folder: Path, models: Path, version: str, monkeypatch, n_clusters: int | None = N_CLUSTERS):
    """``spray audit`` with the demo model's weights swapped for ``models/<version>.pt`` (and the
    per-process model cache emptied, as a fresh nightly process would have it)."""
    import spray.demo.model as demo_model
    import workflows.relevance_task as relevance_task

    monkeypatch.setattr(demo_model, "load_demo_network", lambda: load_demo_network(CONFIG_FILE, models / f"{version}.pt"))
    monkeypatch.setattr(relevance_task, "_MODELS", {})
    result = CliRunner().invoke(cli, ["audit", "--config", str(write_config(folder, version, n_clusters)), "--no-progress"])
    assert result.exit_code in (0, 3), result.output
    summary = json.loads(Path(result.output.split("summary: ")[1].split()[0]).read_text())
    return result.exit_code, summary


def watermark_region() -> np.ndarray:
    """Where the watermark lands on the 20x20 grid after the demo preprocessing (ground truth)."""
    world, preprocessing = DemoWorld(), DEMO_PREPROCESSING
    region = np.zeros((GRID, GRID))
    for sample_id in world.ids("test", "horse"):
        mask = world.load(sample_id).annotations.get("shortcut_mask")
        if mask is None:
            continue
        marked = preprocessing(np.repeat(mask[..., None] * np.uint8(255), 3, axis=2), sample_id)
        blank = preprocessing(np.zeros((*mask.shape, 3), np.uint8), sample_id)
        region += sum_pool((np.abs(marked - blank).sum(axis=0) > 1e-3)[None].astype(float), GRID)[0]
    return region / region.sum()


def watermark_share(prototype) -> float:
    positive = np.clip(np.asarray(prototype, dtype=float).reshape(GRID, GRID), 0, None)
    return float((positive * (watermark_region() > 0)).sum() / positive.sum())


def test_a_version_without_the_watermark_resolves_the_watermark_cluster(tmp_path, versions, monkeypatch):
    marked_effect = watermark_effect(torch.load(versions / "marked.pt", weights_only=True))
    clean_effect = watermark_effect(torch.load(versions / "clean.pt", weights_only=True))
    assert marked_effect > 1.0 and clean_effect < marked_effect / 3  # one version uses the shortcut, the other far less (v5: 2.8 vs 9.2)

    code, first = audit(tmp_path, versions, "marked", monkeypatch)
    assert code == 0 and first["previous_audit_id"] is None and first["findings"] == []

    code, again = audit(tmp_path, versions, "marked", monkeypatch)  # nothing changed: incremental, quiet
    assert code == 0 and again["findings"] == []
    assert [(c["n_computed"], c["reused_analysis"]) for c in again["classes"]] == [(0, True)]

    history = AuditHistory(tmp_path / "store.audit-history").read()
    marked_rows = history[history["audit_id"] == first["audit_id"]]
    watermark = marked_rows.loc[marked_rows["suspicion"].idxmax()]
    main = marked_rows.loc[marked_rows["cluster_size"].idxmax()]
    # The most suspicious cluster of the watermark model looks at the watermark (independently
    # of the suspicion score: the ground-truth masks) far more than the class's main cluster.
    assert watermark_share(watermark["prototype"]) > 1.5 * watermark_share(main["prototype"])

    code, clean = audit(tmp_path, versions, "clean", monkeypatch)
    assert code == 3
    resolved = [f for f in clean["findings"] if f["kind"] == RESOLVED_CLUSTER]
    assert int(watermark["cluster"]) in [f["details"]["cluster"] for f in resolved]
    assert int(main["cluster"]) not in [f["details"]["cluster"] for f in resolved]  # the horse itself: matched
    assert clean["classes"][0]["n_computed"] == clean["classes"][0]["n_samples"]  # a new model: all recomputed

    code, back = audit(tmp_path, versions, "marked", monkeypatch)  # the other order: the shortcut is back
    assert code == 3
    assert back["classes"][0]["n_computed"] == 0  # its maps were in the store already
    new = [f for f in back["findings"] if f["kind"] == NEW_CLUSTER]
    back_rows = AuditHistory(tmp_path / "store.audit-history").read()
    back_rows = back_rows[back_rows["audit_id"] == back["audit_id"]]
    new_prototypes = back_rows[back_rows["cluster"].isin([f["details"]["cluster"] for f in new])]["prototype"]
    assert max(watermark_share(p) for p in new_prototypes) > 1.5 * watermark_share(main["prototype"])
    page = Path(back["page"]).read_text()
    assert "new cluster" in page


def test_two_versions_differing_only_in_their_training_seed_give_no_findings(tmp_path, monkeypatch):
    """Issue 13 item 7: a retrain that changes nothing but the seed (both versions learn the
    watermark) must not raise an alarm, with the default analysis (automatic cluster count)."""
    marked = torch.load(WEIGHTS_FILE, weights_only=True)
    for seed in (1, 2):
        torch.save(retrain_head(marked, seed=seed, watermarked=True), tmp_path / f"seed{seed}.pt")
    first_state, second_state = (torch.load(tmp_path / f"seed{seed}.pt", weights_only=True) for seed in (1, 2))
    assert min(watermark_effect(first_state), watermark_effect(second_state)) > 1.0  # both use the shortcut
    assert any(not torch.equal(first_state[name], second_state[name]) for name in first_state)  # two other models

    code, first = audit(tmp_path, tmp_path, "seed1", monkeypatch, n_clusters=None)
    assert code == 0 and first["findings"] == []
    code, second = audit(tmp_path, tmp_path, "seed2", monkeypatch, n_clusters=None)
    assert second["classes"][0]["n_computed"] == second["classes"][0]["n_samples"]  # other weights: all recomputed
    assert code == 0 and second["findings"] == [], second["findings"]
