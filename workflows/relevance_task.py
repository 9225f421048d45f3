"""The unit of work of the compute workflow: relevance maps for one store chunk.

Runs on a Dask worker (or in the client process). The model and image source are loaded
once per process and cached by their spec, so a task carries only small specs, never the
model itself. The work runs under :func:`workflows.process_settings.relevance_compute`: a fixed
number of torch threads per process (with 2 threads per worker under load one forward pass
took 136 ms instead of 3.9 ms; ARCHITECTURE.md, LRP facts), one BLAS thread, glibc tuned.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from relevance_store import ClassKey, open_store
from spray.analysis.pooling import sum_pool
from spray.errors import SprayError
from workflows.process_settings import relevance_compute

NON_FINITE = "non-finite relevance or score"


@dataclass(frozen=True)
class ChunkTask:
    """Everything a worker needs to compute and write chunk ``chunk`` of one class group."""

    store: str
    key: ClassKey
    chunk: int
    sample_ids: tuple[str, ...]
    target: int
    grids: tuple[int, ...]
    full_maps: bool
    thumbnail_size: int | None
    model_spec: dict
    source_spec: dict
    composite: str
    torch_threads: int
    batch_size: int


@dataclass(frozen=True)
class ChunkResult:
    key: ClassKey
    chunk: int
    n_samples: int
    n_errors: int


# Per-process caches: spec (as canonical JSON) -> loaded model / opened source.
_MODELS: dict[str, Any] = {}
_SOURCES: dict[str, Any] = {}


def _spec_key(spec: Any) -> str:
    return json.dumps(spec, sort_keys=True, default=str)


def cached_model(spec: dict) -> Any:
    """The :class:`spray.models.LoadedModel` for ``spec``, loaded once per process.

    Cached under the spec asked for and under the loaded model's own ``spec``, which is
    what tasks carry, so the client's model is reused by tasks run in-process.
    """
    if _spec_key(spec) not in _MODELS:
        from spray.models import load_model

        model = load_model(**spec)
        _MODELS[_spec_key(spec)] = _MODELS[_spec_key(model.spec)] = model
    return _MODELS[_spec_key(spec)]


def cached_source(spec: str | dict) -> Any:
    """The :class:`spray.data.ImageSource` for ``spec``, opened once per process (same keys as above)."""
    if _spec_key(spec) not in _SOURCES:
        from spray.data import open_source

        source = open_source(spec)
        _SOURCES[_spec_key(spec)] = _SOURCES[_spec_key(source.spec())] = source
    return _SOURCES[_spec_key(spec)]


def thumbnail(x: np.ndarray, preprocessing: Any, size: int) -> np.ndarray:
    """(size, size, 3) uint8 picture of a model input: normalisation undone, resized."""
    mean = np.asarray(preprocessing.mean, np.float32)
    std = np.asarray(preprocessing.std, np.float32)
    pixels = np.clip((x.transpose(1, 2, 0) * std + mean) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.asarray(Image.fromarray(pixels).resize((size, size), Image.Resampling.BILINEAR))


def load_inputs(source: Any, preprocessing: Any, sample_ids: tuple[str, ...]) -> tuple[list[np.ndarray | None], list[str]]:
    """Preprocessed inputs per sample (None where it failed) and the failure reasons ("" if fine)."""
    inputs: list[np.ndarray | None] = []
    reasons: list[str] = []
    for sample_id in sample_ids:
        try:
            inputs.append(preprocessing(source.load(sample_id).image, sample_id))
            reasons.append("")
        except SprayError as error:  # unreadable image, bad shape: skip and record (issue 4)
            inputs.append(None)
            reasons.append(str(error) or type(error).__name__)
    return inputs, reasons


def explain(module: Any, inputs: np.ndarray, target: int, composite: str,
            batch_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Channel-summed relevance (B, H, W), the target logit (B,) and the top output (B,) of a stack of inputs."""
    import torch

    from spray.lrp import attribute

    maps, scores, predicted = [], [], []
    for start in range(0, len(inputs), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(inputs[start:start + batch_size]))
        relevance, logits = attribute(module, batch, target, composite=composite)
        maps.append(relevance.sum(dim=1).numpy().astype(np.float32))  # sum over colour channels (L938)
        scores.append(logits[:, target].numpy().astype(np.float32))
        predicted.append(logits.argmax(dim=1).numpy().astype(np.int32))
    return np.concatenate(maps), np.concatenate(scores), np.concatenate(predicted)


def run_chunk(task: ChunkTask) -> ChunkResult:
    """Compute every map of one chunk, write the whole chunk, then mark it done.

    Failed samples (unreadable image, non-finite relevance) keep NaN maps and score and a
    recorded reason; the chunk still completes.
    """
    with relevance_compute(task.torch_threads):
        model = cached_model(task.model_spec)
        inputs, reasons = load_inputs(cached_source(task.source_spec), model.preprocessing, task.sample_ids)
        good = [i for i, x in enumerate(inputs) if x is not None]
        n, crop = len(task.sample_ids), model.preprocessing.crop_size
        full = np.full((n, crop, crop), np.nan, np.float32)
        scores = np.full(n, np.nan, np.float32)
        predicted = np.full(n, -1, np.int32)
        thumbnails = np.zeros((n, task.thumbnail_size, task.thumbnail_size, 3), np.uint8) if task.thumbnail_size else None
        if good:
            stacked = np.stack([inputs[i] for i in good])
            full[good], scores[good], predicted[good] = explain(model.module, stacked, task.target, task.composite,
                                                                task.batch_size)
            if thumbnails is not None:
                thumbnails[good] = [thumbnail(x, model.preprocessing, task.thumbnail_size) for x in stacked]
    for i in good:
        if not (np.isfinite(full[i]).all() and np.isfinite(scores[i])):
            reasons[i], full[i], scores[i], predicted[i] = NON_FINITE, np.nan, np.nan, -1
    pooled = {grid: sum_pool(full, grid).astype(np.float32) for grid in task.grids}
    group = open_store(task.store, "r+").class_group(task.key)
    group.write_chunk(task.chunk, scores=scores, predicted=predicted, pooled=pooled, full=full if task.full_maps else None,
                      thumbnails=thumbnails, errors=reasons)
    return ChunkResult(task.key, task.chunk, n, sum(1 for reason in reasons if reason))


def predict_classes(model_spec: dict, source_spec: dict, sample_ids: tuple[str, ...], torch_threads: int,
                    batch_size: int) -> list[int]:
    """The model's predicted class index per sample (-1 where the image failed to load)."""
    import torch

    predicted = [-1] * len(sample_ids)
    with relevance_compute(torch_threads), torch.no_grad():
        model, source = cached_model(model_spec), cached_source(source_spec)
        inputs, _ = load_inputs(source, model.preprocessing, sample_ids)
        good = [i for i, x in enumerate(inputs) if x is not None]
        for start in range(0, len(good), batch_size):
            rows = good[start:start + batch_size]
            logits = model.module(torch.from_numpy(np.stack([inputs[i] for i in rows])))
            for row, index in zip(rows, logits.argmax(dim=1).tolist()):
                predicted[row] = int(index)
    return predicted


def store_visible(location: str) -> bool:
    """Whether this process can open the store (run on every worker of a remote cluster)."""
    try:
        open_store(location, "r")
        return True
    except (SprayError, OSError):
        return False


def cpu_count() -> int:
    return os.cpu_count() or 1
