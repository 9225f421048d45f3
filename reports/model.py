"""The plain data a report page is rendered from.

The renderer never reads the store or runs analysis: ``reports.from_store`` (or a test)
fills these dataclasses, and ``render_class_page`` / ``render_index_page`` turn them into
HTML. Construction validates shapes and lengths, so a bad hand-over fails here with one
clear sentence instead of as a blank page in the browser.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from spray.errors import ReportDataError

#: Columns every cluster table must have; the others are optional descriptors.
REQUIRED_CLUSTER_COLUMNS = ("cluster", "size", "medoids", "prototype")
#: Label of samples in no cluster (density-based clusterers); they need no row in the cluster table.
NOISE_LABEL = -1
#: Optional numeric descriptors, in the order the page shows them (see issue 5).
DESCRIPTOR_COLUMNS = (
    "suspicion",
    "separation",
    "distinctness",
    "border_share",
    "top_bottom_share",
    "conductance",
    "concentration",
    "stability",
)


def check_relative_href(href: str, what: str) -> str:
    """Return ``href`` if it is a relative link; a scheme (``javascript:``, ``http:``) is refused.

    Reports open offline from disk, so every link points to a file beside the page; refusing
    schemes also keeps a crafted name from becoming a script URL.
    """
    parts = urlsplit(href)
    if not href or parts.scheme or parts.netloc or href.startswith(("/", "\\")):
        raise ReportDataError(f"{what} {href!r} is not a relative link; pass a file name beside the report page.")
    return href


def _check_length(name: str, values: Any, n: int) -> None:
    if len(values) != n:
        raise ReportDataError(f"{name} has {len(values)} entries but there are {n} samples; pass one per sample.")


@dataclass(frozen=True, kw_only=True)
class ClassReportData:
    """Everything one class page shows (N samples of the class, K clusters).

    Arrays are indexed by sample in one order; ``clusters`` holds one row per cluster with
    the columns in ``REQUIRED_CLUSTER_COLUMNS`` (``medoids``: sample indices, ``prototype``:
    the mean pooled map, (G, G)) and any of ``DESCRIPTOR_COLUMNS``. ``is_true_positive`` is
    None when the model's predictions are unknown (samples chosen by their true label only);
    the page then says nothing about true positives rather than guess.
    """

    class_name: str
    model_name: str
    dataset_name: str
    sample_ids: Sequence[str]
    scores: np.ndarray
    labels: np.ndarray
    eigenvalues: np.ndarray
    n_clusters: int
    embeddings: Mapping[str, np.ndarray]
    relevance_thumbnails: np.ndarray
    clusters: pd.DataFrame
    image_thumbnails: np.ndarray | None = None
    is_true_positive: np.ndarray | None = None
    eigengap: np.ndarray | None = None
    stability: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    provenance: Mapping[str, Any] = field(default_factory=dict)
    links: Mapping[str, str] = field(default_factory=dict)
    notes: Sequence[str] = ()
    """Warnings shown first on the page (plain text, escaped), e.g. a class order that looks wrong."""
    latent_views: Mapping[str, np.ndarray] | None = None
    """For an analysis at an inner layer (``workflows.latent_views``): per cluster (in cluster-table
    order) its top ``channels`` (K, T) and their ``shares``, the conditional ``maps`` of its medoids
    (K, T, M, S, S), the ``medoids`` (K, M) and the ``top_images`` (K, T, I) (sample indices)."""
    layer: str | None = None
    """The inner layer of a latent analysis."""

    def __post_init__(self) -> None:
        n = len(self.sample_ids)
        if n == 0:
            raise ReportDataError(f"class {self.class_name!r} has no samples; analyse it before writing its report.")
        for name in ("scores", "labels", "relevance_thumbnails"):
            _check_length(name, getattr(self, name), n)
        if self.is_true_positive is not None:
            _check_length("is_true_positive", self.is_true_positive, n)
        if self.image_thumbnails is not None:
            _check_length("image_thumbnails", self.image_thumbnails, n)
            if self.image_thumbnails.ndim != 4 or self.image_thumbnails.shape[-1] != 3:
                raise ReportDataError("image_thumbnails must be (N, H, W, 3) uint8 RGB; convert the thumbnails to RGB.")
        if np.asarray(self.relevance_thumbnails).ndim != 3:
            raise ReportDataError("relevance_thumbnails must be (N, g, g); pass pooled or downsampled 2-D maps.")
        for method, coords in self.embeddings.items():
            if np.shape(coords) != (n, 2):
                raise ReportDataError(f"embedding {method!r} has shape {np.shape(coords)}, expected ({n}, 2).")
        if len(self.eigenvalues) < 2:
            raise ReportDataError("eigenvalues must hold at least 2 values (ascending); store more eigenpairs.")
        missing = [c for c in REQUIRED_CLUSTER_COLUMNS if c not in self.clusters.columns]
        if missing:
            raise ReportDataError(
                f"the cluster table lacks column(s) {missing}; add them from the analysis descriptors."
            )
        unknown = sorted(set(np.unique(self.labels).tolist()) - set(self.clusters["cluster"].tolist()) - {NOISE_LABEL})
        if unknown:
            raise ReportDataError(
                f"cluster label(s) {unknown} have no row in the cluster table; pass one row per cluster."
            )
        for medoids in self.clusters["medoids"]:
            if any(not 0 <= int(i) < n for i in medoids):
                raise ReportDataError(f"a medoid index is outside 0..{n - 1}; medoids are indices into the samples.")
        for label, href in self.links.items():
            check_relative_href(href, f"link {label!r}")

    @property
    def gaps(self) -> np.ndarray:
        """The eigengap vector |lambda_{i+1} - lambda_i| (SPEC 1.5, L2087)."""
        if self.eigengap is not None:
            return np.asarray(self.eigengap, dtype=float)
        return np.abs(np.diff(np.asarray(self.eigenvalues, dtype=float)))


@dataclass(frozen=True, kw_only=True)
class ClassSummary:
    """One class's line on the index page; ``page_href`` is its class page, relative."""

    class_name: str
    page_href: str
    eigenvalues: np.ndarray
    largest_gap: float
    n_clusters: int
    n_samples: int
    top_suspicion: float | None = None
    links: Mapping[str, str] = field(default_factory=dict)
    """The class's verification pages (padding experiment, cluster tests), relative."""
    tags: tuple[str, ...] = ()
    """The kinds of the tags its clusters carry (``spray tag``), e.g. ("shortcut",)."""

    def __post_init__(self) -> None:
        check_relative_href(self.page_href, f"page_href of class {self.class_name!r}")
        for label, href in self.links.items():
            check_relative_href(href, f"link {label!r} of class {self.class_name!r}")
        object.__setattr__(self, "tags", tuple(self.tags))
        if len(self.eigenvalues) < 2:
            raise ReportDataError(
                f"class {self.class_name!r} needs at least its 2 smallest eigenvalues for the ranking."
            )

    @property
    def lambda_2(self) -> float:
        """The second smallest eigenvalue of L_sym, the cross-class ranking key (L2124)."""
        return float(self.eigenvalues[1])


@dataclass(frozen=True, kw_only=True)
class IndexReportData:
    """The index page: every analysed class, and the run's parameters and provenance."""

    classes: Sequence[ClassSummary]
    params: Mapping[str, Any] = field(default_factory=dict)
    provenance: Mapping[str, Any] = field(default_factory=dict)
    links: Mapping[str, str] = field(default_factory=dict)
    skipped: Mapping[str, str] = field(default_factory=dict)
    """Classes that could not be analysed, with the reason (fewer than 3 usable maps)."""

    def __post_init__(self) -> None:
        if not self.classes:
            raise ReportDataError("the index has no classes; analyse at least one class before writing the index.")
        names = [c.class_name for c in self.classes]
        if len(set(names)) != len(names):
            raise ReportDataError("the index lists a class twice; pass one summary per class.")
        for label, href in self.links.items():
            check_relative_href(href, f"link {label!r}")
