"""The unit of work of the compute workflow: relevance maps for one store chunk.

Runs on a Dask worker (or in the client process). The model and image source are loaded
once per process and cached by their spec, so a task carries only small specs, never the
model itself. The work runs under :func:`workflows.process_settings.relevance_compute`: a fixed
number of torch threads per process (with 2 threads per worker under load one forward pass
took 136 ms instead of 3.9 ms; ARCHITECTURE.md, LRP facts), one BLAS thread, glibc tuned.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from relevance_store import ClassKey, nodes, open_store
from spray.analysis.pooling import sum_pool
from spray.errors import SprayError
from workflows.process_settings import relevance_compute
from workflows.settings import ComputeSettings

NON_FINITE = "non-finite relevance or score"


@dataclass(frozen=True)
class ChunkTask:
    """Everything a worker needs to compute and write chunk ``chunk`` of one class group:
    where, which samples and output, the model and data specs, and the compute settings whole."""

    store: str
    key: ClassKey
    chunk: int
    sample_ids: tuple[str, ...]
    target: int
    model_spec: dict
    source_spec: dict
    settings: ComputeSettings
    torch_threads: int


@dataclass(frozen=True)
class ChunkResult:
    key: ClassKey
    chunk: int
    n_samples: int
    n_errors: int


# Per-process caches: spec (as canonical JSON) -> loaded model / opened source.
_MODELS: dict[str, Any] = {}
_SOURCES: dict[str, Any] = {}


def _spec_key(spec: Any, device: str = "cpu") -> str:
    return json.dumps([spec, device], sort_keys=True, default=str)


def cached_model(spec: dict, device: str = "cpu") -> Any:
    """The :class:`spray.models.LoadedModel` for ``spec`` on ``device``, loaded (and moved) once per process.

    Cached under the spec asked for and under the loaded model's own ``spec``, which is
    what tasks carry, so the client's model is reused by tasks run in-process.
    """
    if _spec_key(spec, device) not in _MODELS:
        if device != "cpu":
            cpu = cached_model(spec)
            model = dataclasses.replace(cpu, module=copy.deepcopy(cpu.module).to(device))
        else:
            from spray.models import load_model

            model = load_model(**spec)
        _MODELS[_spec_key(spec, device)] = _MODELS[_spec_key(model.spec, device)] = model
    return _MODELS[_spec_key(spec, device)]


def cached_source(spec: str | dict) -> Any:
    """The :class:`spray.data.ImageSource` for ``spec``, opened once per process (same keys as above)."""
    if _spec_key(spec) not in _SOURCES:
        from spray.data import open_source

        source = open_source(spec)
        _SOURCES[_spec_key(spec)] = _SOURCES[_spec_key(source.spec())] = source
    return _SOURCES[_spec_key(spec)]


def resolve_device(requested: str) -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; ``cuda`` without a GPU is an error."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SprayError(f"--device {requested}: torch sees no CUDA device here; use --device cpu (or auto)")
        index = int(requested.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise SprayError(
                f"--device {requested}: there are {torch.cuda.device_count()} CUDA device(s); use cuda:0 .. cuda:N-1"
            )
    return requested


def worker_device(requested: str) -> str:
    """The device of this process: a local Dask worker named ``i`` uses GPU ``i`` (mod the GPUs it
    sees), so that one worker per GPU (``workflows.cluster``) spreads over them; elsewhere
    ``cuda`` is ``cuda:0`` (a remote worker usually sees only its own GPU)."""
    device = resolve_device(requested)
    if device != "cuda":
        return device
    import torch

    try:
        from distributed import get_worker

        name = get_worker().name
    except (ImportError, ValueError):
        name = 0
    index = int(name) if str(name).isdigit() else 0
    return f"cuda:{index % torch.cuda.device_count()}"


def thumbnail(x: np.ndarray, preprocessing: Any, size: int) -> np.ndarray:
    """(size, size, 3) uint8 picture of a model input: normalisation undone, resized (grey as RGB)."""
    pixels = preprocessing.to_pixels(x)
    return np.asarray(Image.fromarray(pixels).resize((size, size), Image.Resampling.BILINEAR))


def load_inputs(
    source: Any, preprocessing: Any, sample_ids: tuple[str, ...], size: int | None = None
) -> tuple[list[np.ndarray | None], list[str]]:
    """Preprocessed inputs per sample (None where it failed) and the failure reasons ("" if fine).

    ``size``: the input side every sample must have (a pipeline without a fixed size, such as
    ``native``, gives each image's own; a sample of another size is skipped and recorded)."""
    inputs: list[np.ndarray | None] = []
    reasons: list[str] = []
    for sample_id in sample_ids:
        try:
            x = preprocessing(source.load(sample_id).image, sample_id)
            if size is not None and x.shape[-1] != size:
                raise SprayError(
                    f"{sample_id} gives a {x.shape[-1]}x{x.shape[-1]} input, the others {size}x{size}; "
                    "set --input-size or a resizing --preprocessing preset"
                )
            inputs.append(x)
            reasons.append("")
        except SprayError as error:  # unreadable image, bad shape: skip and record (issue 4)
            inputs.append(None)
            reasons.append(str(error) or type(error).__name__)
    return inputs, reasons


@dataclass(frozen=True)
class Explained:
    """A stack of inputs explained: channel-summed relevance (B, H, W), the target logit (B,), the
    top output (B,), and (with a layer) the relevance at its channels summed over space and its
    largest activation per channel (B, C) each."""

    maps: np.ndarray
    scores: np.ndarray
    predicted: np.ndarray
    latent: np.ndarray | None
    latent_activation: np.ndarray | None


def explain(
    module: Any,
    inputs: np.ndarray,
    target: int,
    composite: str,
    batch_size: int,
    device: str = "cpu",
    layer: str | None = None,
) -> Explained:
    """Explain ``inputs`` in batches; see :class:`Explained` (one backward pass per batch, the
    layer's relevance read on the way)."""
    import torch

    from spray.lrp import attribute_layers

    maps, scores, predicted, latent, activation = [], [], [], [], []
    for start in range(0, len(inputs), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(inputs[start : start + batch_size])).to(device)
        result = attribute_layers(module, batch, target, [layer] if layer else [], composite=composite)
        maps.append(result.relevance.sum(dim=1).float().cpu().numpy())  # sum over colour channels (L938)
        scores.append(result.logits[:, target].float().cpu().numpy())
        predicted.append(result.logits.argmax(dim=1).cpu().numpy().astype(np.int32))
        if layer:
            at_layer, active = result.layers[layer], result.activations[layer]
            latent.append(at_layer.reshape(*at_layer.shape[:2], -1).sum(dim=2).float().cpu().numpy())
            activation.append(active.reshape(*active.shape[:2], -1).amax(dim=2).float().cpu().numpy())
    return Explained(
        np.concatenate(maps),
        np.concatenate(scores),
        np.concatenate(predicted),
        np.concatenate(latent) if layer else None,
        np.concatenate(activation) if layer else None,
    )


def run_chunk(task: ChunkTask) -> ChunkResult:
    """Compute every map of one chunk, write the whole chunk, then mark it done.

    Failed samples (unreadable image, non-finite relevance) keep NaN maps and score and a
    recorded reason; the chunk still completes.
    """
    settings = task.settings
    group = open_store(task.store, "r+").class_group(task.key)
    n, (height, width) = len(task.sample_ids), group.map_shape
    with relevance_compute(task.torch_threads):
        device = worker_device(settings.device)
        model = cached_model(task.model_spec, device)
        inputs, reasons = load_inputs(cached_source(task.source_spec), model.preprocessing, task.sample_ids, width)
        loaded = {i: x for i, x in enumerate(inputs) if x is not None}
        good = list(loaded)
        full = np.full((n, height, width), np.nan, np.float32)
        scores = np.full(n, np.nan, np.float32)
        predicted = np.full(n, -1, np.int32)
        latent = (
            np.full((n, nodes.array(group.group, "latent").shape[1]), np.nan, np.float32) if settings.layer else None
        )
        activation = None if latent is None else latent.copy()
        size = settings.thumbnail_size
        thumbnails = np.zeros((n, size, size, 3), np.uint8) if size else None
        if good:
            stacked = np.stack(list(loaded.values()))
            explained = explain(
                model.module,
                stacked,
                task.target,
                settings.composite,
                settings.batch_for(device),
                device,
                settings.layer,
            )
            full[good], scores[good], predicted[good] = explained.maps, explained.scores, explained.predicted
            if latent is not None and activation is not None:
                latent[good], activation[good] = explained.latent, explained.latent_activation
            if thumbnails is not None and size:
                thumbnails[good] = [thumbnail(x, model.preprocessing, size) for x in stacked]
    for i in good:
        finite = (
            np.isfinite(full[i]).all() and np.isfinite(scores[i]) and (latent is None or np.isfinite(latent[i]).all())
        )
        if not finite:
            reasons[i], full[i], scores[i], predicted[i] = NON_FINITE, np.nan, np.nan, -1
            if latent is not None and activation is not None:
                latent[i] = activation[i] = np.nan
    pooled = {grid: sum_pool(full, grid).astype(np.float32) for grid in group.grids}
    group.write_chunk(
        task.chunk,
        scores=scores,
        predicted=predicted,
        pooled=pooled,
        latent=latent,
        latent_activation=activation,
        full=full if group.full is not None else None,
        thumbnails=thumbnails,
        errors=reasons,
    )
    return ChunkResult(task.key, task.chunk, n, sum(1 for reason in reasons if reason))


def predict_classes(
    model_spec: dict, source_spec: dict, sample_ids: tuple[str, ...], torch_threads: int, settings: ComputeSettings
) -> list[int]:
    """The model's predicted class index per sample (-1 where the image failed to load)."""
    import torch

    predicted = [-1] * len(sample_ids)
    with relevance_compute(torch_threads), torch.no_grad():
        device = worker_device(settings.device)
        model, source = cached_model(model_spec, device), cached_source(source_spec)
        inputs, _ = load_inputs(source, model.preprocessing, sample_ids)
        loaded = {i: x for i, x in enumerate(inputs) if x is not None}
        good = list(loaded)
        batch_size = settings.batch_for(device)
        for start in range(0, len(good), batch_size):
            rows = good[start : start + batch_size]
            logits = model.module(torch.from_numpy(np.stack([loaded[i] for i in rows])).to(device))
            for row, index in zip(rows, logits.argmax(dim=1).tolist(), strict=True):
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
