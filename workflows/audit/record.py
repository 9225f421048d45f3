"""One audit as table rows: what a :class:`workflows.pipeline.RunResult` says about each class.

One row per (class, cluster), so the history is a flat table that pandas can filter, group
and plot directly; the class-level columns (the 5 smallest eigenvalues, eigengap, cluster
count) repeat on every cluster row of their class.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

N_SMALLEST = 5
"""Eigenvalues kept per class: the 5 smallest, as in the cross-class comparison (Fig. 6.5, L2117, L2124)."""

LAMBDA_COLUMNS = [f"lambda_{i}" for i in range(1, N_SMALLEST + 1)]

SCHEMA = pa.schema(
    [
        ("audit_id", pa.string()),
        ("started_at", pa.timestamp("us", tz="UTC")),
        ("finished_at", pa.timestamp("us", tz="UTC")),
        ("model_name", pa.string()),
        ("model_version", pa.string()),
        ("model_fingerprint", pa.string()),
        ("dataset_fingerprint", pa.string()),
        ("class_name", pa.string()),
        ("analysis_key", pa.string()),
        ("settings_key", pa.string()),
        ("n_samples", pa.int64()),
        ("n_computed", pa.int64()),
        ("reused_analysis", pa.bool_()),
        *[(name, pa.float64()) for name in LAMBDA_COLUMNS],
        ("eigengap", pa.float64()),
        ("n_clusters", pa.int64()),
        ("cluster", pa.int64()),
        ("cluster_size", pa.int64()),
        ("suspicion", pa.float64()),
        ("prototype", pa.list_(pa.float32())),
        ("tag", pa.string()),
    ]
)
"""The history table's columns; every audit file is written with exactly this schema."""

COLUMNS = SCHEMA.names


def audit_frame(
    run_result: Any,
    *,
    audit_id: str,
    started_at: datetime,
    finished_at: datetime,
    model_name: str,
    model_version: str,
    tags: dict[str, list[str]] | None = None,
) -> pd.DataFrame:
    """The rows of one audit, from a ``RunResult`` (``workflows.pipeline``, docs/interfaces.md);
    ``tags`` gives each class's clusters their tag kinds ("" for none), in cluster-table order."""
    audit = {
        "audit_id": audit_id,
        "started_at": pd.Timestamp(started_at),
        "finished_at": pd.Timestamp(finished_at),
        "model_name": model_name,
        "model_version": model_version,
        "model_fingerprint": run_result.model_fingerprint,
        "dataset_fingerprint": run_result.dataset_fingerprint,
    }
    rows = [
        {**audit, **row}
        for outcome in run_result.outcomes
        for row in _class_rows(outcome, (tags or {}).get(outcome.class_name))
    ]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["tag"] = frame["tag"].fillna("")
    return frame


def _class_rows(outcome: Any, tags: list[str] | None) -> list[dict[str, Any]]:
    eigenvalues = np.asarray(outcome.eigenvalues, dtype=float)
    smallest = np.full(N_SMALLEST, np.nan)
    smallest[: min(N_SMALLEST, eigenvalues.size)] = eigenvalues[:N_SMALLEST]
    per_class = {
        "class_name": outcome.class_name,
        "analysis_key": outcome.analysis_key,
        "settings_key": outcome.settings_key,
        "n_samples": int(outcome.n_samples),
        "n_computed": int(outcome.n_computed),
        "reused_analysis": bool(outcome.reused_analysis),
        **dict(zip(LAMBDA_COLUMNS, smallest.tolist(), strict=True)),
        "eigengap": eigengap_at(eigenvalues, int(outcome.n_clusters)),
        "n_clusters": int(outcome.n_clusters),
    }
    clusters = outcome.clusters
    ids = clusters["cluster"] if "cluster" in clusters.columns else clusters.index
    return [
        {
            **per_class,
            "cluster": int(cluster_id),
            "cluster_size": int(size),
            "suspicion": float(suspicion),
            "prototype": np.asarray(prototype, dtype=np.float32).ravel(),
            "tag": tag,
        }
        for cluster_id, size, suspicion, prototype, tag in zip(
            ids,
            clusters["size"],
            clusters["suspicion"],
            clusters["prototype"],
            tags or [""] * len(clusters),
            strict=True,
        )
    ]


def eigengap_at(eigenvalues: np.ndarray, n_clusters: int) -> float:
    """The gap lambda_{K+1} - lambda_K after the chosen K clusters (eigenvalues ascending, L2087).

    NaN when fewer than K+1 eigenvalues were computed.
    """
    if n_clusters < 1 or eigenvalues.size <= n_clusters:
        return float("nan")
    return float(eigenvalues[n_clusters] - eigenvalues[n_clusters - 1])


__all__ = ["COLUMNS", "LAMBDA_COLUMNS", "N_SMALLEST", "SCHEMA", "audit_frame", "eigengap_at"]
