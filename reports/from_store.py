"""Report data read from the store: a class group and one of its stored analyses.

Reports are regenerated from the store alone (ARCHITECTURE.md): nothing here runs the
analysis. The analysis entry (``group.write_analysis``) is read by these names
(docs/interfaces.md, ``reports``):

    arrays  eigenvalues (m,) ascending; labels (n,) int; rows (n,) int, the class-group rows
            analysed (default: every valid row); eigengap (m-1,), tsne / umap (n, 2),
            prototypes (K, G, G) in cluster-table order, predicted (n,) bool (the model
            predicted the class; needed to mark true positives unless the samples were
            selected by prediction) -- all optional
    tables  clusters (SpectralRelevanceAnalysis.clusters_; medoids index the analysed rows),
            stability (label_stability: parameter, value, ari) -- optional
    params  the analysis parameters (``grid`` picks the pooled maps shown on hover)
    attrs   n_clusters (default: the number of cluster rows)
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import zarr

from relevance_store import AnalysisResult, ClassGroup, nodes, params_hash
from relevance_store.analysis import to_json
from relevance_store.naming import VERIFY_CLUSTER, encode_name
from relevance_store.tags import Tag, read_tags, tags_for_clusters
from reports.class_page import render_class_page
from reports.cluster_page import cluster_page_filename
from reports.index_page import INDEX_FILENAME, render_index_page
from reports.model import ClassReportData, ClassSummary, IndexReportData
from reports.padding_page import padding_page_filename
from reports.page_pool import render_all
from reports.safe import class_page_filename
from spray import __version__
from spray.atomic import write_text_atomically
from spray.class_order import class_order_warning
from spray.errors import ReportDataError

#: Pooled grid shown on hover when the analysis names none (L2100).
DEFAULT_GRID = 20


def _rows(group: ClassGroup, analysis: AnalysisResult) -> np.ndarray:
    rows = analysis.arrays.get("rows")
    rows = np.flatnonzero(group.valid) if rows is None else np.asarray(rows, dtype=np.int64)
    if len(rows) != len(analysis.arrays["labels"]):
        raise ReportDataError(
            f"analysis {analysis.params_hash} of class {group.key.class_name!r} has {len(analysis.arrays['labels'])} "
            f"labels for {len(rows)} analysed rows; store its 'rows' array or re-run `spray analyze`."
        )
    return rows


def _grid(group: ClassGroup, analysis: AnalysisResult) -> int:
    grid = analysis.params.get("grid") or DEFAULT_GRID
    return int(grid) if int(grid) in group.grids else int(group.grids[0])


def _clusters(analysis: AnalysisResult, labels: np.ndarray, maps: np.ndarray, tags: Sequence[Tag]) -> pd.DataFrame:
    if "clusters" not in analysis.tables:
        raise ReportDataError(f"analysis {analysis.params_hash} has no 'clusters' table; re-run `spray analyze`.")
    table = analysis.tables["clusters"].copy()
    table["medoids"] = [list(np.asarray(m, dtype=int)) for m in table["medoids"]]
    stored = analysis.arrays.get("prototypes")
    if stored is None or len(stored) != len(table):  # the mean map per cluster, as the analysis defines it
        prototypes = [maps[labels == c].mean(axis=0) for c in table["cluster"]]
    else:
        prototypes = list(stored)
    table["prototype"] = prototypes
    matched = tags_for_clusters(tags, np.stack([np.asarray(p, dtype=float) for p in prototypes])) if tags else []
    table["tag"] = [tag.kind if tag else "" for tag in matched] or [""] * len(table)
    table["tag_note"] = [tag.note if tag else "" for tag in matched] or [""] * len(table)
    return table


def _true_positives(group: ClassGroup, analysis: AnalysisResult, rows: np.ndarray) -> np.ndarray | None:
    """True member and predicted as the class; None when the predictions are unknown.

    Samples chosen by prediction (``--select predicted``) are all predicted as the class, so
    their true label decides; samples chosen by true label alone need a stored ``predicted``.
    """
    true_member = np.asarray(group.labels)[rows] == 1
    predicted = analysis.arrays.get("predicted")
    if predicted is not None:
        return true_member & np.asarray(predicted, dtype=bool)
    if group.provenance.get("config", {}).get("selection") == "predicted":
        return true_member
    return None


def _stability(analysis: AnalysisResult) -> dict[str, float]:
    table = analysis.tables.get("stability")
    if table is None:
        return {}
    return {f"{row.parameter}={row.value}": float(row.ari) for row in table.itertuples()}


def _when(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _provenance(group: ClassGroup, analysis: AnalysisResult) -> dict[str, object]:
    stored = group.provenance
    config = stored.get("config", {})
    return {
        "model fingerprint": group.key.model_id,
        "dataset fingerprint": group.key.dataset_id,
        "dataset": stored.get("dataset", {}).get("spec"),
        "split": config.get("split"),
        "sample selection": config.get("selection"),
        "LRP composite": config.get("lrp_composite"),
        "input pipeline": stored.get("preprocessing_summary"),
        "class order (model outputs)": ", ".join(config.get("class_names", [])) or None,
        "maps settings": group.key.maps_id,
        "device": stored.get("compute", {}).get("device"),
        "analysis": analysis.params_hash,
        "analysed at": _when(analysis.written_at),
        "spray version": stored.get("spray_version"),
    }


def _notes(group: ClassGroup, labels: np.ndarray, true_positive: np.ndarray | None) -> list[str]:
    """Warnings for the top of the class page: a class order that looks wrong (``spray.class_order``)."""
    members = labels == 1
    names = group.provenance.get("config", {}).get("class_names", [])
    if true_positive is None or not members.any():
        return []
    warning = class_order_warning(group.key.class_name, float(np.mean(true_positive[members])), len(names))
    return [warning] if warning else []


def class_report_data(
    group: ClassGroup,
    analysis: AnalysisResult | None = None,
    *,
    links: Mapping[str, str] | None = None,
    tags: Sequence[Tag] | None = None,
) -> ClassReportData:
    """The class page's data from ``group`` and its ``analysis`` (default: the latest stored);
    ``tags`` (default: those given on this group) are matched to its clusters by prototype."""
    analysis = analysis or group.read_analysis()
    rows = _rows(group, analysis)
    labels = np.asarray(analysis.arrays["labels"]).astype(int)
    maps = np.asarray(group.pooled(_grid(group, analysis))[rows], dtype=np.float64)
    thumbnails = group.thumbnails
    clusters = _clusters(analysis, labels, maps, read_tags(group) if tags is None else tags)
    true_positive = _true_positives(group, analysis, rows)
    sample_ids = group.sample_ids
    return ClassReportData(
        class_name=group.key.class_name,
        model_name=group.model_name,
        dataset_name=str(group.provenance.get("dataset", {}).get("name", group.key.dataset_id)),
        sample_ids=[sample_ids[i] for i in rows],
        scores=np.asarray(group.scores)[rows],
        is_true_positive=true_positive,
        notes=_notes(group, np.asarray(group.labels)[rows], true_positive),
        latent_views=group.latent_views(analysis.params_hash),
        layer=group.provenance.get("config", {}).get("layer"),
        labels=labels,
        eigenvalues=np.asarray(analysis.arrays["eigenvalues"], dtype=float),
        eigengap=analysis.arrays.get("eigengap"),
        n_clusters=int(analysis.attrs.get("n_clusters") or len(clusters)),
        embeddings={m: analysis.arrays[m] for m in ("tsne", "umap") if m in analysis.arrays},
        image_thumbnails=None if thumbnails is None else np.asarray(thumbnails[:])[rows],
        relevance_thumbnails=maps,
        clusters=clusters,
        stability=_stability(analysis),
        params=dict(analysis.params),
        provenance=_provenance(group, analysis),
        links=dict(links or {}),
    )


def index_entry(data: ClassReportData) -> ClassSummary:
    """The index line of a class page's data (its page file from ``class_page_filename``)."""
    gaps = data.gaps[:10]
    suspicion = data.clusters["suspicion"].max() if "suspicion" in data.clusters.columns else None
    return ClassSummary(
        class_name=data.class_name,
        page_href=class_page_filename(data.class_name),
        eigenvalues=np.asarray(data.eigenvalues)[:5],
        largest_gap=float(gaps.max()) if len(gaps) else 0.0,
        n_clusters=data.n_clusters,
        n_samples=len(data.sample_ids),
        top_suspicion=None if suspicion is None or pd.isna(suspicion) else float(suspicion),
        links={label: href for label, href in data.links.items() if href != INDEX_FILENAME},
        tags=tuple(sorted({kind for kind in data.clusters.get("tag", []) if kind})),
    )


def verification_links(out_dir: str | Path, group: ClassGroup, analysis_hash: str | None = None) -> dict[str, str]:
    """Links to the verification pages of the class already in ``out_dir``, so a class page written
    by `spray report` links them as one written by `spray run` does: its padding experiment, and
    ``{"cluster K shortcut test": page}`` for each complete cluster test of the analysis shown
    (``analysis_hash``, default the latest; a test of another analysis has other cluster ids)."""
    name = group.key.class_name
    padding = padding_page_filename(name)
    links = {"padding verification": padding} if (Path(out_dir) / padding).is_file() else {}
    hashes = group.analysis_hashes()
    shown = analysis_hash or (hashes[-1] if hashes else None)
    try:
        tests = zarr.open_group(
            store=group.group.store,
            mode="r",
            zarr_format=3,
            path="/".join([group.key.variant, VERIFY_CLUSTER, encode_name(name)]),
        )
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        return links
    tested = sorted(
        {
            int(nodes.json_number(test.attrs["cluster"], "cluster"))
            for _, test in tests.groups()
            if "verdict" in test.attrs
            and nodes.json_mapping(test.attrs.get("params", {}), "params").get("analysis") == shown
        }
    )
    pages = {f"cluster {cluster} shortcut test": cluster_page_filename(name, cluster) for cluster in tested}
    return links | {label: page for label, page in pages.items() if (Path(out_dir) / page).is_file()}


def shared_params(params: Sequence[Mapping[str, object]]) -> dict[str, object]:
    """What the index can state for every class it ranks: the analysis parameters all classes' ``params``
    share (``rows``, each class's own analysed rows, left out), and which ones differ between classes."""
    first = {key: value for key, value in params[0].items() if key != "rows"}
    shared = {key: value for key, value in first.items() if all(p.get(key, ...) == value for p in params[1:])}
    differing = sorted({key for p in params for key in p if key != "rows"} - set(shared))
    described = {"analyses of": f"the {len(params)} class{'es' if len(params) != 1 else ''} ranked above"}
    return {**described, **shared, **({"differ between classes": ", ".join(differing)} if differing else {})}


@functools.cache
def renderer_digest() -> str:
    """A digest of the page renderer's own code (this package's modules), so that a new spray
    renders pages again even when its version number did not change."""
    digest = hashlib.sha256(__version__.encode())
    for module in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(module.read_bytes())
    return digest.hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class PageJob:
    """One class page to render (picklable: a pool process renders it)."""

    group: ClassGroup
    analysis: AnalysisResult | None
    links: dict[str, str]
    tags: list[Tag] | None
    out_dir: str


def render_page(job: PageJob) -> tuple[ClassSummary, dict]:
    """Render a class page; return its index line and parameters (the manifest keeps them)."""
    data = class_report_data(job.group, job.analysis, links=job.links, tags=job.tags)
    render_class_page(data, job.out_dir)
    return index_entry(data), dict(data.params)


class PageManifest:
    """What each class page was rendered from (``.spray-pages.json`` in the reports folder), so
    a rerun renders again only the pages whose inputs changed: 1000 unchanged classes must not
    cost 1000 renders. The digest covers the class group's key and attrs (settings, tags), the
    analysis shown, the page's links and the renderer (:func:`renderer_digest`); the index line
    and parameters are kept with it so the index needs no page data."""

    NAME = ".spray-pages.json"

    def __init__(self, folder: Path) -> None:
        self.path = folder / self.NAME
        try:
            self.entries: dict[str, dict] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.entries = {}

    def digest(
        self, group: ClassGroup, analysis: AnalysisResult | None, links: Mapping[str, str], tags: Sequence[Tag] | None
    ) -> str:
        shown = analysis.params_hash if analysis is not None else (group.analysis_hashes() or [""])[-1]
        return params_hash(
            {
                "key": list(group.key),
                "attrs": group.provenance,
                "analysis": shown,
                "links": dict(links),
                "tags": [t.to_dict() for t in tags or ()],
                "renderer": renderer_digest(),
            }
        )

    def unchanged(self, name: str, digest: str) -> tuple[ClassSummary, dict] | None:
        entry = self.entries.get(name)
        if not entry or entry["digest"] != digest or not (self.path.parent / entry["summary"]["page_href"]).is_file():
            return None
        try:
            summary = ClassSummary(**{**entry["summary"], "eigenvalues": np.asarray(entry["summary"]["eigenvalues"])})
        except (TypeError, ReportDataError):  # written by another version of the index line
            return None
        return summary, entry["params"]

    def record(self, name: str, digest: str, summary: ClassSummary, params: dict) -> None:
        self.entries[name] = {
            "digest": digest,
            "summary": to_json(dataclasses.asdict(summary)),
            "params": to_json(params),
        }

    def save(self) -> None:
        write_text_atomically(self.path, json.dumps(self.entries))


def write_reports(
    groups: Sequence[ClassGroup],
    out_dir: str | Path,
    *,
    params: Mapping[str, object] | None = None,
    provenance: Mapping[str, object] | None = None,
    links: Mapping[str, Mapping[str, str]] | None = None,
    analyses: Mapping[str, AnalysisResult] | None = None,
    index: bool = True,
    tags: Mapping[str, Sequence[Tag]] | None = None,
    progress: bool = False,
    skipped: Mapping[str, str] | None = None,
    processes: int | None = None,
) -> list[Path]:
    """Write a class page per group and, if ``index``, the index page; ``tags`` gives each class
    the tags to match to its clusters (default: those given on its own group).

    Each page shows ``analyses[class name]`` when given (e.g. the entry a run just reused),
    else the group's latest stored analysis.

    ``links`` maps a class name to extra links of its page; its verification pages in ``out_dir``
    are linked without being named (:func:`verification_links`); with the index, every class page
    also links back to it. The index states ``params`` when given, else the analysis parameters
    its classes share (:func:`shared_params`). Returns the written paths, the index last.
    Pages are rendered by ``processes`` processes (default: one per core from
    ``page_pool.POOL_MIN_PAGES`` pages on).
    """
    back = {"all classes": INDEX_FILENAME} if index else {}
    manifest = PageManifest(Path(out_dir))
    kept: list[tuple[ClassSummary, dict] | None] = []
    digests: list[str] = []
    jobs = []
    for group in groups:
        name = group.key.class_name
        analysis = (analyses or {}).get(name)
        shown = analysis.params_hash if analysis is not None else None
        page_links = {**back, **verification_links(out_dir, group, shown), **(links or {}).get(name, {})}
        class_tags = (tags or {}).get(name)
        digests.append(manifest.digest(group, analysis, page_links, class_tags))
        kept.append(manifest.unchanged(name, digests[-1]))
        if kept[-1] is None:  # its inputs changed (or it is missing): rendered again
            jobs.append(
                PageJob(group, analysis, page_links, None if class_tags is None else list(class_tags), str(out_dir))
            )
    rendered = iter(list(render_all(render_page, jobs, processes=processes, progress=progress, desc="class pages")))
    summaries, class_params, paths = [], [], []
    for group, digest, entry in zip(groups, digests, kept, strict=True):
        name = group.key.class_name
        if entry is None:
            entry = next(rendered)
            manifest.record(name, digest, *entry)
        summary, page_params = entry
        paths.append(Path(out_dir) / class_page_filename(name))
        summaries.append(summary)
        class_params.append(page_params)
    manifest.save()
    if index and summaries:
        index_data = IndexReportData(
            classes=summaries,
            params=dict(params) if params is not None else shared_params(class_params),
            provenance=dict(provenance or {}),
            skipped=dict(skipped or {}),
        )
        paths.append(render_index_page(index_data, out_dir))
    return paths
