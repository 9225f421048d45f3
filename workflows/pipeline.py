"""What ``spray run`` does: compute (resuming) + analyse + report, for one class or all.

Data flows one way (ARCHITECTURE.md): relevance maps go into the store, the analysis reads
them from the store and writes its result back, and the reports are rendered from the store
alone. Every stage skips what the store already holds, so a second run computes nothing.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from relevance_store import AnalysisResult, ClassGroup, ClassKey, open_store, params_hash
from relevance_store.store import is_local, local_path
from relevance_store.tags import tags_by_class
from reports.from_store import write_reports
from reports.safe import class_page_filename
from spray import __version__
from spray.errors import SprayError
from workflows import cluster
from workflows.analyze import analyze_classes
from workflows.compute import compute_run_classes
from workflows.config import RunConfig
from workflows.latent_views import compute_views


@dataclass(frozen=True)
class ClassOutcome:
    """What a run found for one class (the audit records these)."""

    class_name: str
    n_samples: int
    n_computed: int
    eigenvalues: np.ndarray
    eigengap: np.ndarray
    n_clusters: int
    clusters: pd.DataFrame
    analysis_key: str
    report_page: Path | None
    reused_analysis: bool
    warning: str | None = None
    """The class-order warning of the compute step (``spray.class_order``), if any."""
    settings_key: str = ""
    """The maps' settings and every analysis parameter (not the maps themselves): audits compare
    only classes analysed with equal keys (``workflows.audit.comparison``)."""


@dataclass(frozen=True)
class RunResult:
    """All classes of a run, the index page, and the seconds spent per stage."""

    outcomes: list[ClassOutcome]
    index_page: Path | None
    timings: dict[str, float] = field(default_factory=dict)
    model_fingerprint: str = ""
    dataset_fingerprint: str = ""
    skipped: dict[str, str] = field(default_factory=dict)
    """Classes that could not be analysed (fewer than 3 usable maps), with the reason."""


@contextlib.contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start


def _report_groups(store_location: str, key: ClassKey) -> list[ClassGroup]:
    """Every analysed class of this run's variant (model, data, maps settings): the index ranks them all (Fig. 6.5)."""
    store = open_store(store_location, "r")
    groups = [store.class_group(other) for other in store.class_keys() if other[:3] == key[:3]]
    return sorted((g for g in groups if g.analysis_hashes()), key=lambda g: g.key.class_name)


def check_reports_folder(reports: Path) -> None:
    """Fail before any work when the reports folder cannot be written (a file, or read-only)."""
    if reports.exists() and not reports.is_dir():
        raise SprayError(f"--reports {reports} is a file, not a folder; choose a folder for the HTML reports")
    try:
        reports.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=reports, prefix=".spray-write-check-"):
            pass
    except OSError as error:
        raise SprayError(
            f"cannot write the reports folder {reports} ({error.strerror or error}); choose another --reports folder"
        ) from None


def run(config: RunConfig, progress: bool = True) -> RunResult:
    """Compute, analyse and report ``config.classes`` (``("all",)`` = every class).

    A class with fewer than 3 usable maps is skipped (``RunResult.skipped``) and the others go
    on; when no class can be analysed, the first reason is raised."""
    if not config.classes:
        raise SprayError("no class given; name one with --class NAME (or --class all for every class)")
    check_reports_folder(Path(config.reports))
    timings: dict[str, float] = {}
    location = str(local_path(config.store)) if is_local(config.store) else config.store
    with contextlib.ExitStack() as stack:  # compute and analysis share the workers
        executor = cluster.Executor(stack, config.scheduler, config.workers, location, config.compute.device)
        with _timed(timings, "compute"):
            computed = compute_run_classes(config, progress=progress, executor=executor)
        with _timed(timings, "analyse"):
            analyses, skipped = analyze_classes(
                location, [r.key for r in computed], config, executor, progress=progress
            )
    store = open_store(config.store, "r")
    analysed = [
        (result, store.class_group(result.key), analyses[result.key]) for result in computed if result.key in analyses
    ]
    with _timed(timings, "analyse"):  # an inner layer's clusters: their top channels, seen in the images
        for _result, group, analysis in analysed:
            if group.provenance.get("config", {}).get("layer"):
                compute_views(config, group, analysis.result)
    if not analysed:
        first_reason = next(iter(skipped.values()))
        raise SprayError(
            first_reason
            if len(skipped) == 1
            else f"none of the {len(skipped)} classes can be analysed; first: {first_reason}"
        )
    reports = Path(config.reports)
    first = analysed[0][0].key
    with _timed(timings, "report"):
        groups = _report_groups(config.store, first)
        write_reports(
            groups,
            reports,
            provenance={
                "spray version": __version__,
                "model fingerprint": first.model_id,
                "dataset fingerprint": first.dataset_id,
                "maps settings": first.maps_id,
                "store": str(config.store),
            },
            analyses={group.key.class_name: analysis.result for _result, group, analysis in analysed},
            tags=tags_by_class(store, [g.key.class_name for g in groups]),
            progress=progress,
            skipped=skipped,
            processes=config.workers,  # as many page processes as workers, when the user chose them
        )
    outcomes = [
        ClassOutcome(
            class_name=result.key.class_name,
            n_samples=result.n_samples,
            n_computed=result.n_computed,
            eigenvalues=np.asarray(analysis.result.arrays["eigenvalues"]),
            eigengap=np.asarray(analysis.result.arrays["eigengap"]),
            n_clusters=int(analysis.result.attrs["n_clusters"]),
            clusters=_with_prototypes(analysis.result),
            analysis_key=analysis.result.params_hash,
            settings_key=settings_key(result.key, analysis.result),
            report_page=reports / class_page_filename(result.key.class_name),
            reused_analysis=analysis.reused,
            warning=result.warning,
        )
        for result, _group, analysis in analysed
    ]
    index = reports / "index.html"
    return RunResult(outcomes, index if index.is_file() else None, timings, first.model_id, first.dataset_id, skipped)


def settings_key(key: ClassKey, result: AnalysisResult) -> str:
    """A digest of how a class was analysed: its maps' settings and every analysis parameter,
    without the rows analysed (which change with every model version)."""
    return params_hash({"maps": key.maps_id, **{k: v for k, v in result.params.items() if k != "rows"}})


def _with_prototypes(result: AnalysisResult) -> pd.DataFrame:
    """The cluster table with each cluster's prototype (mean pooled map) as a column."""
    table = result.tables["clusters"].copy()
    table["prototype"] = list(result.arrays["prototypes"])
    return table
