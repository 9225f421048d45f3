"""The intervention test of one SpRAy cluster over a data set, through Dask and the store (issue 15).

SpRAy finds candidate strategies; the thesis then proved the horse watermark by hand, removing
the tag and watching the output and the map change (L1742-L1753). This does it for any
cluster of a stored analysis:

1. the cluster's distinctive region, from the stored relevance maps of its members against
   the main cluster (:mod:`spray.verification.cluster_region`);
2. three groups of target images, each subsampled (seeded) to ``samples``: the cluster's
   images (remove the region; control: remove a random region of the same shape), images of
   other classes and the class's images outside the cluster (paste a cluster image's region
   in; control: paste the same region of a class image outside the cluster)
   (:mod:`spray.verification.cluster_interventions`), all on the pixels the run's pipeline
   hands to the model, scored and explained with the run's composite;
3. statistics and a verdict (:mod:`spray.verification.cluster_statistics`,
   :mod:`spray.verification.cluster_verdict`), a page (:mod:`reports.cluster_page`).

The targets are split into chunks, one task each, run like the padding experiment's
(``workflows.cluster.choose_runner``); each task writes its rows as one Parquet table and
marks its chunk done last, so a killed run resumes. Layout, beside the class groups of a
model, data set and maps settings:

    <model_id>/<dataset_id>/<maps_id>/_verify_cluster/<class>/<params-hash>/   attrs: params, verdict
        done              (n_chunks,) bool, chunks (1,): chunk i written
        samples/chunk-i   uint8: Parquet bytes of chunk i's rows (one row per image x condition)
        summary, contrasts  uint8: Parquet bytes of the statistics tables
        region/...        the mask, the maps it was cut from, the prototype and a medoid's pixels
        examples/...      pixels, relevance and scores of a few images under each condition

The parameters hashed into the key are every setting: class, cluster, the analysis (its own
hash), the region rule, the interventions, seed, samples, split and the maps settings.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import zarr

from relevance_store import AnalysisResult, ClassGroup, ClassKey, nodes, open_store
from relevance_store.analysis import params_hash, to_json
from relevance_store.naming import VERIFY_CLUSTER, encode_name
from relevance_store.store import is_local, local_path
from relevance_store.tables import read_table, write_table
from spray import __version__
from spray.errors import SprayError, StoreError, UnknownClassError
from spray.preprocess import Preprocessing
from spray.verification.cluster_interventions import control_offset, inpaint, shift_mask, transplant
from spray.verification.cluster_region import (
    ClusterRegion,
    ClusterVerificationError,
    RegionRule,
    distinctive_region,
    positive_shares,
    upsample_pooled,
)
from spray.verification.cluster_statistics import GROUP_CONDITIONS, ORIGINAL, contrast, summarise_changes
from spray.verification.cluster_verdict import CONSISTENCY, MARGIN, cluster_verdict
from spray.verification.statistics import CONFIDENCE, N_BOOTSTRAP
from spray.verification.verdict import ALPHA
from workflows import cluster as runners
from workflows.analyze import estimator_for
from workflows.compute import Variant
from workflows.config import RunConfig
from workflows.experiment_runs import run_counted
from workflows.process_settings import relevance_compute
from workflows.relevance_task import cached_model, cached_source, explain, resolve_device, worker_device
from workflows.settings import ComputeSettings

GROUP = VERIFY_CLUSTER
CHUNK_SIZE = 16
"""Target images per task: x3 conditions = 48 LRP passes, about a second on the demo model."""
N_EXAMPLES = 4
"""Images drawn before and after (half of them cluster images with the region removed)."""
INTERVENTIONS = {
    "remove": "the region inpainted harmonically from its surroundings",
    "remove_control": "the region's shape at a random offset, overlapping the region least, inpainted the same way",
    "transplant": "a cluster image's pixels in the region pasted at the same place",
    "transplant_control": "the same region of a class image outside the cluster pasted at the same place",
}
"""What each condition does (recorded with the results and part of their key)."""
VERDICT_RULE = {
    "alpha": ALPHA,
    "margin": MARGIN,
    "consistency": CONSISTENCY,
    "bootstrap": N_BOOTSTRAP,
    "confidence": CONFIDENCE,
}
"""The statistics and thresholds of the verdict (part of the key: a new rule is a new result)."""


@dataclass(frozen=True)
class ClusterSettings:
    """What ``spray verify cluster`` varies beyond the shared run options."""

    class_name: str
    cluster: int
    samples: int | None = None
    """At most this many images per target group (seeded subsample); None: all."""
    n_examples: int = N_EXAMPLES
    region: RegionRule = field(default_factory=RegionRule)


@dataclass(frozen=True)
class Target:
    """One target image and what is done to it: its group, the control region's offset (the cluster's
    images) or the images whose region is pasted in (the others)."""

    sample_id: str
    group: str
    offset: tuple[int, int] = (0, 0)
    donor: str = ""
    control_donor: str = ""


@dataclass(frozen=True)
class ClusterChunkTask:
    """Everything a worker needs to score and write one chunk of the test."""

    store: str
    path: str
    chunk: int
    targets: tuple[Target, ...]
    mask: np.ndarray
    class_index: int
    model_spec: dict
    source_spec: dict
    settings: ComputeSettings
    torch_threads: int


@dataclass
class ClusterResults:
    """One stored test: per-image table, statistics, verdict, region, examples and attrs."""

    class_name: str
    cluster: int
    table: pd.DataFrame
    summary: pd.DataFrame
    contrasts: pd.DataFrame
    verdict: dict
    region: dict[str, np.ndarray]
    examples: dict[str, np.ndarray]
    attrs: dict
    params_hash: str
    n_computed: int = 0
    page: Path | None = None

    @property
    def confirmed(self) -> bool:
        """Both interventions beat their controls by the margin (:mod:`spray.verification.cluster_verdict`)."""
        return bool(self.verdict.get("confirmed"))

    def to_dict(self) -> dict:
        """The outcome as plain JSON types (NaN as None: strict JSON), for an audit summary."""
        mask = self.region["mask"]
        return to_json(
            {
                "class": self.class_name,
                "cluster": self.cluster,
                "confirmed": self.confirmed,
                "conclusion": self.verdict["conclusion"],
                "headline": self.verdict["headline"],
                "findings": self.verdict["findings"],
                "removal": self.verdict["removal"],
                "transplant": self.verdict["transplant"],
                "margin": self.verdict["margin"],
                "consistency": self.verdict["consistency"],
                "region_pixels": int(mask.sum()),
                "region_fraction": float(mask.mean()),
                "contrasts": self.contrasts.astype(object)
                .where(self.contrasts.notna(), None)
                .to_dict(orient="records"),
                "analysis": self.attrs["params"]["analysis"],
                "store_key": self.params_hash,
                "page": str(self.page) if self.page else None,
            }
        )


def verify_cluster(
    config: RunConfig, settings: ClusterSettings, *, progress: bool = True, write_page: bool = True
) -> ClusterResults:
    """Run (or resume, or read back) the intervention test of one cluster; write its page; return the results."""
    location = str(local_path(config.store)) if is_local(config.store) else config.store
    source = cached_source(config.data)
    model = cached_model(config.model_spec(source.class_order))
    resolve_device(config.compute.device)
    name, seed = settings.class_name, config.analysis.seed
    if name not in model.class_names:
        raise UnknownClassError(name, model.class_names, "the model's outputs")
    source.check_class(name)
    class_ids = set(source.ids(config.split, name))
    others = [sid for sid in source.ids(config.split) if sid not in class_ids]
    if not others:
        raise ClusterVerificationError(
            f"split {config.split!r} has no image outside class {name!r} to paste the "
            "region into; the transplant test needs images of other classes (choose "
            "another --split or --data)"
        )
    variant = Variant(model, source, config.split, config.compute)
    key = variant.key(name)
    group, analysis = stored_analysis(location, key, config)
    members, reference, reference_text, labels, ids = _cluster_rows(analysis, group, settings.cluster, name)
    region = distinctive_region(
        *_mean_shares(group, analysis, members, reference), config.analysis.grid, settings.region
    )
    plan = _plan(region.mask, ids, labels == settings.cluster, others, settings.samples, seed)
    params = {
        "class_name": name,
        "cluster": int(settings.cluster),
        "analysis": analysis.params_hash,
        "split": config.split,
        "samples": settings.samples,
        "seed": seed,
        "region": settings.region.to_dict(),
        "interventions": INTERVENTIONS,
        "verdict_rule": VERDICT_RULE,
        "chunk_size": CHUNK_SIZE,
        "n_examples": settings.n_examples,
        **variant.identity,
        "targets": params_hash({"plan": [[t.sample_id, t.group, *t.offset, t.donor, t.control_donor] for t in plan]}),
    }
    digest = params_hash(params)
    stored = None if config.force else _stored_experiment(location, key, digest)
    if stored is not None:  # finished before: read only, no lock (a read-only store works)
        return _finish(_results(name, stored, digest, 0), config, write_page)
    store = open_store(location, "a")
    with contextlib.ExitStack() as stack:
        if store.is_local:
            stack.enter_context(
                store.writer_lock(key._replace(class_name=f"{GROUP}/{name}/{settings.cluster}"), wait=config.wait)
            )
        node = _experiment_group(store, key, digest, len(plan), config.force)
        _write_region(node, region, analysis, settings.cluster, group, model.preprocessing, source)
        node.update_attributes(
            to_json(
                {
                    "params": params,
                    "class_name": name,
                    "cluster": int(settings.cluster),
                    "key": list(key),
                    "region": {
                        "description": region.describe(),
                        "pixels": region.n_pixels,
                        "fraction": region.fraction,
                        "threshold": region.threshold,
                        "mass": region.mass,
                    },
                    "reference": reference_text,
                    "score_spread": _score_spread(group, analysis),
                    "model": {"fingerprint": model.fingerprint, "spec": model.spec},
                    "dataset": {"fingerprint": source.fingerprint(), "spec": source.spec(), "name": source.name},
                    "started_at": time.time(),
                    "spray_version": __version__,
                }
            )
        )
        pending = np.flatnonzero(~np.asarray(nodes.read(node, "done"), dtype=bool)).tolist()
        runner, threads = runners.choose_runner(
            stack, config.scheduler, config.workers, location, n_maps=3 * CHUNK_SIZE * len(pending)
        )
        tasks = [
            ClusterChunkTask(
                location,
                node.path,
                chunk,
                tuple(plan[chunk * CHUNK_SIZE : (chunk + 1) * CHUNK_SIZE]),
                region.mask,
                model.class_names.index(name),
                model.spec,
                source.spec(),
                config.compute,
                threads,
            )
            for chunk in pending
        ]
        n_computed = run_counted(
            runner,
            run_cluster_chunk,
            tasks,
            total=sum(len(t.targets) for t in tasks),
            desc="cluster interventions",
            what="the cluster test",
            progress=progress,
        )
        table = _read_table(node)
        good = table[table["error"] == ""]
        summary = summarise_changes(good, seed=seed)
        contrasts = contrast(good, nodes.json_number(node.attrs["score_spread"], "score_spread"), seed=seed)
        verdict = cluster_verdict(contrasts, name, settings.cluster).to_dict()
        write_table(node, "summary", summary)
        write_table(node, "contrasts", contrasts)
        _examples(node, model, source, region.mask, plan, table, settings.n_examples, seed, config.compute)
        node.update_attributes(
            to_json(
                {
                    "verdict": verdict,
                    "completed_at": time.time(),
                    "n_errors": int(table.loc[table["error"] != "", "sample_id"].nunique()),
                }
            )
        )
    return _finish(_results(name, node, digest, n_computed), config, write_page)


def _finish(results: ClusterResults, config: RunConfig, write_page: bool) -> ClusterResults:
    if write_page:
        results.page = write_cluster_page(results, config.reports)
    return results


# ---- the stored analysis and the cluster ------------------------------------------------
_NOT_LABELLING = ("rows", "stability", "embeddings")
"""Analysis parameters that do not change the cluster labels (the rows digest is checked apart)."""


def stored_analysis(location: str, key: ClassKey, config: RunConfig) -> tuple[ClassGroup, AnalysisResult]:
    """The class group and its latest stored analysis made with ``config``'s analysis settings."""
    name = key.class_name
    hint = f"run `spray run --class {name}` first (with the same model, data, pipeline and analysis options)"
    try:
        store = open_store(location, "r")
    except StoreError:
        raise ClusterVerificationError(f"the store {location} does not exist or cannot be read; {hint}") from None
    if not store.has_class(key):
        raise ClusterVerificationError(
            f"the store {location} has no relevance maps of class {name!r} for these settings; {hint}"
        )
    group = store.class_group(key)
    wanted = _labelling(estimator_for(config.analysis).get_params())
    for digest in reversed(group.analysis_hashes()):
        analysis = group.read_analysis(digest)
        if _labelling(analysis.params) == wanted:
            return group, analysis
    raise ClusterVerificationError(
        f"class {name!r} has no stored analysis with these analysis settings (grid, k, "
        f"clusters, normalisation, seed); {hint}"
    )


def _labelling(params: Mapping) -> dict:
    return {k: v for k, v in to_json(params).items() if k not in _NOT_LABELLING}


def _cluster_rows(
    analysis: AnalysisResult, group: ClassGroup, cluster: int, name: str
) -> tuple[np.ndarray, np.ndarray, str, np.ndarray, list[str]]:
    """Store rows of the cluster's members and of the reference, what the reference is, the labels and the
    analysed sample ids. The reference is the main (largest) cluster, or the rest of the class for the main one."""
    labels, rows = np.asarray(analysis.arrays["labels"]), np.asarray(analysis.arrays["rows"])
    table = analysis.tables["clusters"]
    known = [int(c) for c in table["cluster"]]
    if cluster not in known:
        raise ClusterVerificationError(
            f"class {name!r} has no cluster {cluster}; its clusters are "
            f"{', '.join(map(str, known))} (see the class page)"
        )
    if len(known) < 2:
        raise ClusterVerificationError(
            f"class {name!r} was analysed into one cluster, so there is nothing to contrast "
            "it with; analyse it with more clusters (--n-clusters 2 or more)"
        )
    members = labels == cluster
    if members.sum() < 2:
        raise ClusterVerificationError(
            f"cluster {cluster} of class {name!r} has {int(members.sum())} image; the test "
            "needs at least 2 (its statistics compare images), so choose a larger cluster"
        )
    sizes = table.set_index("cluster")["size"].sort_values(ascending=False, kind="stable")
    main = int(sizes.index[0])
    reference = labels == main if main != cluster else ~members
    described = (
        f"the main (largest) cluster, {main}"
        if main != cluster
        else "every image of the class outside the cluster (it is the main cluster)"
    )
    ids = group.sample_ids
    return rows[members], rows[reference], described, labels, [ids[r] for r in rows]


def _mean_shares(
    group: ClassGroup, analysis: AnalysisResult, members: np.ndarray, reference: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean positive-relevance shares of the members and the reference at the input resolution, read
    chunk by chunk: the full maps, or the pooled maps spread over their cells when none are kept."""
    full, shape = group.full, group.map_shape
    pooled = None if full is not None else group.pooled(int(analysis.params["grid"]))
    sums = {"members": np.zeros(shape), "reference": np.zeros(shape)}
    for chunk in range(group.n_chunks):
        span = group.chunk_rows(chunk)
        for name, rows in (("members", members), ("reference", reference)):
            picked = rows[(rows >= span.start) & (rows < span.stop)]
            if picked.size:
                if full is not None:
                    maps = np.asarray(full[span])[picked - span.start]
                else:
                    assert pooled is not None  # read above exactly when there are no full maps
                    maps = upsample_pooled(pooled[picked], shape)
                sums[name] += positive_shares(maps).sum(axis=0)
    return sums["members"] / len(members), sums["reference"] / len(reference)


def _score_spread(group: ClassGroup, analysis: AnalysisResult) -> float:
    """Standard deviation of the class score over the analysed images of the class: the unit of the margin."""
    return float(np.std(group.scores[np.asarray(analysis.arrays["rows"])].astype(np.float64), ddof=1))


# ---- planning -----------------------------------------------------------------------------
def _plan(
    mask: np.ndarray, ids: list[str], in_cluster: np.ndarray, others: list[str], limit: int | None, seed: int
) -> list[Target]:
    """Every target with its control offset or donors, drawn with one seeded generator (the same plan
    every run). Donors: a random cluster image (pasted in) and a random class image outside the
    cluster other than the target (the control)."""
    rng = np.random.default_rng(seed)

    def subsample(pool: list[str]) -> list[str]:
        if limit is None or len(pool) <= limit:
            return list(pool)
        return [pool[i] for i in np.sort(rng.choice(len(pool), size=limit, replace=False))]

    members = [sid for sid, inside in zip(ids, in_cluster, strict=True) if inside]
    outside = [sid for sid, inside in zip(ids, in_cluster, strict=True) if not inside]
    plan = [Target(sid, "members", control_offset(mask, rng)) for sid in subsample(members)]
    position = {sid: i for i, sid in enumerate(outside)}
    for group, pool in (("other_classes", others), ("non_members", outside)):
        for sid in subsample(pool):
            own = position.get(sid) if group == "non_members" else None
            if own is not None and len(outside) < 2:  # a one-image rest of the class: nothing else to paste
                continue
            control = int(rng.integers(len(outside) - (own is not None)))
            control += own is not None and control >= own  # never the target itself
            plan.append(
                Target(sid, group, donor=members[int(rng.integers(len(members)))], control_donor=outside[control])
            )
    return plan


def _experiment_path(key: ClassKey, digest: str) -> str:
    return "/".join([key.variant, GROUP, encode_name(key.class_name), digest])


def _stored_experiment(location: str, key: ClassKey, digest: str) -> zarr.Group | None:
    """The finished test with these parameters (every chunk, statistics and examples), or None."""
    try:
        node = nodes.subgroup(open_store(location, "r").root, _experiment_path(key, digest))
    except (StoreError, KeyError):
        return None
    finished = "verdict" in node.attrs and "completed_at" in node.attrs and bool(nodes.read(node, "done").all())
    return node if finished and "examples" in node and nodes.subgroup(node, "examples").attrs.get("complete") else None


def _experiment_group(store: Any, key: ClassKey, digest: str, n_targets: int, force: bool) -> zarr.Group:
    """The test's group, created at full size (again with ``force``) or reopened to resume."""
    path = _experiment_path(key, digest)
    if path in store.root and not force:
        return store.root[path]
    node = store.root.require_group(path.rsplit("/", 1)[0]).create_group(digest, overwrite=True)
    node.create_group("samples")
    node.create_array(
        "done",
        shape=(-(-n_targets // CHUNK_SIZE),),
        chunks=(1,),
        dtype=bool,
        fill_value=False,
        config={"write_empty_chunks": True},
    )
    return node


def _write_region(
    node: zarr.Group,
    region: ClusterRegion,
    analysis: AnalysisResult,
    cluster: int,
    group: ClassGroup,
    preprocessing: Preprocessing,
    source: Any,
) -> None:
    """The region and what the page draws it over: the prototype and the first medoid's pixels."""
    table = analysis.tables["clusters"].set_index("cluster")
    medoid = group.sample_ids[int(np.asarray(analysis.arrays["rows"])[int(next(iter(table.loc[cluster, "medoids"])))])]
    position = [int(c) for c in analysis.tables["clusters"]["cluster"]].index(cluster)
    arrays = {
        "mask": region.mask,
        "difference": region.difference.astype(np.float32),
        "member_share": region.member_share.astype(np.float32),
        "reference_share": region.reference_share.astype(np.float32),
        "prototype": np.asarray(analysis.arrays["prototypes"][position], dtype=np.float32),
        "medoid_pixels": preprocessing.model_view(source.load(medoid).image, medoid)[0],
    }
    target = node.create_group("region", overwrite=True)
    for name, value in arrays.items():
        target.create_array(name, data=np.asarray(value))
    target.attrs["medoid"] = medoid


# ---- running ------------------------------------------------------------------------------
def intervention_views(target: Target, mask: np.ndarray, load: Any) -> tuple[dict[str, np.ndarray], str]:
    """The pixels the model sees for ``target``, untouched and under its group's two conditions, or why
    there are none. ``load(sample_id)`` gives an image's model view (of a target or a donor)."""
    try:
        original = load(target.sample_id)
        if original.shape[:2] != mask.shape:
            raise ClusterVerificationError(
                f"{target.sample_id} gives a {original.shape[0]}x{original.shape[1]} input, "
                f"the region is {mask.shape[0]}x{mask.shape[1]}"
            )
        intervention, control = GROUP_CONDITIONS[target.group]
        if target.group == "members":
            return {
                ORIGINAL: original,
                intervention: inpaint(original, mask),
                control: inpaint(original, shift_mask(mask, target.offset)),
            }, ""
        return {
            ORIGINAL: original,
            intervention: transplant(original, load(target.donor), mask),
            control: transplant(original, load(target.control_donor), mask),
        }, ""
    except SprayError as error:  # an unreadable image or donor, another input size: recorded, the rest go on
        return {}, str(error) or type(error).__name__


def _model_views(source: Any, preprocessing: Preprocessing) -> Any:
    """``load(sample_id)`` -> the model view, each image loaded once per task."""
    cache: dict[str, np.ndarray] = {}

    def load(sample_id: str) -> np.ndarray:
        if sample_id not in cache:
            cache[sample_id] = preprocessing.model_view(source.load(sample_id).image, sample_id)[0]
        return cache[sample_id]

    return load


def _explain_views(
    model: Any, pixels: list[np.ndarray], class_index: int, settings: ComputeSettings, device: str = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """Relevance maps (N, H, W) and class scores (N,) of model views, with the run's composite."""
    if not pixels:
        return np.zeros((0, 0, 0), np.float32), np.zeros(0, np.float32)
    inputs = np.stack([model.preprocessing.normalise(p) for p in pixels])
    explained = explain(model.module, inputs, class_index, settings.composite, settings.batch_for(device), device)
    return explained.maps, explained.scores


def run_cluster_chunk(task: ClusterChunkTask) -> int:
    """Score one chunk's targets untouched and under their conditions, write its table, then mark it done."""
    rows: list[dict] = []
    with relevance_compute(task.torch_threads):
        device = worker_device(task.settings.device)
        model, source = cached_model(task.model_spec, device), cached_source(task.source_spec)
        load = _model_views(source, model.preprocessing)
        jobs = []
        for target in task.targets:
            views, error = intervention_views(target, task.mask, load)
            jobs += [(target, condition, pixels) for condition, pixels in views.items()]
            rows += [_row(target, ORIGINAL, error=error)] if error else []
        maps, scores = _explain_views(model, [pixels for _, _, pixels in jobs], task.class_index, task.settings, device)
    original = {
        target.sample_id: float(score)
        for (target, condition, _), score in zip(jobs, scores, strict=True)
        if condition == ORIGINAL
    }
    for (target, condition, _), relevance, score in zip(jobs, maps, scores, strict=True):
        finite = np.isfinite(score) and np.isfinite(original[target.sample_id])
        rows.append(
            _row(
                target,
                condition,
                float(score),
                float(score) - original[target.sample_id],
                _share_inside(relevance, task.mask),
                "" if finite else "non-finite score",
            )
        )
    node = zarr.open_group(task.store, mode="r+", path=task.path, zarr_format=3)
    write_table(nodes.subgroup(node, "samples"), f"chunk-{task.chunk:05d}", _as_table(rows))
    nodes.array(node, "done")[task.chunk] = True
    return len(task.targets)


def _share_inside(relevance: np.ndarray, mask: np.ndarray) -> float:
    """Positive relevance inside the region / all positive relevance (NaN if none)."""
    positive = np.clip(relevance, 0, None)
    total = float(positive.sum())
    return float(positive[mask].sum()) / total if total > 0 else float("nan")


def _row(
    target: Target,
    condition: str,
    score: float = float("nan"),
    delta: float = float("nan"),
    share: float = float("nan"),
    error: str = "",
) -> dict:
    offset = target.offset if condition == "remove_control" else (0, 0)
    donor = {"transplant": target.donor, "transplant_control": target.control_donor}.get(condition, "")
    return {
        "sample_id": target.sample_id,
        "group": target.group,
        "condition": condition,
        "donor_id": donor,
        "offset_y": offset[0],
        "offset_x": offset[1],
        "score": score,
        "delta": delta,
        "region_relevance_share": share,
        "error": error,
    }


TABLE_COLUMNS = {
    "sample_id": str,
    "group": str,
    "condition": str,
    "donor_id": str,
    "offset_y": "int64",
    "offset_x": "int64",
    "score": float,
    "delta": float,
    "region_relevance_share": float,
    "error": str,
}


def _as_table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS)).astype(TABLE_COLUMNS)


def _read_table(node: zarr.Group) -> pd.DataFrame:
    """The per-image table: every done chunk's rows, in chunk order."""
    done = np.asarray(nodes.read(node, "done"), dtype=bool)
    parts = [read_table(nodes.array(node, f"samples/chunk-{i:05d}")) for i in np.flatnonzero(done)]
    return pd.concat(parts, ignore_index=True) if parts else _as_table([])


# ---- examples -----------------------------------------------------------------------------
def _examples(
    node: zarr.Group,
    model: Any,
    source: Any,
    mask: np.ndarray,
    plan: list[Target],
    table: pd.DataFrame,
    n_examples: int,
    seed: int,
    settings: ComputeSettings,
) -> dict[str, np.ndarray]:
    """Pixels, relevance and scores under each condition of a few cluster images (remove) and images of
    other classes (transplant), stored once."""
    if "examples" in node and nodes.subgroup(node, "examples").attrs.get("complete"):
        return {name: np.asarray(array[...]) for name, array in nodes.subgroup(node, "examples").arrays()}
    failed = set(table.loc[table["error"] != "", "sample_id"])
    rng = np.random.default_rng(seed)
    chosen: list[Target] = []
    for group, count in (("members", -(-n_examples // 2)), ("other_classes", n_examples // 2)):
        pool = [t for t in plan if t.group == group and t.sample_id not in failed]
        chosen += [pool[i] for i in np.sort(rng.choice(len(pool), size=min(count, len(pool)), replace=False))]
    load = _model_views(source, model.preprocessing)
    views = [intervention_views(target, mask, load)[0] for target in chosen]
    conditions = [[ORIGINAL, *GROUP_CONDITIONS[t.group]] for t in chosen]
    maps, scores = _explain_views(
        model,
        [v[c] for v, names in zip(views, conditions, strict=True) for c in names],
        model.class_names.index(node.attrs["class_name"]),
        settings,
    )
    side = mask.shape
    arrays = {
        "sample_id": np.asarray([t.sample_id for t in chosen], dtype=str),
        "group": np.asarray([t.group for t in chosen], dtype=str),
        "donor": np.asarray([t.donor for t in chosen], dtype=str),
        "condition": np.asarray(conditions, dtype=str).reshape(-1, 3),
        "pixels": np.asarray(
            [v[c] for v, names in zip(views, conditions, strict=True) for c in names], np.uint8
        ).reshape(-1, 3, *side, 3),
        "relevance": np.asarray(maps, np.float32).reshape(-1, 3, *side),
        "score": np.asarray(scores, np.float64).reshape(-1, 3),
    }
    examples = node.create_group("examples", overwrite=True)
    for name, value in arrays.items():
        if value.dtype.kind == "U":
            examples.create_array(name, shape=value.shape, dtype=str, fill_value="")[...] = value
        else:
            examples.create_array(name, data=value)
    examples.attrs["complete"] = True
    return arrays


# ---- reading back and the page ------------------------------------------------------------
def _arrays(node: zarr.Group, name: str) -> dict[str, np.ndarray]:
    return {key: np.asarray(array[...]) for key, array in nodes.subgroup(node, name).arrays()} if name in node else {}


def _results(class_name: str, node: zarr.Group, digest: str, n_computed: int) -> ClusterResults:
    """The stored test ``node`` read back whole."""
    return ClusterResults(
        class_name,
        int(nodes.json_number(node.attrs["cluster"], "cluster")),
        _read_table(node),
        read_table(nodes.array(node, "summary")),
        read_table(nodes.array(node, "contrasts")),
        nodes.json_mapping(node.attrs["verdict"], "verdict"),
        _arrays(node, "region"),
        _arrays(node, "examples"),
        dict(node.attrs),
        digest,
        n_computed,
    )


def read_cluster_results(store_location: str | os.PathLike, class_name: str, cluster: int) -> ClusterResults:
    """The latest complete test of ``cluster`` of ``class_name`` stored at ``store_location``."""
    store = open_store(os.fspath(store_location), "r")
    found = []
    path = f"{GROUP}/{encode_name(class_name)}"
    for _, model_group in store.child_groups(store.root):
        for _, dataset_group in store.child_groups(model_group):
            for _, variant in store.child_groups(dataset_group):
                if path in variant:
                    found += [
                        node
                        for _, node in nodes.subgroup(variant, path).groups()
                        if "verdict" in node.attrs and node.attrs.get("cluster") == int(cluster)
                    ]
    if not found:
        raise StoreError(
            f"the store {store_location} has no test of cluster {cluster} of class {class_name!r}; run "
            f"`spray verify cluster --class {class_name} --cluster {cluster}` first"
        )
    node = max(found, key=lambda n: nodes.json_number(n.attrs.get("completed_at", 0.0), "completed_at"))
    return _results(class_name, node, node.basename, 0)


def write_cluster_page(results: ClusterResults, reports: str | os.PathLike) -> Path:
    """Render the test's HTML page into the reports folder; returns its path."""
    from reports.cluster_page import ClusterPage, cluster_page_filename, render_cluster_page

    attrs, table = results.attrs, results.table
    targets = table[table["condition"] == ORIGINAL].groupby("group")["sample_id"].nunique()
    page = ClusterPage(
        class_name=results.class_name,
        cluster=results.cluster,
        summary=results.summary,
        contrasts=results.contrasts,
        verdict=results.verdict,
        region=results.region,
        region_text=attrs["region"]["description"],
        reference=attrs["reference"],
        examples=results.examples,
        facts={
            "model": attrs["model"]["fingerprint"],
            "data": attrs["dataset"]["name"],
            "split": attrs["params"]["split"],
            "seed": attrs["params"]["seed"],
            "samples per group": attrs["params"]["samples"] or "all",
            "analysis": attrs["params"]["analysis"],
            "region rule": attrs["params"]["region"],
            "interventions": attrs["params"]["interventions"],
            "composite": attrs["params"]["composite"],
            "class-score spread (the margin's unit)": attrs["score_spread"],
            **{f"images: {group.replace('_', ' ')}": int(n) for group, n in targets.items()},
            "failed images": attrs.get("n_errors", 0),
            "store key": results.params_hash,
        },
    )
    return render_cluster_page(page, Path(reports) / cluster_page_filename(results.class_name, results.cluster))
