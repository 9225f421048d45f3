"""Compute LRP relevance maps for whole classes into the store, resumably and in parallel.

For each class: select its samples (true-label membership by default, L2100: every test
sample of the class; or the model's predicted label), create the class group at full size,
split the not-yet-done chunks into one task each, and run the tasks on a Dask cluster (a
LocalCluster by default, an existing one with ``scheduler=``) or in this process when a
cluster would not pay for its start-up. Every class of a call runs in one task graph.
Each task writes whole chunks and marks them done last, so a killed run resumes where it
stopped and a rerun with the same inputs gives the same store bits.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from relevance_store import ClassGroup, ClassKey, RelevanceStore, open_store, params_hash
from relevance_store.store import is_local, local_path
from spray import __version__
from spray.analysis.pooling import sum_pool
from spray.class_order import class_order_warning, predicted_share
from spray.errors import SprayError, StoreError, UnknownClassError
from workflows import cluster
from workflows.relevance_task import ChunkTask, cached_model, cached_source, predict_classes, resolve_device, run_chunk
from workflows.settings import ComputeSettings

if TYPE_CHECKING:
    from workflows.config import RunConfig


class ComputeError(SprayError):
    """A compute run that failed part-way; what was finished is kept and a rerun resumes."""


@dataclass(frozen=True)
class ComputeResult:
    """What one call did for one class."""

    key: ClassKey
    n_samples: int
    n_computed: int
    n_errors: int
    chunks_skipped: int
    warning: str | None = None
    """Set when the model predicts the class for no more of its images than chance (``spray.class_order``)."""


def compute_run_classes(config: RunConfig, **options: Any) -> list[ComputeResult]:
    """:func:`compute_classes` for a run's configuration (store, classes, model, data, split, compute
    settings, workers, force, wait); ``options`` add the rest (``progress``, ``executor``). The one
    place where a run configuration becomes a compute call, for `spray compute` and `spray run`."""
    return compute_classes(
        config.store,
        list(config.classes),
        model_spec=config.model_spec(),
        source_spec=config.data,
        split=config.split,
        settings=config.compute,
        scheduler=config.scheduler,
        workers=config.workers,
        force=config.force,
        wait=config.wait,
        **options,
    )


def compute_class(store: str | os.PathLike, class_name: str, **options: Any) -> ComputeResult:
    """Compute one class; see :func:`compute_classes` for the options."""
    return compute_classes(store, [class_name], **options)[0]


def compute_classes(
    store: str | os.PathLike,
    classes: Sequence[str] | str,
    *,
    model_spec: dict | None = None,
    source_spec: str | dict = "demo",
    split: str | None = "test",
    settings: ComputeSettings | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    force: bool = False,
    wait: bool = False,
    progress: bool = True,
    executor: cluster.Executor | None = None,
    **setting_overrides: Any,
) -> list[ComputeResult]:
    """Compute (or resume) the relevance maps of ``classes`` ("all" = every class) into ``store``.

    ``model_spec`` is passed to ``spray.models.load_model(**model_spec)`` (None: the demo
    model; a user model's outputs default to the data set's ``class_order``); ``source_spec``
    to ``spray.data.open_source``; ``settings`` say how maps are made and stored (default:
    thesis composite, true-label samples, 20x20 grid, L2100); keyword arguments named like its
    fields (``composite="epsilon"``, ``chunk_size=8``) override single settings. Runs on ``scheduler`` when
    given; else on a LocalCluster of ``workers`` processes when ``workers > 1`` (one per GPU
    when the device is a GPU); else (``workers=None``) on one worker per core when there are
    at least ``settings.LOCAL_CLUSTER_MIN_MAPS`` maps, in this process otherwise.
    Chunks already done are skipped unless ``force``, which recomputes the maps of these
    settings only. A class being written by another process raises :class:`StoreError`
    unless ``wait``. ``executor`` (``workflows.cluster.Executor``) lets a caller keep the
    workers for later stages (the pipeline's analysis); by default they close on return.
    """
    settings = (settings or ComputeSettings()).replace(**setting_overrides)
    location = str(local_path(os.fspath(store))) if is_local(os.fspath(store)) else os.fspath(store)
    source = cached_source(source_spec)
    model_spec = dict(model_spec or {})
    if model_spec.get("model") and not model_spec.get("classes"):
        model_spec["classes"] = source.class_order
    model = cached_model(model_spec)
    resolve_device(settings.device)  # fail now, not in every task
    names = _class_names(classes, model, source)
    variant = Variant(model, source, split, settings)
    stored = None if force else _stored_complete(location, variant, names)
    if stored is not None:  # everything is there: read only, no lock (a read-only store works)
        return [_finish(group, 0, 0, record=False) for group in stored]
    relevance_store = open_store(location, "a")
    with contextlib.ExitStack() as stack:
        locks = [
            stack.enter_context(relevance_store.writer_lock(variant.key(name), wait=wait)) for name in names
        ]  # every class's writer lock, held for the whole run
        if executor is None:
            executor = cluster.Executor(stack, scheduler, workers, location, settings.device)
        selected = _select(executor, variant, names)
        groups = [
            _prepare_group(relevance_store, variant, name, ids, labels, force=force)
            for name, (ids, labels) in selected.items()
        ]
        pending = {group.key: group.pending_chunks() for group in groups}
        runner, threads = executor.choose(sum(group.rows_in_chunks(pending[group.key]) for group in groups))
        ids_of = {group.key: group.sample_ids for group in groups}  # one read of each id array
        tasks = [
            ChunkTask(
                location,
                group.key,
                chunk,
                tuple(ids_of[group.key][group.chunk_rows(chunk)]),
                model.class_names.index(group.key.class_name),
                model.spec,
                source.spec(),
                settings,
                threads,
            )
            for group in groups
            for chunk in pending[group.key]
        ]
        computed = _run(runner, tasks, progress, locks)
        return [_finish(group, computed.get(group.key, 0), len(pending[group.key])) for group in groups]


def _stored_complete(location: str, variant: Variant, names: list[str]) -> list[ClassGroup] | None:
    """The class groups when every one is stored complete with every grid asked for, else None."""
    try:
        store = open_store(location, "r")
    except StoreError:
        return None
    groups = []
    for name in names:
        key = variant.key(name)
        if not store.has_class(key):
            return None
        group = store.class_group(key)
        if (
            "config" not in group.provenance
            or not group.complete
            or not set(variant.settings.grids) <= set(group.grids)
        ):
            return None
        if variant.settings.selection == "true" and group.sample_ids != variant.source.ids(variant.split, name):
            return None
        groups.append(group)
    return groups


def _class_names(classes: Sequence[str] | str, model: Any, source: Any) -> list[str]:
    requested = list(dict.fromkeys([classes] if isinstance(classes, str) else classes))
    if requested == ["all"]:
        return [name for name in model.class_names if name in set(source.classes)]
    for name in requested:
        if name not in model.class_names:
            raise UnknownClassError(name, model.class_names, "the model's outputs")
        source.check_class(name)
    return requested


class Variant:
    """The model, data, split and compute settings of a run, and what they decide: the maps'
    store key (``maps_id`` covers the resolved input pipeline, the class order, the composite,
    the sample selection and the split) and the input size."""

    def __init__(self, model: Any, source: Any, split: str | None, settings: ComputeSettings) -> None:
        self.model, self.source, self.split, self.settings = model, source, split, settings
        # Once per run: a folder source digests every file of the tree (1000 classes x 64k files
        # when asked per class).
        self.data_fingerprint = source.fingerprint()
        self.identity = {
            "preprocessing": model.preprocessing.to_dict(),
            "class_names": list(model.class_names),
            "split": split,
            **settings.identity(),
        }
        self.maps_id = params_hash(self.identity)

    def key(self, class_name: str) -> ClassKey:
        return ClassKey(self.model.fingerprint, self.data_fingerprint, self.maps_id, class_name)

    def input_size(self, sample_ids: Sequence[str]) -> int:
        """The side of the model input (and of every map): fixed by the pipeline, or (``native``)
        the first readable image's; the model is checked on that size before any task runs."""
        from spray.models import check_model_input

        size = self.model.preprocessing.input_size
        for sample_id in [] if size else sample_ids:
            with contextlib.suppress(SprayError):
                size = self.model.preprocessing(self.source.load(sample_id).image, sample_id).shape[-1]
                break
        if size is None:
            raise SprayError(
                "no image of the selected samples can be read, so the input size is unknown; "
                "fix the images or set --input-size"
            )
        check_model_input(
            self.model.module,
            self.model.preprocessing,
            len(self.model.class_names),
            self.model.spec.get("model") or "the demo model",
            size,
        )
        return int(size)

    def latent_channels(self, size: int) -> int | None:
        """Channels of ``settings.layer``'s output (None without a layer); an unknown layer, or one
        no relevance reaches (after the logits), is an error naming near layers."""
        if self.settings.layer is None:
            return None
        import torch

        from spray.lrp import attribute_layers

        probe = torch.zeros(1, self.model.preprocessing.n_channels, size, size)
        layers = attribute_layers(self.model.module, probe, 0, [self.settings.layer], self.settings.composite).layers
        return int(layers[self.settings.layer].shape[1])


# ---- planning -----------------------------------------------------------------------------
def _select(executor: cluster.Executor, variant: Variant, names: list[str]) -> dict[str, tuple[list[str], list[int]]]:
    """Sample ids and true-membership labels (1/0) per class."""
    source, model, settings = variant.source, variant.model, variant.settings
    if settings.selection == "true":
        return {name: (ids := source.ids(variant.split, name), [1] * len(ids)) for name in names}
    everything = source.ids(variant.split)
    runner, threads = executor.choose(len(everything))
    size = settings.chunk_size
    parts = [tuple(everything[i : i + size]) for i in range(0, len(everything), size)]
    predicted = (
        [index for part in runner(_Predict(model.spec, source.spec(), threads, settings), parts) for index in part]
        if parts
        else []
    )
    chosen = {}
    for name in names:
        target = model.class_names.index(name)
        ids = [sid for sid, index in zip(everything, predicted, strict=True) if index == target]
        chosen[name] = (ids, [int(name in source.labels(sid)) for sid in ids])
    return chosen


@dataclass(frozen=True)
class _Predict:
    """Picklable ``ids -> predicted class indices`` (keeps the order of ``parts`` in the runner)."""

    model_spec: dict
    source_spec: dict
    threads: int
    settings: ComputeSettings

    def __call__(self, ids: tuple[str, ...]) -> list[int]:
        return predict_classes(self.model_spec, self.source_spec, ids, self.threads, self.settings)


def _prepare_group(
    store: RelevanceStore, variant: Variant, name: str, ids: list[str], labels: list[int], *, force: bool
) -> ClassGroup:
    """Create the class group, or reopen it to resume (``force``: to recompute every chunk).

    The group's key holds every setting that decides the maps, so a reopened group always
    holds maps of these settings; storage options (grids, full maps, thumbnails) are those it
    was created with, plus any grid asked for now (pooled from the stored full maps).
    """
    from spray.lrp.composites import resolve

    settings = variant.settings
    if not ids:
        raise SprayError(
            f"class {name!r} has no samples in split {variant.split!r} with --select {settings.selection}; "
            "choose another class or split"
        )
    key = variant.key(name)
    group = store.class_group(key) if store.has_class(key) and "config" in store.root[key.path].attrs else None
    size = group.map_shape[0] if group is not None else variant.input_size(ids)
    too_fine = [grid for grid in settings.grids if grid > size]
    if too_fine:  # a grid cell must hold at least one pixel of the map
        raise SprayError(
            f"--grid {too_fine[0]} is finer than the {size}x{size} relevance maps of class {name!r}; "
            f"choose a grid of at most {size} (the thesis uses 20, also 5, 10 and 50; L2100)"
        )
    if group is not None and group.sample_ids != list(ids):  # the same data fingerprint lists other samples
        raise StoreError(
            f"the store holds class {name!r} of this model and data with other samples; "
            "delete that class group or use another --store"
        )
    if group is not None:
        if force:
            group.reset_done()
        stored = group.provenance["config"]
        missing = sorted(set(settings.grids) - set(group.grids))
        for grid in missing:  # another grid: pooled from the stored full maps, no LRP rerun
            group.add_grid(grid, sum_pool)
        if missing:
            group.update_attrs(config={**stored, "grids": group.grids})
    else:
        config = {
            **variant.identity,
            "target": variant.model.class_names.index(name),
            "grids": list(settings.grids),
            "full_maps": settings.full_maps,
            "thumbnail_size": settings.thumbnail_size,
            "chunk_size": settings.chunk_size,
            "map_shape": [size, size],
            "lrp_composite": settings.composite,
        }
        group = store.create_class(
            key,
            ids,
            labels,
            grids=settings.grids,
            latent_channels=variant.latent_channels(size),
            map_shape=(size, size) if settings.full_maps else None,
            thumbnail_size=settings.thumbnail_size,
            chunk_size=settings.chunk_size,
            attrs={
                "config": config,
                "class_name": name,
                "lrp": {"composite": settings.composite, "rules": repr(resolve(settings.composite))},
                "preprocessing": config["preprocessing"],
                "preprocessing_summary": variant.model.preprocessing.describe(),
                "model": {
                    "fingerprint": variant.model.fingerprint,
                    "spec": variant.model.spec,
                    "class_names": list(variant.model.class_names),
                },
                "dataset": {
                    "fingerprint": variant.data_fingerprint,
                    "spec": variant.source.spec(),
                    "name": variant.source.name,
                    "split": variant.split,
                },
            },
        )
    group.update_attrs(
        started_at=time.time(),
        spray_version=__version__,
        compute={"device": settings.device, "batch_size": settings.batch_size},
    )
    return group


# ---- running ------------------------------------------------------------------------------
def _run(
    runner: cluster.Runner, tasks: list[ChunkTask], progress: bool, locks: Sequence[Any] = ()
) -> dict[ClassKey, int]:
    """Run every task (one graph for all classes) with a progress bar; maps computed per class.

    Stops when another run took over one of ``locks`` (this one stalled past the lease)."""
    computed: dict[ClassKey, int] = {}
    with tqdm(
        total=sum(len(t.sample_ids) for t in tasks),
        unit="map",
        desc="relevance maps",
        disable=not progress,
        dynamic_ncols=True,
    ) as bar:
        try:
            for result in runner(run_chunk, tasks):
                computed[result.key] = computed.get(result.key, 0) + result.n_samples
                bar.update(result.n_samples)
                lost = [lock.what for lock in locks if lock.lost]
                if lost:
                    raise ComputeError(
                        f"another run took over the writer lock of {lost[0]} while this one was "
                        "stalled; stopping here: what is stored is kept"
                    )
        except SprayError:
            raise
        except Exception as error:  # a worker died too often, a bug in a task, ...
            raise ComputeError(
                f"computing relevance maps failed ({type(error).__name__}: {error}); "
                "finished chunks are kept, rerun the same command to resume"
            ) from error
    return computed


def _finish(group: ClassGroup, n_computed: int, n_tasks: int, record: bool = True) -> ComputeResult:
    """The result of one class; ``record`` writes the completion time into the store."""
    errors = len(group.errors)
    if record and group.complete:
        group.update_attrs(completed_at=time.time(), n_errors=errors)
    members = group.valid & (group.labels == 1)
    config = group.provenance["config"]
    share = predicted_share(group.predicted[members], config["target"])
    warning = class_order_warning(group.key.class_name, share, len(config["class_names"]))
    return ComputeResult(group.key, group.n_samples, n_computed, errors, group.n_chunks - n_tasks, warning)
