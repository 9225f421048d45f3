"""Synthetic report data with planted clusters, for tests and for previewing the page design.

Cluster 0 is the "main" strategy (relevance on the object in the centre), cluster 1 looks at
the left of the image, and the last cluster is a planted border artefact: positive relevance
on the top and bottom rows, as the aeroplane padding shortcut (thesis Sec. 6.3.1). No
analysis runs here; the descriptors are computed with obvious formulas from the planted maps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reports.model import ClassReportData, ClassSummary, IndexReportData
from reports.safe import class_page_filename


def _planted_maps(rng: np.random.Generator, patterns: np.ndarray, grid: int) -> np.ndarray:
    yy, xx = np.mgrid[0:grid, 0:grid] / (grid - 1)
    centre = np.exp(-((yy - 0.5) ** 2 + (xx - 0.5) ** 2) / 0.03)
    left = np.exp(-((yy - 0.5) ** 2 + (xx - 0.2) ** 2) / 0.02)
    border = np.zeros((grid, grid))
    border[:2], border[-2:] = 1.0, 1.0
    maps = np.stack([centre, left, border])[patterns]
    return maps + 0.15 * rng.standard_normal(maps.shape)


def _border_share(prototype: np.ndarray) -> float:
    positive = np.clip(prototype, 0, None)
    inner = positive[2:-2, 2:-2].sum()
    return float(1 - inner / positive.sum())


def synthetic_class_data(
    n_samples: int = 300,
    n_clusters: int = 3,
    *,
    class_name: str = "aeroplane",
    grid: int = 20,
    thumbnail: int = 48,
    seed: int = 0,
) -> ClassReportData:
    """A class of ``n_samples`` with ``n_clusters`` planted strategies (the last one a border artefact)."""
    rng = np.random.default_rng(seed)
    weights = np.array([0.7] + [0.3 / (n_clusters - 1)] * (n_clusters - 1)) if n_clusters > 1 else np.ones(1)
    labels = rng.choice(n_clusters, size=n_samples, p=weights)
    labels[:n_clusters] = np.arange(n_clusters)  # every cluster non-empty
    # pattern 0 (centre) for the main cluster, 2 (border) for the last, 1 (left) in between
    patterns = np.where(labels == 0, 0, np.where(labels == n_clusters - 1, 2, 1))
    maps = _planted_maps(rng, patterns, grid)
    colours = rng.integers(40, 216, size=(n_clusters, 3))
    images = np.clip(
        colours[labels][:, None, None, :] + rng.normal(0, 30, size=(n_samples, thumbnail, thumbnail, 3)), 0, 255
    ).astype(np.uint8)
    centres = rng.normal(0, 12, size=(n_clusters, 2))
    embeddings = {method: centres[labels] + rng.normal(0, 1.5, size=(n_samples, 2)) for method in ("tsne", "umap")}
    eigenvalues = np.concatenate([np.sort(rng.uniform(0, 0.01, n_clusters)), np.linspace(0.3, 0.9, 32 - n_clusters)])
    eigenvalues[0] = 0.0
    rows = []
    for cluster in range(n_clusters):
        members = np.flatnonzero(labels == cluster)
        prototype = maps[members].mean(axis=0)
        distance = np.linalg.norm((maps[members] - prototype).reshape(len(members), -1), axis=1)
        rows.append(
            {
                "cluster": cluster,
                "size": len(members),
                "border_share": _border_share(prototype),
                "suspicion": float(cluster == n_clusters - 1) * 1.3 + 0.1 * cluster / n_clusters,
                "separation": float(cluster == n_clusters - 1) * 1.4 + 0.2 * cluster / n_clusters,
                "distinctness": float(cluster == n_clusters - 1) * 0.2 + 0.02 * cluster / n_clusters,
                "suspicious": bool(cluster == n_clusters - 1),
                "conductance": float(rng.uniform(0.01, 0.2)),
                "stability": float(rng.uniform(0.7, 1.0)),
                "medoids": members[np.argsort(distance)[:6]].tolist(),
                "prototype": prototype,
            }
        )
    return ClassReportData(
        class_name=class_name,
        model_name="demo-cnn",
        dataset_name="demo",
        sample_ids=[f"{class_name}/img_{i:05d}.png" for i in range(n_samples)],
        scores=rng.normal(3, 1, n_samples),
        is_true_positive=rng.random(n_samples) < 0.9,
        labels=labels,
        eigenvalues=eigenvalues,
        n_clusters=n_clusters,
        embeddings=embeddings,
        image_thumbnails=images,
        relevance_thumbnails=maps,
        clusters=pd.DataFrame(rows),
        stability={"grid=10": 0.91, "grid=50": 0.88, "k-1": 0.95, "k+1": 0.93},
        params={"grid": grid, "k": 6, "n_eigenvalues": 32, "seed": seed},
        provenance={"spray_version": "0.1.0", "model_fingerprint": "abc123", "dataset_fingerprint": "def456"},
    )


def synthetic_index_data(class_names: list[str], seed: int = 0) -> IndexReportData:
    """An index over ``class_names`` with random spectra (ascending, lambda_1 = 0)."""
    rng = np.random.default_rng(seed)
    summaries = []
    for name in class_names:
        eigenvalues = np.concatenate([[0.0], np.sort(rng.uniform(0.005, 0.4, 4))])
        summaries.append(
            ClassSummary(
                class_name=name,
                page_href=class_page_filename(name),
                eigenvalues=eigenvalues,
                largest_gap=float(np.max(np.diff(eigenvalues))),
                n_clusters=int(rng.integers(1, 5)),
                n_samples=int(rng.integers(50, 500)),
                top_suspicion=float(rng.uniform(0, 1.5)),
            )
        )
    return IndexReportData(
        classes=summaries,
        params={"grid": 20, "k": "ceil(ln n)"},
        provenance={"spray_version": "0.1.0", "store": "spray-store.zarr"},
    )
