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
from typing import Any

from tqdm.auto import tqdm

from relevance_store import ClassGroup, ClassKey, RelevanceStore, open_store
from relevance_store.store import is_local, local_path
from spray.analysis.pooling import sum_pool
from spray import __version__
from spray.errors import SprayError, StoreError, UnknownClassError
from workflows import cluster
from workflows.compute_options import BATCH_SIZE, CHUNK_SIZE, SELECTIONS, THUMBNAIL_SIZE
from workflows.relevance_task import ChunkTask, cached_model, cached_source, predict_classes, run_chunk



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
    grids: Sequence[int] = (20,),
    full_maps: bool = True,
    selection: str = "true",
    thumbnail_size: int | None = THUMBNAIL_SIZE,
    composite: str = "thesis",
    chunk_size: int = CHUNK_SIZE,
    batch_size: int = BATCH_SIZE,
    scheduler: str | None = None,
    workers: int | None = None,
    force: bool = False,
    wait: bool = False,
    progress: bool = True,
) -> list[ComputeResult]:
    """Compute (or resume) the relevance maps of ``classes`` ("all" = every class) into ``store``.

    ``model_spec`` is passed to ``spray.models.load_model(**model_spec)`` (None: the demo
    model); ``source_spec`` to ``spray.data.open_source``. Grids default to 20x20 (L2100).
    Runs on ``scheduler`` when given; else on a LocalCluster of ``workers`` processes when
    ``workers > 1``; else (``workers=None``) on one worker per core when there are at least
    ``compute_options.LOCAL_CLUSTER_MIN_MAPS`` maps, in this process otherwise.
    Chunks already done are skipped unless ``force``. A class being written by another
    process raises :class:`StoreError` unless ``wait``.
    """
    if selection not in SELECTIONS:
        raise SprayError(f"sample selection {selection!r} is not one of {', '.join(SELECTIONS)}; use --select true or predicted")
    location = str(local_path(os.fspath(store))) if is_local(os.fspath(store)) else os.fspath(store)
    source = cached_source(source_spec)
    model_spec = dict(model_spec or {})
    if model_spec.get("model") and not model_spec.get("classes"):
        model_spec["classes"] = list(source.classes)  # a user model's outputs default to the data's classes
    model = cached_model(model_spec)
    names = _class_names(classes, model, source)
    relevance_store = open_store(location, "a")
    with contextlib.ExitStack() as stack:
        for name in names:  # hold every class's writer lock for the whole run
            stack.enter_context(relevance_store.writer_lock(_key(model, source, name), wait=wait))
        executor = _Executor(stack, scheduler, workers, location)
        selected = _select(executor, model, source, names, split, selection, batch_size, chunk_size)
        groups = [_prepare_group(relevance_store, name, ids, labels, selection, model=model, source=source,
                                 split=split, grids=tuple(sorted(set(grids))), full_maps=full_maps,
                                 thumbnail_size=thumbnail_size, composite=composite, chunk_size=chunk_size,
                                 force=force)
                  for name, (ids, labels) in selected.items()]
        pending = {group.key: group.pending_chunks() for group in groups}
        runner, threads = executor.choose(sum(group.rows_in_chunks(pending[group.key]) for group in groups))
        tasks = [task for group in groups for task in _chunk_tasks(
            group, pending[group.key], location=location, model=model, source=source, composite=composite,
            threads=threads, batch_size=batch_size)]
        computed = _run(runner, tasks, progress)
        return [_finish(group, computed.get(group.key, 0), len(pending[group.key])) for group in groups]


def _class_names(classes: Sequence[str] | str, model: Any, source: Any) -> list[str]:
    requested = [classes] if isinstance(classes, str) else list(classes)
    if requested == ["all"]:
        return [name for name in model.class_names if name in set(source.classes)]
    for name in requested:
        if name not in model.class_names:
            raise UnknownClassError(name, model.class_names, "the model's outputs")
        source.check_class(name)
    return requested


def _key(model: Any, source: Any, class_name: str) -> ClassKey:
    return ClassKey(model.fingerprint, source.fingerprint(), class_name)


# ---- where tasks run ----------------------------------------------------------------------
class _Executor:
    """Chooses where tasks run, once, when the first batch of work is known (see ``compute_classes``)."""

    def __init__(self, stack: contextlib.ExitStack, scheduler: str | None, workers: int | None, location: str) -> None:
        self.stack, self.scheduler, self.workers, self.location = stack, scheduler, workers, location
        self.chosen: tuple[cluster.Runner, int] | None = None

    def choose(self, n_maps: int) -> tuple[cluster.Runner, int]:
        """A function mapping tasks to results (as they complete), and torch threads per worker."""
        if self.chosen is None:
            self.chosen = cluster.choose_runner(self.stack, self.scheduler, self.workers, self.location, n_maps)
        return self.chosen


# ---- planning -----------------------------------------------------------------------------
def _select(executor: _Executor, model: Any, source: Any, names: list[str], split: str | None, selection: str,
            batch_size: int, chunk_size: int) -> dict[str, tuple[list[str], list[int]]]:
    """Sample ids and true-membership labels (1/0) per class."""
    if selection == "true":
        return {name: (ids := source.ids(split, name), [1] * len(ids)) for name in names}
    everything = source.ids(split)
    runner, threads = executor.choose(len(everything))
    parts = [tuple(everything[i:i + chunk_size]) for i in range(0, len(everything), chunk_size)]
    predicted = [index for part in runner(_Predict(model.spec, source.spec(), threads, batch_size), parts)
                 for index in part] if parts else []
    chosen = {}
    for name in names:
        target = model.class_names.index(name)
        ids = [sid for sid, index in zip(everything, predicted) if index == target]
        chosen[name] = (ids, [int(name in source.labels(sid)) for sid in ids])
    return chosen


@dataclass(frozen=True)
class _Predict:
    """Picklable ``ids -> predicted class indices`` (keeps the order of ``parts`` in the runner)."""

    model_spec: dict
    source_spec: dict
    threads: int
    batch_size: int

    def __call__(self, ids: tuple[str, ...]) -> list[int]:
        return predict_classes(self.model_spec, self.source_spec, ids, self.threads, self.batch_size)


def _prepare_group(store: RelevanceStore, name: str, ids: list[str], labels: list[int], selection: str, *,
                   model: Any, source: Any, split: str | None, grids: tuple[int, ...], full_maps: bool,
                   thumbnail_size: int | None, composite: str, chunk_size: int, force: bool) -> ClassGroup:
    """Create the class group, or reopen it for resuming when it was made with the same settings."""
    from spray.lrp.composites import resolve

    if not ids:
        raise SprayError(f"class {name!r} has no samples in split {split!r} with --select {selection}; "
                         "choose another class or split")
    key = _key(model, source, name)
    target = model.class_names.index(name)
    config = {"selection": selection, "split": split, "target": target, "grids": list(grids), "full_maps": full_maps,
              "thumbnail_size": thumbnail_size, "lrp_composite": composite,
              "preprocessing": model.preprocessing.to_dict()}
    group = store.class_group(key) if store.has_class(key) and "config" in store.root[key.path].attrs else None
    if group is not None and not force:
        stored = group.provenance["config"]
        if {**stored, "grids": None} != {**config, "grids": None} or group.sample_ids != list(ids):
            raise StoreError(f"the store already holds class {name!r} computed with other samples or settings; "
                             "pass --force to recompute it, or use another --store")
        missing = sorted(set(grids) - set(stored["grids"]))
        for grid in missing:  # another grid: pooled from the stored full maps, no LRP rerun
            group.add_grid(grid, sum_pool)
        if missing:
            group.update_attrs(config={**stored, "grids": sorted(set(stored["grids"]) | set(grids))})
    if group is None or force:
        crop = model.preprocessing.crop_size
        group = store.create_class(key, ids, labels, grids=grids, map_shape=(crop, crop) if full_maps else None,
                                   thumbnail_size=thumbnail_size, chunk_size=chunk_size, attrs={
                                       "config": config,
                                       "class_name": name,
                                       "lrp": {"composite": composite, "rules": repr(resolve(composite))},
                                       "preprocessing": config["preprocessing"],
                                       "model": {"fingerprint": model.fingerprint, "spec": model.spec,
                                                 "class_names": list(model.class_names)},
                                       "dataset": {"fingerprint": source.fingerprint(), "spec": source.spec(),
                                                   "name": source.name, "split": split},
                                   })
    group.update_attrs(started_at=time.time(), spray_version=__version__)
    return group


def _chunk_tasks(group: ClassGroup, chunks: list[int], *, location: str, model: Any, source: Any, composite: str,
                 threads: int, batch_size: int) -> list[ChunkTask]:
    """One task per pending chunk, carrying specs (small), never the model."""
    config = group.provenance["config"]
    stored_ids = group.sample_ids
    return [ChunkTask(location, group.key, chunk, tuple(stored_ids[group.chunk_rows(chunk)]), config["target"],
                      tuple(config["grids"]), config["full_maps"], config["thumbnail_size"], model.spec,
                      source.spec(), composite, threads, batch_size)
            for chunk in chunks]


# ---- running ------------------------------------------------------------------------------
def _run(runner: cluster.Runner, tasks: list[ChunkTask], progress: bool) -> dict[ClassKey, int]:
    """Run every task (one graph for all classes) with a progress bar; maps computed per class."""
    computed: dict[ClassKey, int] = {}
    with tqdm(total=sum(len(t.sample_ids) for t in tasks), unit="map", desc="relevance maps",
              disable=not progress, dynamic_ncols=True) as bar:
        try:
            for result in runner(run_chunk, tasks):
                computed[result.key] = computed.get(result.key, 0) + result.n_samples
                bar.update(result.n_samples)
        except SprayError:
            raise
        except Exception as error:  # a worker died too often, a bug in a task, ...
            raise ComputeError(f"computing relevance maps failed ({type(error).__name__}: {error}); "
                               "finished chunks are kept, rerun the same command to resume") from error
    return computed


def _finish(group: ClassGroup, n_computed: int, n_tasks: int) -> ComputeResult:
    errors = len(group.errors)
    if group.complete:
        group.update_attrs(completed_at=time.time(), n_errors=errors)
    return ComputeResult(group.key, group.n_samples, n_computed, errors, group.n_chunks - n_tasks)
