"""Analyse the stored relevance maps of a class and keep the result in the store.

Each class is one task (``run_analysis``) on the run's workers, reading its maps from the
store and writing its result back, under ``process_settings.analysis_compute`` thread limits;
a run of many classes analyses several at once.

The analysis entry's key covers every parameter *and* the rows analysed (so new or
recomputed maps give a new entry, never a stale one, unlike CoRelAy's cache,
ARCHITECTURE.md). A rerun with the same inputs reuses the stored entry and computes nothing.
The arrays and tables are stored under the names the reports read (``reports.from_store``).
"""

from __future__ import annotations

import collections
import hashlib
import warnings
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from relevance_store import AnalysisResult, ClassGroup, ClassKey, open_store, params_hash
from spray.analysis import SpectralRelevanceAnalysis
from spray.errors import AnalysisInputError
from workflows import cluster
from workflows.config import RunConfig
from workflows.process_settings import analysis_compute, thread_counts
from workflows.settings import AnalysisSettings

FULL_MAPS_BUDGET = 50_000_000
"""Largest number of full-resolution relevance values loaded for one class (200 MB of float32).

Up to it the analysis pools the full maps itself, so the stability check can re-pool them at
the other grid sizes (5 to 50, L2100); above it the stored pooled maps are used and stability
varies k only. A measured bound of this machine's memory, not a thesis value."""

MIN_SAMPLES = 3
"""Fewest maps a kNN graph and its Laplacian can be built on."""


@dataclass(frozen=True)
class ClassAnalysis:
    """The stored analysis of a class, and whether it was reused rather than computed."""

    result: AnalysisResult
    reused: bool


def estimator_for(settings: AnalysisSettings, latent: bool = False) -> SpectralRelevanceAnalysis:
    """The analysis the settings ask for (every other setting: the SPEC §1 defaults). ``latent``:
    of an inner layer's channel vectors, compared by cosine (``normalize="l2"``) unless set."""
    normalize = settings.normalize if settings.normalize is not None else ("l2" if latent else "none")
    return SpectralRelevanceAnalysis(
        grid=None if latent else settings.grid,
        k=settings.k,
        n_clusters=settings.n_clusters,
        n_clusters_rule=settings.n_clusters_rule,
        min_clusters=settings.min_clusters,
        normalize=None if normalize == "none" else normalize,
        embeddings=tuple(settings.embeddings),
        random_state=settings.seed,
    )


def _rows_digest(group: ClassGroup, rows: np.ndarray) -> str:
    """Which rows were analysed, and which maps they held (their scores change when recomputed)."""
    digest = hashlib.sha256(rows.astype(np.int64).tobytes())
    digest.update(np.asarray(group.scores)[rows].astype(np.float32).tobytes())
    return digest.hexdigest()[:16]


def _maps(group: ClassGroup, rows: np.ndarray, grid: int) -> tuple[np.ndarray, bool]:
    """The maps to analyse and whether they are full-resolution (True) or pooled at ``grid``."""
    full = group.full
    if full is not None and len(rows) * int(np.prod(full.shape[1:])) <= FULL_MAPS_BUDGET:
        return np.asarray(full[:])[rows].astype(np.float64), True
    return group.pooled(grid)[rows].astype(np.float64), False


def _cluster_means(values: np.ndarray, estimator: SpectralRelevanceAnalysis) -> np.ndarray:
    """(K, ...) mean of ``values`` per cluster, in cluster-table order."""
    labels = estimator.labels_
    return np.stack([values[labels == c].mean(axis=0) for c in estimator.clusters_["cluster"]])


def _mean_maps(group: ClassGroup, rows: np.ndarray, grid: int, estimator: SpectralRelevanceAnalysis) -> np.ndarray:
    """The pooled pixel maps' mean per cluster of a latent analysis: where in the image each
    cluster's relevance lies (the prototype pages, tags and audits match on)."""
    return _cluster_means(group.pooled(grid if grid in group.grids else group.grids[0])[rows], estimator)


def _predicted_as_class(group: ClassGroup, rows: np.ndarray) -> dict[str, np.ndarray]:
    """``{"predicted": (n,) bool}``: the model's top output is this class (marks true positives, L2128)."""
    names = list(group.provenance.get("model", {}).get("class_names", []))
    if group.key.class_name not in names:
        return {}
    return {"predicted": group.predicted[rows] == names.index(group.key.class_name)}


class TooFewMapsError(AnalysisInputError):
    """A class with fewer usable maps than a kNN graph needs; a run skips it and goes on."""


def _too_few(group: ClassGroup, rows: np.ndarray) -> TooFewMapsError:
    """Why a class has too few usable maps: not computed yet, or which failures, how often."""
    reasons = collections.Counter(str(r) for r in group.error_reasons[group.sample_done] if r)
    missing = int((~group.sample_done).sum())
    parts = [f"{count} {reason}" for reason, count in reasons.most_common(3)]
    parts += [f"{missing} not computed yet (run `spray compute` to finish it)"] if missing else []
    why = f" ({'; '.join(parts)})" if parts else ""
    return TooFewMapsError(
        f"class {group.key.class_name!r} has {len(rows)} usable relevance maps of {group.n_samples}{why}; "
        f"the kNN graph needs at least {MIN_SAMPLES}: fix the images or the model, or add images of this class"
    )


def analyze_group(group: ClassGroup, config: RunConfig) -> ClassAnalysis:
    """Analyse the valid rows of ``group`` with ``config`` (or reuse the stored analysis) and read it.

    Raises :class:`TooFewMapsError` for a class with fewer than 3 usable maps and an
    ``AnalysisInputError`` for a grid finer than the maps."""
    digest, reused = store_analysis(group, config)
    return ClassAnalysis(group.read_analysis(digest), reused)


@dataclass(frozen=True)
class AnalysisRequest:
    """What ``config`` asks of a class: the rows to analyse, the estimator, its entry's key."""

    rows: np.ndarray
    estimator: SpectralRelevanceAnalysis
    params: dict
    latent: bool
    """Of an inner layer's channel relevance (else of the pixel maps)."""

    @property
    def digest(self) -> str:
        return params_hash(self.params)


def analysis_request(group: ClassGroup, config: RunConfig) -> AnalysisRequest:
    """The analysis ``config`` asks of ``group``. Raises :class:`TooFewMapsError` for a class with
    fewer than 3 usable maps and an ``AnalysisInputError`` for a grid finer than the maps."""
    rows = np.flatnonzero(group.valid)
    if len(rows) < MIN_SAMPLES:
        raise _too_few(group, rows)
    side = min(group.map_shape)
    if config.analysis.grid > side:
        raise AnalysisInputError(
            f"--grid {config.analysis.grid} is finer than the {side}x{side} relevance maps of "
            f"class {group.key.class_name!r}; choose a grid of at most {side}"
        )
    latent = group.has_latent
    estimator = estimator_for(config.analysis, latent=latent)
    params = {**estimator.get_params(), "rows": _rows_digest(group, rows), "stability": config.analysis.stability}
    return AnalysisRequest(rows, estimator, params, latent)


def stored_analysis_key(group: ClassGroup, config: RunConfig) -> str | None:
    """The key of the stored analysis ``config`` asks of ``group``; None when it must be made (or
    the class cannot be analysed: its task says why). A class never analysed costs one listing."""
    stored = [] if config.force else group.analysis_hashes()
    if not stored:
        return None
    try:
        digest = analysis_request(group, config).digest
    except AnalysisInputError:
        return None
    return digest if digest in stored else None


def store_analysis(group: ClassGroup, config: RunConfig) -> tuple[str, bool]:
    """The key of the stored analysis of ``group`` with ``config``, and whether it was there already
    (else it is computed and stored now). Reads nothing back: an analysis task only reports the key.

    The store is opened writable only when a new analysis is written."""
    request = analysis_request(group, config)
    if not config.force and request.digest in group.analysis_hashes():
        return request.digest, True
    group = group.writable()
    rows, estimator, stability = request.rows, request.estimator, config.analysis.stability
    latent = group.latent if request.latent else None

    if latent is not None:  # SpRAy on the inner layer's channel vectors (N, C)
        maps, full_resolution = latent[rows].astype(np.float64), False
    else:
        maps, full_resolution = _maps(group, rows, config.analysis.grid)
        if not full_resolution:
            estimator.set_params(grid=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=FutureWarning)  # third-party deprecation noise
        estimator.fit(maps)
        table = estimator.stability(maps, stability) if stability != "off" else None
    if latent is None:
        prototypes = estimator.prototypes_
        assert prototypes is not None, "pixel maps reach the estimator as (N, G, G) maps, which give prototypes"
    else:
        prototypes = _mean_maps(group, rows, config.analysis.grid, estimator)
    arrays = {
        "eigenvalues": estimator.eigenvalues_,
        "eigenvectors": estimator.eigenvectors_,
        "eigengap": estimator.eigengap_,
        "labels": estimator.labels_,
        "rows": rows,
        "prototypes": prototypes,
        **estimator.embedding_,
        **_predicted_as_class(group, rows),
        **({} if latent is None else {"latent_prototypes": _cluster_means(maps, estimator)}),
    }
    tables = {"clusters": estimator.clusters_} | ({"stability": table} if table is not None else {})
    attrs = {
        "n_clusters": estimator.n_clusters_,
        "resolved": estimator.params_,
        "input": "full maps pooled here"
        if full_resolution
        else f"stored {config.analysis.grid}x{config.analysis.grid} pooled maps",
    }
    group.write_analysis(request.params, arrays, tables, attrs)
    return request.digest, False


# ---- one task per class, on the run's workers --------------------------------------------
ANALYSIS_MAP_EQUIVALENT = 150
"""Compute work one class's analysis counts as, in maps, when choosing where tasks run
(``workflows.cluster.Executor``, a cluster from 3000 maps on). An analysis of 200 maps took 3-5 s
on the demo, what computing ~500 maps takes (130 maps/s); but every new worker process first
pays UMAP's numba compilation (~20-60 s here), so a cluster pays for the analysis alone only
from about 20 such classes: 3000 / 20 = 150."""


@dataclass(frozen=True)
class AnalysisTask:
    """Everything a worker needs to analyse one class: where, which class, the settings whole."""

    store: str
    key: ClassKey
    config: RunConfig
    threads: int


@dataclass(frozen=True)
class AnalysisDone:
    """What an analysis task did: the stored entry, whether it was reused, or why it was skipped,
    and the thread limits it ran under (``process_settings.thread_counts``)."""

    key: ClassKey
    params_hash: str | None
    reused: bool
    skipped: str | None
    threads: dict[str, int]


def run_analysis(task: AnalysisTask) -> AnalysisDone:
    """Analyse one class from the store and store the result (or reuse the stored one)."""
    with analysis_compute(task.threads):
        seen = thread_counts()
        group = open_store(task.store, "r").class_group(task.key)
        try:
            digest, reused = store_analysis(group, task.config)
        except TooFewMapsError as error:
            return AnalysisDone(task.key, None, False, str(error), seen)
    return AnalysisDone(task.key, digest, reused, None, seen)


def analyze_classes(
    location: str, keys: list[ClassKey], config: RunConfig, executor: cluster.Executor, *, progress: bool = True
) -> tuple[dict[ClassKey, ClassAnalysis], dict[str, str]]:
    """Analyse ``keys`` as one task per class on ``executor``'s workers (in this process for small
    runs); returns the analyses read back from the store, and the skipped classes with the reason."""
    store = open_store(location, "r")
    done: dict[ClassKey, AnalysisDone] = {}
    for key in keys:  # checked here: a rerun with nothing new starts no worker
        digest = stored_analysis_key(store.class_group(key), config)
        if digest is not None:
            done[key] = AnalysisDone(key, digest, True, None, {})
    todo = [key for key in keys if key not in done]
    if todo:
        runner, threads = executor.choose(ANALYSIS_MAP_EQUIVALENT * len(todo))
        tasks = [AnalysisTask(location, key, config, threads) for key in todo]
        with tqdm(total=len(tasks), unit="class", desc="analyses", disable=not progress, dynamic_ncols=True) as bar:
            for result in runner(run_analysis, tasks):
                done[result.key] = result
                bar.set_postfix_str(result.key.class_name[:30], refresh=False)
                bar.update(1)
    analyses = {
        key: ClassAnalysis(store.class_group(key).read_analysis(result.params_hash), result.reused)
        for key, result in done.items()
        if result.skipped is None
    }
    skipped = {key.class_name: result.skipped for key, result in done.items() if result.skipped is not None}
    return {key: analyses[key] for key in keys if key in analyses}, skipped
