"""The files of a ViRelAy project, in the layout ViRelAy 1.0's reader reads (``virelay/model.py``).

ViRelAy (Fraunhofer HHI's browser UI for CoRelAy analyses) opens a project YAML that names a
label map (JSON) and three HDF5 files. Its documentation describes more than its reader uses;
this module writes what the reader of virelay 1.0.0 actually opens:

    label-map.json     [{"index": i, "word_net_id": key, "name": class name}, ...] for every
                       model output; ``word_net_id`` is the category key below, because the
                       reader looks a category's name up by that field (spray knows no WordNet ids)
    dataset.h5         data (M, T, T, 3) uint8 input thumbnails; label (M, C) bool n-hot
                       (a bool label makes the reader treat the set as multi-label)
    attribution.h5     attribution (M, H, W, 2) float32; prediction (M, C) float32; label as above
    analysis.h5        <category>/index (n,) uint32: entries of the two files above
                       <category>/embedding/spectral (n, m) float32, eigenvectors of L_sym in
                           ascending order of their eigenvalues, attribute eigenvalue (m,) float32
                       <category>/embedding/tsne, umap (n, 2) float32
                       <category>/cluster/<clusterer> (n,) int32, attributes k and embedding
    project.yaml       project: name, model, label_map, dataset, attributions, analyses

Choices the reader forces (each one read in ``virelay/model.py`` and ``image_processing.py``):

- Every category must have the same clustering and embedding names: the reader lists them
  from the first category and 404s a category that lacks one. The clustering is therefore
  named by its algorithm only; its cluster count is the ``k`` attribute.
- The attribution has a last axis of 2 channels, the map and zeros. ViRelAy moves a 2-D map's
  axes as if it had three (an error for every square map) and renders a one-channel map only
  with its default colour map; with two channels it sums them (giving the map exactly) and
  every colour map works.
- CoRelAy stores eigenvectors in descending order, so ViRelAy's first two dimensions show the
  least smooth ones; here column 0 is lambda_1 = 0's vector and column 1 the Fiedler vector.
- The analysis method's name has no "-" (the server maps "-" in URLs to "_").

Each entry ``i`` of the dataset and attribution files is one (class, sample) pair: a sample in
two exported classes is explained for each class apart, so it appears twice. Extra datasets
(``sample_id``, ``score``, ``class_name``) are ignored by ViRelAy and kept for people.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spray.atomic import write_text_atomically
from spray.errors import SprayError

ANALYSIS_METHOD = "spray"
SPECTRAL = "spectral"
PROJECT_FILE, LABEL_MAP_FILE = "project.yaml", "label-map.json"
DATASET_FILE, ATTRIBUTION_FILE, ANALYSIS_FILE = "dataset.h5", "attribution.h5", "analysis.h5"
ROWS_PER_WRITE = 256
"""Relevance maps read from the store and written per step (227 x 227 maps: 53 MB a step)."""


@dataclass(frozen=True)
class Category:
    """One class's analysis, as plain data; ``relevance(start, stop)`` reads maps on demand."""

    class_name: str
    class_index: int
    sample_ids: list[str]
    members: np.ndarray  # (n,) bool: the sample is a true member of the class
    predicted: np.ndarray  # (n,) int: the model's top output, -1 unknown
    scores: np.ndarray  # (n,) float: the model's logit for the class
    images: np.ndarray  # (n, T, T, 3) uint8
    relevance: Callable[[int, int], np.ndarray]  # rows [start, stop) -> (stop - start, H, W)
    map_shape: tuple[int, int]
    eigenvalues: np.ndarray  # (m,) ascending
    eigenvectors: np.ndarray  # (n, m), column j belongs to eigenvalues[j]
    labels: np.ndarray  # (n,) cluster per sample, -1 noise
    n_clusters: int
    clusterer: str
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (n, 2)
    attrs: dict = field(default_factory=dict)  # written on the category's group

    @property
    def key(self) -> str:
        """The category's group name and its label's ``word_net_id`` (CoRelAy's form for classes without one)."""
        return category_key(self.class_index)


@dataclass(frozen=True)
class Project:
    """What the project YAML names, and the categories to write."""

    name: str
    model: str
    dataset: str
    class_names: list[str]  # model output order
    attribution_method: str
    attribution_strategy: str  # "true_label" | "predicted_label"
    categories: list[Category]


def category_key(class_index: int) -> str:
    """``"%08d"`` of the output index: an HDF5 group name for any class name (``T-shirt/top`` has a "/")."""
    return f"{class_index:08d}"


def _n_hot(project: Project) -> np.ndarray:
    """(M, C) bool: entry i has class c when some exported class group holds its sample as a true member
    of c. Only membership the store records is claimed: a non-member's other labels stay unknown (False)."""
    known: dict[str, set[int]] = {}
    for category in project.categories:
        for sample_id, member in zip(category.sample_ids, category.members, strict=True):
            if member:
                known.setdefault(sample_id, set()).add(category.class_index)
    rows = [sample_id for category in project.categories for sample_id in category.sample_ids]
    labels = np.zeros((len(rows), len(project.class_names)), dtype=bool)
    for i, sample_id in enumerate(rows):
        labels[i, sorted(known.get(sample_id, ()))] = True
    return labels


def _one_hot(predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """The model's top output as a one-hot row (all zero where unknown): spray stores which output
    won, not the whole logit vector, and ViRelAy's ``prediction`` is read as that vector."""
    rows = np.zeros((len(predicted), n_classes), dtype=np.float32)
    known = (predicted >= 0) & (predicted < n_classes)
    rows[np.flatnonzero(known), predicted[known]] = 1.0
    return rows


def _strings(h5py, values: Sequence[str]) -> np.ndarray:
    return np.asarray([str(v) for v in values], dtype=h5py.string_dtype())


def _write_dataset(h5py, path: Path, project: Project, labels: np.ndarray) -> None:
    images = np.concatenate([c.images for c in project.categories])
    with h5py.File(path, "w") as file:
        file.create_dataset("data", data=images, chunks=(1, *images.shape[1:]), compression="gzip")
        file.create_dataset("label", data=labels)
        file.create_dataset("sample_id", data=_strings(h5py, [s for c in project.categories for s in c.sample_ids]))
        file.create_dataset(
            "class_name", data=_strings(h5py, [c.class_name for c in project.categories for _ in c.sample_ids])
        )


def _write_attributions(h5py, path: Path, project: Project, labels: np.ndarray) -> None:
    height, width = project.categories[0].map_shape
    total = len(labels)
    with h5py.File(path, "w") as file:
        maps = file.create_dataset(
            "attribution",
            shape=(total, height, width, 2),
            dtype=np.float32,
            chunks=(1, height, width, 2),
            compression="gzip",
            shuffle=True,
            fillvalue=0.0,
        )
        start = 0
        for category in project.categories:
            n = len(category.sample_ids)
            for begin in range(0, n, ROWS_PER_WRITE):
                stop = min(n, begin + ROWS_PER_WRITE)
                block = np.asarray(category.relevance(begin, stop), dtype=np.float32)
                maps[start + begin : start + stop, :, :, 0] = block
            start += n
        predicted = np.concatenate([c.predicted for c in project.categories]).astype(np.int64)
        file.create_dataset("prediction", data=_one_hot(predicted, len(project.class_names)))
        file.create_dataset("label", data=labels)
        file.create_dataset("score", data=np.concatenate([c.scores for c in project.categories]).astype(np.float32))
        file["attribution"].attrs["channels"] = "0: channel-summed LRP relevance; 1: zeros (ViRelAy sums channels)"
        file["prediction"].attrs["meaning"] = "one-hot of the model's top output (spray keeps which, not the logits)"


def _write_analysis(h5py, path: Path, project: Project) -> None:
    start = 0
    with h5py.File(path, "w") as file:
        for category in project.categories:
            n = len(category.sample_ids)
            group = file.create_group(category.key)
            group.attrs.update(
                {
                    key: json.dumps(value) if isinstance(value, (dict, list)) else value
                    for key, value in {"class_name": category.class_name, **category.attrs}.items()
                }
            )
            group.create_dataset("index", data=np.arange(start, start + n, dtype=np.uint32))
            embedding = group.create_group("embedding")
            spectral = embedding.create_dataset(SPECTRAL, data=np.asarray(category.eigenvectors, dtype=np.float32))
            spectral.attrs["eigenvalue"] = np.asarray(category.eigenvalues, dtype=np.float32)
            for name, coordinates in category.embeddings.items():
                embedding.create_dataset(name, data=np.asarray(coordinates, dtype=np.float32))
            clustering = group.create_group("cluster").create_dataset(
                category.clusterer, data=np.asarray(category.labels, dtype=np.int32)
            )
            used = max(category.n_clusters, 2)  # the eigenvectors the clusterer saw (spray.analysis.clustering)
            clustering.attrs.update(
                {"embedding": SPECTRAL, "k": category.n_clusters, "index": np.arange(used, dtype=np.uint32)}
            )
            start += n


def _project_yaml(project: Project, thumbnail_side: int) -> str:
    import yaml  # PyYAML comes with dask, a core dependency

    document = {
        "project": {
            "name": project.name,
            "model": project.model,
            "label_map": LABEL_MAP_FILE,
            "dataset": {
                "name": project.dataset,
                "type": "hdf5",
                "path": DATASET_FILE,
                "input_width": thumbnail_side,
                "input_height": thumbnail_side,
                "down_sampling_method": "none",
                "up_sampling_method": "none",
            },
            "attributions": {
                "attribution_method": project.attribution_method,
                "attribution_strategy": project.attribution_strategy,
                "sources": [ATTRIBUTION_FILE],
            },
            "analyses": [{"analysis_method": ANALYSIS_METHOD, "sources": [ANALYSIS_FILE]}],
        }
    }
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def _check(project: Project) -> None:
    if not project.categories:
        raise SprayError("nothing to export: no class with a stored analysis was given")
    names = [set(c.embeddings) for c in project.categories]
    if any(n != names[0] for n in names) or len({c.clusterer for c in project.categories}) > 1:
        raise SprayError(
            "the exported classes have different embeddings or clusterers, which one ViRelAy project "
            "cannot show; export them separately with --class"
        )
    if len({c.map_shape for c in project.categories}) > 1 or len({c.images.shape[1:] for c in project.categories}) > 1:
        raise SprayError(
            "the exported classes have maps or thumbnails of different sizes; export them separately with --class"
        )


def write_project(project: Project, out_dir: str | os.PathLike) -> Path:
    """Write the five files of ``project`` into ``out_dir`` (each replaced whole) and return the YAML's path."""
    try:
        import h5py
    except ImportError:
        raise SprayError("writing a ViRelAy project needs h5py: pip install 'spray[virelay]'") from None
    _check(project)
    out = Path(out_dir)
    labels = _n_hot(project)
    writers = (
        (DATASET_FILE, lambda p: _write_dataset(h5py, p, project, labels)),
        (ATTRIBUTION_FILE, lambda p: _write_attributions(h5py, p, project, labels)),
        (ANALYSIS_FILE, lambda p: _write_analysis(h5py, p, project)),
    )
    for name, write in writers:  # hidden temporary file, then renamed: never half a file under its name
        temporary = out / f".{name}.{uuid.uuid4().hex[:12]}.tmp"
        try:
            write(temporary)
            os.replace(temporary, out / name)
        finally:
            temporary.unlink(missing_ok=True)
    label_map = [
        {"index": i, "word_net_id": category_key(i), "name": name} for i, name in enumerate(project.class_names)
    ]
    write_text_atomically(out / LABEL_MAP_FILE, json.dumps(label_map, indent=2, ensure_ascii=False) + "\n")
    side = int(project.categories[0].images.shape[1])
    return write_text_atomically(out / PROJECT_FILE, _project_yaml(project, side))
