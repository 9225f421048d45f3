"""``spray export virelay``: the stored analyses of some classes as one ViRelAy project.

Everything comes from the store (maps, thumbnails, labels, predictions, the latest analysis
of each class); nothing is explained again. The file layout is :mod:`workflows.virelay_layout`.
ViRelAy's spectral embedding needs the eigenvectors of L_sym; an analysis that stored them
(array ``eigenvectors``) gives them directly, an older one without them gets them by running
its spectral steps again on the same stored maps with its stored parameters (pooling, kNN
graph, L_sym, eigenpairs; no t-SNE or UMAP), and the export refuses if that does not give
the stored eigenvalues back.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from relevance_store import AnalysisResult, ClassGroup, open_store
from spray.errors import SprayError
from workflows.virelay_layout import Category, Project, write_project

EIGENVALUE_ATOL = 1e-6
"""Largest difference allowed between stored and re-derived eigenvalues of L_sym (they lie in [0, 2]).
Measured on the demo (2026-12): the same steps on the same maps gave them back exactly; k + 1, or one
of 200 maps replaced, moved them by ~0.06 and ~0.01."""


def _groups(store_path: str, classes: Sequence[str] | None, variant: str | None) -> list[ClassGroup]:
    """The class groups to export (each with an analysis), all of one model, data set and maps settings."""
    store = open_store(store_path, "r")
    every = classes is None or "all" in classes
    keys = [
        k
        for k in store.class_keys()
        if variant is None or k.maps_id.startswith(variant) or k.model_id.startswith(variant)
    ]
    names = sorted({key.class_name for key in keys}) if every else list(dict.fromkeys(classes or ()))
    groups = []
    for name in names:
        group = store.find_class(name, variant)
        if group.analysis_hashes():
            groups.append(group)
        elif not every:
            raise SprayError(
                f"class {name!r} in {store_path} has no stored analysis; run `spray analyze --class {name}` first"
            )
    if not groups:
        raise SprayError(
            f"the store {store_path} holds no analysed class"
            + (f" under --variant {variant}" if variant else "")
            + "; run `spray analyze` first"
        )
    settings = {group.key[:3] for group in groups}
    if len(settings) > 1:
        listed = ", ".join(sorted(f"{g.key.class_name} ({g.key.maps_id[:8]})" for g in groups))
        raise SprayError(
            f"the classes come from {len(settings)} different models or maps settings ({listed}); one "
            "ViRelAy project holds one: pick one with --variant ID or --class"
        )
    order = list(groups[0].provenance["config"]["class_names"])
    return sorted(groups, key=lambda g: order.index(g.key.class_name))


def _analysis_maps(group: ClassGroup, analysis: AnalysisResult, rows: np.ndarray) -> tuple[np.ndarray, int | None]:
    """The maps the analysis ran on and the grid to pool them at (None: already pooled, or an inner
    layer's channel vectors, ``--layer``)."""
    latent = group.latent
    if latent is not None:
        return latent[rows].astype(np.float64), None
    grid = analysis.params.get("grid")
    resolved = analysis.attrs.get("resolved", {})
    if ("grid" in resolved and resolved["grid"] is None) or group.full is None or grid is None:
        return group.pooled(int(grid or group.grids[0]))[rows].astype(np.float64), None
    return np.asarray(group.full[:])[rows].astype(np.float64), int(grid)


def eigenvectors(group: ClassGroup, analysis: AnalysisResult, rows: np.ndarray) -> np.ndarray:
    """(n, m) eigenvectors of the analysis's L_sym, ascending: stored, or re-derived and checked (module doc)."""
    stored = analysis.arrays.get("eigenvectors")
    if stored is not None:
        return np.asarray(stored)
    from spray.analysis import SpectralRelevanceAnalysis

    estimator = SpectralRelevanceAnalysis()
    estimator.set_params(**{k: v for k, v in analysis.params.items() if k in estimator.get_params()})
    maps, grid = _analysis_maps(group, analysis, rows)
    estimator.set_params(grid=grid, embeddings=())
    estimator.fit(maps)
    expected = np.asarray(analysis.arrays["eigenvalues"], dtype=float)
    found = estimator.eigenvalues_[: len(expected)]
    if len(found) != len(expected) or not np.allclose(found, expected, rtol=0, atol=EIGENVALUE_ATOL):
        raise SprayError(
            f"class {group.key.class_name!r}: analysis {analysis.params_hash} keeps no eigenvectors and "
            "running its spectral steps again on the stored maps gives other eigenvalues; run `spray "
            f"analyze --class {group.key.class_name} --force` and export again"
        )
    return estimator.eigenvectors_[:, : len(expected)]


def _relevance_reader(
    group: ClassGroup, analysis: AnalysisResult, rows: np.ndarray
) -> tuple[Callable[[int, int], np.ndarray], tuple[int, int]]:
    """A reader of analysed rows [start, stop) -> their full maps (pooled maps when no full maps are kept),
    and the maps' shape. Full maps are read a block at a time (a 5000-image class at 227 px is 1 GB)."""
    full = group.full
    if full is None:
        pooled = group.pooled(int(analysis.params.get("grid") or group.grids[0]))[rows]
        return (lambda start, stop: pooled[start:stop]), (int(pooled.shape[1]), int(pooled.shape[2]))

    def read(start: int, stop: int) -> np.ndarray:
        return np.asarray(full.get_orthogonal_selection((rows[start:stop], slice(None), slice(None))))

    return read, (int(full.shape[1]), int(full.shape[2]))


def category(group: ClassGroup, analysis: AnalysisResult | None = None) -> Category:
    """The ViRelAy category of one class: its latest (or given) analysis and the stored data of its rows."""
    analysis = analysis or group.read_analysis()
    name = group.key.class_name
    rows = np.asarray(analysis.arrays.get("rows", np.flatnonzero(group.valid)), dtype=np.int64)
    if group.thumbnails is None:
        raise SprayError(
            f"class {name!r} keeps no input thumbnails, which ViRelAy shows as its data set; "
            "recompute it with thumbnails (`spray compute --class NAME --force`)"
        )
    config = group.provenance["config"]
    relevance, map_shape = _relevance_reader(group, analysis, rows)
    labels = np.asarray(analysis.arrays["labels"], dtype=np.int64)
    sample_ids = group.sample_ids
    return Category(
        class_name=name,
        class_index=list(config["class_names"]).index(name),
        sample_ids=[sample_ids[i] for i in rows],
        members=np.asarray(group.labels)[rows] == 1,
        predicted=np.asarray(group.predicted)[rows],
        scores=np.asarray(group.scores)[rows],
        images=np.asarray(group.thumbnails[:])[rows],
        relevance=relevance,
        map_shape=map_shape,
        eigenvalues=np.asarray(analysis.arrays["eigenvalues"], dtype=float),
        eigenvectors=eigenvectors(group, analysis, rows),
        labels=labels,
        n_clusters=int(analysis.attrs.get("n_clusters") or len(np.unique(labels[labels >= 0]))),
        clusterer=str(analysis.params.get("clusterer", "njw")),
        embeddings={m: np.asarray(analysis.arrays[m]) for m in ("tsne", "umap") if m in analysis.arrays},
        attrs={"spray_analysis": analysis.params_hash, "params": analysis.params, "maps_settings": group.key.maps_id},
    )


def _writable_folder(out_dir: str | os.PathLike) -> Path:
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SprayError(f"cannot create the export folder {out} ({error.strerror}); choose another DIR") from None
    if not out.is_dir() or not os.access(out, os.W_OK | os.X_OK):
        raise SprayError(f"the export folder {out} is not a writable folder; choose another DIR")
    return out


def export_virelay(
    store: str, out_dir: str | os.PathLike, classes: Sequence[str] | None = None, variant: str | None = None
) -> tuple[Path, list[Category]]:
    """Write the ViRelAy project of ``classes`` (default: every analysed class) into ``out_dir``.

    Returns the project YAML's path and the exported categories. Bad input (an unknown class,
    a class without analysis, classes of several settings, a folder that cannot be written)
    raises a :class:`SprayError` before any file is written.
    """
    groups = _groups(store, classes, variant)
    out = _writable_folder(out_dir)
    categories = [category(group) for group in groups]
    first = groups[0].provenance
    config = first["config"]
    project = Project(
        name=f"spray: {groups[0].model_name} on {first.get('dataset', {}).get('name', groups[0].key.dataset_id)}",
        model=f"{groups[0].model_name} (fingerprint {groups[0].key.model_id})",
        dataset=f"{first.get('dataset', {}).get('name', groups[0].key.dataset_id)}, split {config.get('split')}",
        class_names=list(config["class_names"]),
        attribution_method=f"LRP, composite {config.get('lrp_composite', '?')}",
        attribution_strategy="predicted_label" if config.get("selection") == "predicted" else "true_label",
        categories=categories,
    )
    return write_project(project, out), categories
