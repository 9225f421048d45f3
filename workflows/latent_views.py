"""What the class page shows for an analysis at an inner layer: each cluster's top channels, the
input-space relevance that flows through each of them for the cluster's medoids, and the
class's images that activate each channel most.

A latent cluster is a set of images whose relevance goes through the same channels ("concepts",
Concept Relevance Propagation, Achtibat et al. 2023). A channel ranks high for a cluster when it
carries a larger share of the cluster's relevance than of the class's: share = the cluster's
mean positive channel relevance over its sum, minus the same for the whole class. For each top
channel the conditional relevance (``spray.lrp.conditional_relevance``: only the relevance
flowing through that channel, propagated to the input) of the cluster's medoids shows *where*
in the image the concept sits, and the class images with the largest activation of the channel
show *what* it responds to. Computed once per analysis with the model (a few LRP passes per
cluster) and kept in the store beside the analysis, so the page is rendered from the store.
"""

from __future__ import annotations

import numpy as np

from relevance_store import AnalysisResult, ClassGroup
from spray.analysis.pooling import sum_pool
from spray.errors import StoreError
from workflows.config import RunConfig
from workflows.process_settings import relevance_compute
from workflows.relevance_task import cached_model, cached_source, load_inputs

TOP_CHANNELS = 3
MEDOIDS = 3
TOP_IMAGES = 5
VIEW_SIDE = 64
"""Conditional maps are kept sum-pooled to at most 64 x 64 (the page shows them at that size)."""


def channel_shares(latent: np.ndarray, labels: np.ndarray, clusters: list[int]) -> np.ndarray:
    """(K, C): each cluster's share of positive channel relevance minus the class's share."""
    positive = np.clip(latent, 0, None)

    def share(rows: np.ndarray) -> np.ndarray:
        total = positive[rows].mean(axis=0)
        return total / total.sum() if total.sum() > 0 else total

    everyone = share(np.ones(len(latent), bool))
    return np.stack([share(labels == c) - everyone for c in clusters])


def compute_views(config: RunConfig, group: ClassGroup, analysis: AnalysisResult) -> dict[str, np.ndarray]:
    """Compute (or read back) the latent views of one latent analysis and keep them in the store."""
    kept = group.latent_views(analysis.params_hash)
    if kept is not None:
        return kept
    import torch

    from spray.lrp import conditional_relevance

    layer = group.provenance["config"]["layer"]
    rows = np.asarray(analysis.arrays["rows"])
    labels = np.asarray(analysis.arrays["labels"])
    table = analysis.tables["clusters"]
    clusters = [int(c) for c in table["cluster"]]
    all_latent, all_activation = group.latent, group.latent_activation
    if all_latent is None or all_activation is None:
        raise StoreError(f"{group.key} keeps no latent relevance; compute its maps with --layer for a latent analysis")
    latent, activation = all_latent[rows], all_activation[rows]
    shares = channel_shares(latent, labels, clusters)
    top = np.argsort(-shares, axis=1, kind="stable")[:, :TOP_CHANNELS]
    medoids = np.full((len(clusters), MEDOIDS), -1, np.int64)
    for k, chosen in enumerate(table["medoids"]):
        chosen = list(np.asarray(chosen, dtype=np.int64))[:MEDOIDS]
        medoids[k, : len(chosen)] = chosen
    strongest = np.argsort(-activation, axis=0, kind="stable")[:TOP_IMAGES].T  # (C, TOP_IMAGES)

    model = cached_model(config.model_spec(cached_source(config.data).class_order))
    source = cached_source(config.data)
    ids = group.sample_ids
    target = model.class_names.index(group.key.class_name)
    side = min(VIEW_SIDE, group.map_shape[0])
    maps = np.zeros((len(clusters), TOP_CHANNELS, MEDOIDS, side, side), np.float32)
    with relevance_compute(1):
        for k in range(len(clusters)):
            present = [i for i in medoids[k] if i >= 0]
            inputs, _ = load_inputs(source, model.preprocessing, tuple(ids[rows[i]] for i in present))
            loaded = {j: x for j, x in enumerate(inputs) if x is not None}
            readable = list(loaded)
            if not readable:
                continue
            x = torch.from_numpy(np.stack(list(loaded.values())))
            for t, channel in enumerate(top[k]):
                relevance, _ = conditional_relevance(
                    model.module, x, target, layer, [int(channel)], config.compute.composite
                )
                summed = relevance.sum(dim=1).numpy()
                maps[k, t, readable] = sum_pool(summed, side) if side < summed.shape[-1] else summed
    views: dict[str, np.ndarray] = {
        "channels": top.astype(np.int64),
        "shares": np.take_along_axis(shares, top, axis=1).astype(np.float32),
        "medoids": medoids,
        "maps": maps,
        "top_images": strongest[top].astype(np.int64),
    }
    group.writable().write_latent_views(analysis.params_hash, views)
    return views


__all__ = ["MEDOIDS", "TOP_CHANNELS", "TOP_IMAGES", "channel_shares", "compute_views"]
