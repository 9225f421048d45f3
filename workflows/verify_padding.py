"""The padding-hypothesis experiment over a data set, through Dask and the store (thesis §6.3.1).

For the images of a class and the images not of it, every image is made square in the six
ways of :mod:`spray.verification.strategies` and scored (and explained) for the class
output. The work is split into chunks of samples, one task each, run by the same runner as
``spray compute`` (in-process, a LocalCluster or ``--scheduler``). Each task writes its
per-sample rows as one Parquet table into the store and marks its chunk done last, so a
killed run resumes where it stopped. Layout, beside the class groups of a model, data set and maps settings (the pipeline whose
padding step is swapped, the class order and the composite are those of the maps):

    <model_id>/<dataset_id>/<maps_id>/_verify_padding/<class>/<params-hash>/   attrs: params, verdict
        done              (n_chunks,) bool, chunks (1,): chunk i written
        samples/chunk-i   uint8: Parquet bytes of chunk i's rows (one row per sample x strategy)
        summary           uint8: Parquet bytes of the statistics table
        examples/...      pixels, relevance, pad masks and scores of a few example images

The leading underscore keeps the group apart from class groups: no encoded class name can
start with one (``relevance_store.naming``). Tables are Parquet bytes inside Zarr arrays, as
the store keeps analysis tables, so no foreign file enters the hierarchy and a remote store
works too.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import zarr

from relevance_store import ClassKey, RelevanceStore, nodes, open_store
from relevance_store.analysis import params_hash, to_json
from relevance_store.naming import VERIFY_PADDING, encode_name
from relevance_store.store import is_local, local_path
from relevance_store.tables import read_table, write_table
from spray import __version__
from spray.errors import SprayError, StoreError, UnknownClassError, UnreadableImageError
from spray.preprocess import Preprocessing
from spray.verification import (
    BASELINE,
    explain_strategies,
    padding_verdict,
    parse_colour,
    reference_colour_from_images,
    strategies,
    strategy_preprocessings,
    strategy_rows,
    summarise,
)
from workflows import cluster
from workflows.compute import Variant
from workflows.config import RunConfig
from workflows.experiment_runs import run_counted
from workflows.process_settings import relevance_compute
from workflows.relevance_task import cached_model, cached_source, resolve_device, worker_device
from workflows.settings import ComputeSettings

GROUP = VERIFY_PADDING
CHUNK_SIZE = 16
"""Samples per task: x6 strategies = 96 LRP passes, about a second on the demo model."""
BATCH_SIZE = 32
N_EXAMPLES = 4
"""Example images drawn with a relevance map per strategy (Figs. 6.9-6.10 show a few)."""


@dataclass(frozen=True)
class PaddingSettings:
    """What ``spray verify padding`` varies beyond the shared run options."""

    class_name: str
    samples: int | None = None
    """At most this many images of the class and this many not of it (seeded subsample); None: all."""
    reference_colour: tuple[int, int, int] | None = None
    """Fill of the ``reference_colour`` strategy; None: sampled from the class's images (L2162)."""
    mirror_mode: str = "reflect"
    n_examples: int = N_EXAMPLES


@dataclass(frozen=True)
class PaddingChunkTask:
    """Everything a worker needs to score and write one chunk of the experiment."""

    store: str
    path: str
    chunk: int
    sample_ids: tuple[str, ...]
    members: tuple[bool, ...]
    class_index: int
    model_spec: dict
    source_spec: dict
    preprocessings: dict
    settings: ComputeSettings
    torch_threads: int


@dataclass
class PaddingResults:
    """One stored experiment: its per-sample table, statistics, verdict, examples and attrs."""

    class_name: str
    table: pd.DataFrame
    summary: pd.DataFrame
    verdict: dict
    examples: dict[str, np.ndarray]
    attrs: dict
    params_hash: str
    n_computed: int = 0
    page: Path | None = None


def verify_padding(
    config: RunConfig, settings: PaddingSettings, *, progress: bool = True, write_page: bool = True
) -> PaddingResults:
    """Run (or resume) the padding experiment for one class; write the page; return the results."""
    location = str(local_path(config.store)) if is_local(config.store) else config.store
    source = cached_source(config.data)
    model = cached_model(config.model_spec(source.class_order))
    resolve_device(config.compute.device)
    name = settings.class_name
    if name not in model.class_names:
        raise UnknownClassError(name, model.class_names, "the model's outputs")
    source.check_class(name)
    seed = config.analysis.seed
    members, others = _sample(source, config.split, name, settings.samples, seed)
    if not members and not others:
        raise SprayError(f"split {config.split!r} has no images; choose another --split")
    colour, colour_source = _reference_colour(settings.reference_colour, source, members)
    preprocessings = strategy_preprocessings(model.preprocessing, colour, mirror_mode=settings.mirror_mode, seed=seed)
    variant = Variant(model, source, config.split, config.compute)
    params = {
        "class_name": name,
        "split": config.split,
        "samples": settings.samples,
        "seed": seed,
        "mirror_mode": settings.mirror_mode,
        "reference_colour": list(colour),
        "chunk_size": CHUNK_SIZE,
        **variant.identity,
        "sample_ids": params_hash({"ids": members + others}),
        "n_examples": settings.n_examples,
    }
    key = variant.key(name)
    digest = params_hash(params)
    stored = None if config.force else _stored_experiment(location, key, digest)
    if stored is not None:  # finished before: read only, no lock (a read-only store works)
        results = _results(name, stored, digest, 0)
        if write_page:
            results.page = write_padding_page(results, config.reports)
        return results
    store = open_store(location, "a")
    with contextlib.ExitStack() as stack:
        if store.is_local:
            stack.enter_context(store.writer_lock(key._replace(class_name=f"{GROUP}/{name}")))
        node = _experiment_group(store, key, digest, len(members) + len(others), config.force)
        node.update_attributes(
            to_json(
                {
                    "params": params,
                    "reference_colour_source": colour_source,
                    "class_name": name,
                    "key": list(key),
                    "model": {"fingerprint": model.fingerprint, "spec": model.spec},
                    "dataset": {"fingerprint": source.fingerprint(), "spec": source.spec(), "name": source.name},
                    "strategies": [[s.name, s.label] for s in strategies(settings.mirror_mode)],  # ordered pairs
                    "started_at": time.time(),
                    "spray_version": __version__,
                }
            )
        )
        ids = members + others
        flags = [True] * len(members) + [False] * len(others)
        pending = np.flatnonzero(~np.asarray(nodes.read(node, "done"), dtype=bool)).tolist()
        runner, threads = cluster.choose_runner(
            stack, config.scheduler, config.workers, location, n_maps=len(preprocessings) * CHUNK_SIZE * len(pending)
        )
        tasks = [
            PaddingChunkTask(
                location,
                node.path,
                chunk,
                tuple(ids[rows]),
                tuple(flags[rows]),
                model.class_names.index(name),
                model.spec,
                source.spec(),
                {n: p.to_dict() for n, p in preprocessings.items()},
                config.compute,
                threads,
            )
            for chunk in pending
            for rows in [slice(chunk * CHUNK_SIZE, (chunk + 1) * CHUNK_SIZE)]
        ]
        n_computed = run_counted(
            runner,
            run_padding_chunk,
            tasks,
            total=sum(len(t.sample_ids) for t in tasks),
            desc="padding strategies",
            what="the padding experiment",
            progress=progress,
        )
        table = _read_table(node)
        summary = summarise(table[table["error"] == ""], seed=seed)
        verdict = padding_verdict(summary, name).to_dict()
        write_table(node, "summary", summary)
        examples = _examples(node, model, source, preprocessings, table, settings.n_examples, seed, config.compute)
        node.update_attributes(
            to_json(
                {
                    "verdict": verdict,
                    "completed_at": time.time(),
                    "n_errors": int(table.loc[table["error"] != "", "sample_id"].nunique()),
                }
            )
        )
    results = PaddingResults(name, table, summary, verdict, examples, dict(node.attrs), digest, n_computed)
    if write_page:
        results.page = write_padding_page(results, config.reports)
    return results


# ---- planning -----------------------------------------------------------------------------
def _sample(
    source: Any, split: str | None, class_name: str, limit: int | None, seed: int
) -> tuple[list[str], list[str]]:
    """Ids of the class and ids not of it, each subsampled to ``limit`` (seeded, order kept)."""
    members = source.ids(split, class_name)
    chosen = set(members)
    others = [sid for sid in source.ids(split) if sid not in chosen]
    rng = np.random.default_rng(seed)

    def subsample(ids: list[str]) -> list[str]:
        if limit is None or len(ids) <= limit:
            return list(ids)
        return [ids[i] for i in np.sort(rng.choice(len(ids), size=limit, replace=False))]

    return subsample(members), subsample(others)


def _reference_colour(given: Any, source: Any, members: list[str]) -> tuple[tuple[int, int, int], str]:
    """The reference fill colour and where it came from (recorded with the results)."""
    if given is not None:
        return parse_colour(given), "given with --reference-colour"
    images = []
    for sid in members:
        with contextlib.suppress(UnreadableImageError):
            images.append(source.load(sid).image)
    colour, used = reference_colour_from_images(images)
    if not used:
        return colour, "built-in sky blue (no landscape image of the class to sample from)"
    return colour, f"sky (top rows) of the most typical of {used} landscape images of the class (medoid)"


def _experiment_path(key: ClassKey, digest: str) -> str:
    return "/".join([key.variant, GROUP, encode_name(key.class_name), digest])


def _stored_experiment(location: str, key: ClassKey, digest: str) -> zarr.Group | None:
    """The finished experiment with these parameters (every chunk, summary and examples), or None."""
    try:
        node = nodes.subgroup(open_store(location, "r").root, _experiment_path(key, digest))
    except (StoreError, KeyError):
        return None
    finished = "verdict" in node.attrs and "completed_at" in node.attrs and bool(nodes.read(node, "done").all())
    return node if finished and "examples" in node and nodes.subgroup(node, "examples").attrs.get("complete") else None


def _results(class_name: str, node: zarr.Group, digest: str, n_computed: int) -> PaddingResults:
    """The stored experiment ``node`` read back whole."""
    examples = (
        {name: np.asarray(array[...]) for name, array in nodes.subgroup(node, "examples").arrays()}
        if "examples" in node
        else {}
    )
    return PaddingResults(
        class_name,
        _read_table(node),
        read_table(nodes.array(node, "summary")),
        nodes.json_mapping(node.attrs["verdict"], "verdict"),
        examples,
        dict(node.attrs),
        digest,
        n_computed,
    )


def _experiment_group(store: RelevanceStore, key: ClassKey, digest: str, n_samples: int, force: bool) -> zarr.Group:
    """The experiment's group, created at full size (again with ``force``) or reopened to resume."""
    path = _experiment_path(key, digest)
    if path in store.root and not force:
        return nodes.subgroup(store.root, path)
    node = store.root.require_group(path.rsplit("/", 1)[0]).create_group(digest, overwrite=True)
    node.create_group("samples")
    n_chunks = -(-n_samples // CHUNK_SIZE)
    node.create_array(
        "done", shape=(n_chunks,), chunks=(1,), dtype=bool, fill_value=False, config={"write_empty_chunks": True}
    )
    return node


# ---- running ------------------------------------------------------------------------------
def run_padding_chunk(task: PaddingChunkTask) -> int:
    """Score one chunk's images under every strategy, write its table, then mark it done."""
    preprocessings = {n: Preprocessing.from_dict(d) for n, d in task.preprocessings.items()}
    images, rows = [], []
    with relevance_compute(task.torch_threads):
        device = worker_device(task.settings.device)
        model, source = cached_model(task.model_spec, device), cached_source(task.source_spec)
        for sid, member in zip(task.sample_ids, task.members, strict=True):
            try:
                images.append((sid, member, source.load(sid).image))
            except UnreadableImageError as error:  # skipped, counted and recorded (issue 4)
                rows.append({"sample_id": sid, "member": member, "strategy": BASELINE, "error": str(error)})
        views = explain_strategies(
            model.module,
            preprocessings,
            [(sid, image) for sid, _, image in images],
            task.class_index,
            task.settings.batch_for(device),
            task.settings.composite,
            device,
        )
    for (sid, member, image), view in zip(images, views, strict=True):
        for row in strategy_rows(sid, image, view, BASELINE):
            bad = not np.isfinite(row["score"])
            rows.append(row | {"member": member, "error": "non-finite score" if bad else ""})
    node = zarr.open_group(task.store, mode="r+", path=task.path, zarr_format=3)
    write_table(nodes.subgroup(node, "samples"), f"chunk-{task.chunk:05d}", _as_table(rows))
    nodes.array(node, "done")[task.chunk] = True
    return len(task.sample_ids)


TABLE_COLUMNS = {
    "sample_id": str,
    "member": bool,
    "orientation": str,
    "height": "Int64",
    "width": "Int64",
    "strategy": str,
    "score": float,
    "delta": float,
    "padded_fraction": float,
    "padded_relevance_share": float,
    "error": str,
}


def _as_table(rows: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    table["orientation"] = table["orientation"].fillna("")
    return table.astype(TABLE_COLUMNS)


def _read_table(node: zarr.Group) -> pd.DataFrame:
    """The per-sample table: every done chunk's rows, in chunk order."""
    done = np.asarray(nodes.read(node, "done"), dtype=bool)
    parts = [read_table(nodes.array(node, f"samples/chunk-{i:05d}")) for i in np.flatnonzero(done)]
    return pd.concat(parts, ignore_index=True) if parts else _as_table([])


# ---- examples -----------------------------------------------------------------------------
def _examples(
    node: zarr.Group,
    model: Any,
    source: Any,
    preprocessings: dict[str, Preprocessing],
    table: pd.DataFrame,
    n_examples: int,
    seed: int,
    settings: ComputeSettings,
) -> dict[str, np.ndarray]:
    """Relevance maps under every strategy for a few padded images (half of the class), stored once."""
    if "examples" in node and nodes.subgroup(node, "examples").attrs.get("complete"):
        return {name: np.asarray(array[...]) for name, array in nodes.subgroup(node, "examples").arrays()}
    padded = table[(table["strategy"] == BASELINE) & (table["error"] == "") & (table["orientation"] != "square")]
    rng = np.random.default_rng(seed)
    chosen = []
    for member, count in ((True, -(-n_examples // 2)), (False, n_examples // 2)):
        ids = padded.loc[padded["member"] == member, "sample_id"].tolist()
        chosen += [(ids[i], member) for i in np.sort(rng.choice(len(ids), size=min(count, len(ids)), replace=False))]
    images = [(sid, source.load(sid).image) for sid, _ in chosen]
    views = (
        explain_strategies(
            model.module,
            preprocessings,
            images,
            model.class_names.index(node.attrs["class_name"]),
            BATCH_SIZE,
            settings.composite,
        )
        if images
        else []
    )
    names = list(preprocessings)
    crop = views[0][names[0]].relevance.shape[-1] if views else (model.preprocessing.input_size or 1)
    arrays = {
        "sample_id": np.asarray([sid for sid, _ in chosen], dtype=str),
        "member": np.asarray([member for _, member in chosen], dtype=bool),
        "strategy": np.asarray(names, dtype=str),
        "pixels": np.asarray([[v[n].pixels for n in names] for v in views], np.uint8).reshape(
            -1, len(names), crop, crop, 3
        ),
        "relevance": np.asarray([[v[n].relevance for n in names] for v in views], np.float32).reshape(
            -1, len(names), crop, crop
        ),
        "pad_mask": np.asarray([[v[n].pad_mask for n in names] for v in views], bool).reshape(
            -1, len(names), crop, crop
        ),
        "score": np.asarray([[v[n].score for n in names] for v in views], np.float64).reshape(-1, len(names)),
    }
    group = node.create_group("examples", overwrite=True)
    for name, value in arrays.items():
        if value.dtype.kind == "U":
            group.create_array(name, shape=value.shape, dtype=str, fill_value="")[...] = value
        else:
            group.create_array(name, data=value)
    group.attrs["complete"] = True
    return arrays


# ---- reading back and the page ------------------------------------------------------------
def experiment_groups(store: RelevanceStore, class_name: str) -> list[zarr.Group]:
    """Every complete experiment of ``class_name`` in the store, oldest first."""
    found = []
    path = f"{GROUP}/{encode_name(class_name)}"
    for _, model_group in store.child_groups(store.root):
        for _, dataset_group in store.child_groups(model_group):
            for _, variant in store.child_groups(dataset_group):
                if path in variant:
                    found += [node for _, node in nodes.subgroup(variant, path).groups() if "verdict" in node.attrs]
    return sorted(found, key=lambda node: nodes.json_number(node.attrs.get("completed_at", 0.0), "completed_at"))


def read_padding_results(store_location: str | os.PathLike, class_name: str) -> PaddingResults:
    """The latest complete padding experiment of ``class_name`` stored at ``store_location``."""
    store = open_store(os.fspath(store_location), "r")
    nodes = experiment_groups(store, class_name)
    if not nodes:
        raise StoreError(
            f"the store {store_location} has no padding experiment for class {class_name!r}; "
            f"run `spray verify padding --class {class_name}` first"
        )
    return _results(class_name, nodes[-1], nodes[-1].basename, 0)


def write_padding_page(results: PaddingResults, reports: str | os.PathLike) -> Path:
    """Render the experiment's HTML page into the reports folder; returns its path."""
    from reports.padding_page import PaddingPage, padding_page_filename, render_padding_page

    attrs = results.attrs
    page = PaddingPage(
        class_name=results.class_name,
        summary=results.summary,
        verdict=results.verdict,
        strategy_labels=dict(attrs["strategies"]),
        examples=results.examples,
        facts={
            "model": attrs["model"]["fingerprint"],
            "data": attrs["dataset"]["name"],
            "split": attrs["params"]["split"],
            "seed": attrs["params"]["seed"],
            "reference colour (RGB)": attrs["params"]["reference_colour"],
            "reference colour source": attrs["reference_colour_source"],
            "mirror mode": attrs["params"]["mirror_mode"],
            "samples per group": attrs["params"]["samples"] or "all",
            "images of the class": int(results.table.loc[results.table["member"], "sample_id"].nunique()),
            "images not of the class": int(results.table.loc[~results.table["member"], "sample_id"].nunique()),
            "failed images": attrs.get("n_errors", 0),
            "store key": results.params_hash,
        },
    )
    return render_padding_page(page, Path(reports) / padding_page_filename(results.class_name))
