"""The public scikit-learn-style estimator of Spectral Relevance Analysis (Algorithm 3, L2564-L2588)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from spray.analysis import affinity as affinity_module
from spray.analysis import clustering, embedding, knn, null, pooling, spectrum
from spray.analysis.descriptors import describe_clusters
from spray.analysis.laplacian import LAPLACIAN_DEFAULT, LaplacianKind
from spray.analysis.suspicion import score_clusters
from spray.analysis.timing import stage
from spray.analysis.validation import check_k, check_maps, warn_if_degenerate
from spray.errors import AnalysisInputError


class SpectralRelevanceAnalysis(BaseEstimator):
    """SpRAy for the relevance maps of one class: pooled maps -> kNN graph -> L_sym -> spectrum -> clusters.

    Every default follows SPEC §1 and the thesis line it cites:

    - ``grid=20``: sum pooling to 20 x 20 (L2100); 5, 10, 50 also work; ``None`` = maps are
      already pooled features (N, D) or (N, G, G).
    - ``k=None``: k = max(2, ceil(log_base n)) with ``knn_log_base=e`` (L2100, SPEC §1.3).
    - ``knn_method="auto"``: exact up to 20 000 samples, NN-descent above (see ``knn``).
    - ``symmetrize="max"`` (L2067), ``edge_weight="binary"`` (Eq. 6.1, L2065-L2067).
    - ``laplacian="sym"``: L_sym = I - D^-1/2 W D^-1/2 (L2100).
    - ``n_eigenvalues=32``: >= 20 are reported (L2096).
    - ``n_clusters=None``: chosen by ``n_clusters_rule``, at most ``max_clusters=10``, at least
      ``min_clusters=1``; an int overrides it. ``"significant-gap"`` (default [X]): the last gap
      among the first 10 whose ratio lambda_{i+1} / lambda_i is both >= 1.5 and 3 standard
      deviations above the same gap in ``n_twins=10`` structureless twins of the class
      (``spectrum.significant_n_clusters``, ``null``); a class without groups gets 1.
      ``"largest-gap"``: the thesis-style argmax of the eigengaps (SPEC §1.5; the thesis picks
      the count by eye, L2087, L2102), where ``min_clusters=2`` skips the first gap.
    - Suspicion (``suspicion``): each cluster's separation and distinctness against chance in
      the class, the twins giving the chance cut; ``suspicious`` when both clear their threshold.
    - ``clusterer="njw"`` with ``n_init=10`` (L2100, SPEC §1.6).
    - ``embeddings=("tsne", "umap")``: t-SNE perplexity 7, early exaggeration 6 (L2100) on
      DIST = 1/(W + eps) (L2091), i.e. uniform affinities over the kNN graph
      (``tsne_input="graph"``), or on the pooled features (``tsne_input="features"``); UMAP on
      the same kNN graph [X].
    - ``normalize=None``: no per-map normalisation (SPEC §1.1, from L2590); "maxabs" (L942) or
      "l2" scale each pooled map. ``smooth_sigma`` (Gaussian low-pass, L2562) and ``fft``
      (FFT-magnitude features, L2209) are off.
    - ``random_state=0`` seeds everything (NN-descent, Lanczos start, k-means, embeddings);
      the same seed gives identical labels and embeddings.

    ``fit(maps)`` clusters all maps as given; use only positive relevance by passing
    ``np.clip(maps, 0, None)``. After fitting: ``features_``, ``pooled_`` (N, G, G) or None,
    ``k_``, ``affinity_`` (scipy CSR), ``eigenvalues_`` (ascending), ``eigenvectors_``,
    ``eigengap_``, ``n_components_``, ``n_clusters_``, ``labels_`` (0 = largest cluster),
    ``twins_`` (``null.TwinReference``, or None for identical maps), ``suggested_n_clusters_``
    (the rule's count, also when ``n_clusters`` overrides it),
    ``embedding_`` {"tsne": (N, 2), "umap": (N, 2)}, ``clusters_`` (DataFrame of
    ``descriptors``), ``prototypes_`` (K, G, G), ``params_`` (every resolved value, for
    provenance) and ``timings_`` (CPU s, wall s, peak RSS per stage).
    ``stability(maps)`` adds ``stability_``.
    """

    def __init__(
        self,
        grid: int | None = pooling.GRID_DEFAULT,
        k: int | None = None,
        knn_log_base: float = knn.KNN_LOG_BASE_DEFAULT,
        knn_method: knn.KnnMethod = "auto",
        symmetrize: affinity_module.Symmetrize = affinity_module.SYMMETRIZE_DEFAULT,
        edge_weight: affinity_module.EdgeWeight = affinity_module.EDGE_WEIGHT_DEFAULT,
        laplacian: LaplacianKind = LAPLACIAN_DEFAULT,
        n_eigenvalues: int = spectrum.N_EIGENVALUES_DEFAULT,
        n_clusters: int | None = None,
        max_clusters: int = spectrum.MAX_CLUSTERS_DEFAULT,
        min_clusters: int = 1,
        n_clusters_rule: Literal["significant-gap", "largest-gap"] = "significant-gap",
        n_twins: int = null.N_TWINS_DEFAULT,
        clusterer: clustering.Clusterer = clustering.CLUSTERER_DEFAULT,
        n_init: int = clustering.N_INIT_DEFAULT,
        embeddings: tuple[str, ...] = embedding.EMBEDDINGS_DEFAULT,
        tsne_input: str = "graph",
        normalize: pooling.Normalization = None,
        smooth_sigma: float | None = None,
        fft: bool = False,
        random_state: int | None = 0,
        n_jobs: int = 1,
    ) -> None:
        self.grid = grid
        self.k = k
        self.knn_log_base = knn_log_base
        self.knn_method = knn_method
        self.symmetrize = symmetrize
        self.edge_weight = edge_weight
        self.laplacian = laplacian
        self.n_eigenvalues = n_eigenvalues
        self.n_clusters = n_clusters
        self.max_clusters = max_clusters
        self.min_clusters = min_clusters
        self.n_clusters_rule = n_clusters_rule
        self.n_twins = n_twins
        self.clusterer = clusterer
        self.n_init = n_init
        self.embeddings = embeddings
        self.tsne_input = tsne_input
        self.normalize = normalize
        self.smooth_sigma = smooth_sigma
        self.fft = fft
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, maps: np.ndarray, y: object = None) -> SpectralRelevanceAnalysis:
        """Run the whole analysis on (N, H, W) relevance maps of one class (or pooled features, ``grid=None``)."""
        self.timings_: dict[str, dict[str, float]] = {}
        maps = check_maps(maps, self.grid)
        if self.fft and self.grid is None and maps.ndim == 2:
            raise AnalysisInputError("fft=True needs maps of shape (N, G, G), got flat features; pass the 2-D maps.")
        if self.n_clusters_rule not in ("significant-gap", "largest-gap"):
            raise AnalysisInputError(
                f"n_clusters_rule={self.n_clusters_rule!r} is unknown; choose 'significant-gap' or 'largest-gap'."
            )
        if self.n_twins < 2:
            raise AnalysisInputError(f"n_twins={self.n_twins} gives no spread of chance; use at least 2 twins.")
        unknown = set(self.embeddings) - {"tsne", "umap"}
        if unknown:
            raise AnalysisInputError(f"unknown embeddings {sorted(unknown)}; choose from 'tsne' and 'umap'.")
        n = len(maps)
        with stage(self.timings_, "pool"):
            self.features_, self.pooled_ = pooling.preprocess(
                maps, self.grid, self.smooth_sigma, self.fft, self.normalize
            )
        degenerate = warn_if_degenerate(self.features_)
        self.k_ = check_k(self.k if self.k is not None else knn.default_k(n, self.knn_log_base), n)
        with stage(self.timings_, "knn"):
            self.neighbors_ = knn.knn(self.features_, self.k_, self.knn_method, self.random_state, n_jobs=self.n_jobs)
        with stage(self.timings_, "laplacian"):
            self.affinity_ = affinity_module.knn_affinity(self.neighbors_, self.symmetrize, self.edge_weight)
        with stage(self.timings_, "eigen"):
            solved = spectrum.smallest_eigenpairs(self.affinity_, self.n_eigenvalues, self.laplacian, self.random_state)
        self.eigenvalues_, self.eigenvectors_ = solved.eigenvalues, solved.eigenvectors
        self.eigengap_ = solved.eigengap
        self.n_components_ = solved.n_components
        self.twins_ = None
        if not degenerate:
            with stage(self.timings_, "twins"):
                self.twins_ = null.twin_reference(
                    self.features_,
                    self.k_,
                    self.n_twins,
                    self.symmetrize,
                    self.edge_weight,
                    self.laplacian,
                    self.knn_method,
                    self.random_state,
                )
        self.n_clusters_ = self._resolve_n_clusters(degenerate)
        with stage(self.timings_, "cluster"):
            self.labels_ = clustering.cluster_spectral_embedding(
                self.eigenvectors_, self.n_clusters_, self.clusterer, self.random_state, self.n_init
            )
        self.embedding_ = self._embed(degenerate)
        with stage(self.timings_, "describe"):
            described, self.prototypes_ = describe_clusters(self.pooled_, self.features_, self.labels_, self.affinity_)
            spatial = self.pooled_ if self.pooled_ is not None else self.features_
            self.clusters_ = score_clusters(
                described, self.labels_, spatial, self.affinity_, self.twins_, self.random_state
            )
        self.params_ = self._resolved_params(n)
        return self

    def fit_predict(self, maps: np.ndarray, y: object = None) -> np.ndarray:
        """``fit(maps)`` and return ``labels_``."""
        return self.fit(maps).labels_

    def stability(self, maps: np.ndarray, mode: str = "full") -> pd.DataFrame:
        """Agreement (ARI) of ``labels_`` with refits at other grid sizes and nearby k (L2100, L2188);
        ``mode`` "full" (7 refits) or "quick" (2, see ``stability.stability_variants``).

        Sets and returns ``stability_``; needs a previous ``fit`` on the same maps.
        """
        from spray.analysis.stability import label_stability

        self.stability_ = label_stability(self, maps, mode)
        return self.stability_

    def _resolve_n_clusters(self, degenerate: bool) -> int:
        if degenerate:
            self.suggested_n_clusters_ = 1
            return 1
        if self.n_clusters_rule == "largest-gap":
            self.suggested_n_clusters_ = spectrum.auto_n_clusters(
                self.eigenvalues_, self.max_clusters, self.min_clusters
            )
        else:
            assert self.twins_ is not None  # fitted for every sample that is not degenerate
            self.suggested_n_clusters_ = spectrum.significant_n_clusters(
                self.eigenvalues_, self.twins_.eigenvalues, self.max_clusters, self.min_clusters
            )
        if self.n_clusters is None:
            return self.suggested_n_clusters_
        if not 1 <= self.n_clusters <= len(self.eigenvalues_):
            raise AnalysisInputError(
                f"n_clusters={self.n_clusters} must lie between 1 and the {len(self.eigenvalues_)} computed "
                "eigenvectors; lower n_clusters or raise n_eigenvalues."
            )
        return int(self.n_clusters)

    def _embed(self, degenerate: bool) -> dict[str, np.ndarray]:
        n = len(self.features_)
        if degenerate:  # identical samples have no layout; they all sit at the origin
            return {name: np.zeros((n, 2)) for name in self.embeddings}
        layout = embedding.spectral_layout(self.eigenvectors_)
        result = {}
        if "tsne" in self.embeddings:
            with stage(self.timings_, "tsne"):
                result["tsne"] = (
                    embedding.tsne_on_features(self.features_, self.random_state, n_jobs=self.n_jobs)
                    if self.tsne_input == "features"
                    else embedding.tsne_embedding(self.affinity_, layout, self.random_state, n_jobs=self.n_jobs)
                )
        if "umap" in self.embeddings:
            with stage(self.timings_, "umap"):
                result["umap"] = embedding.umap_embedding(self.features_, self.neighbors_, layout, self.random_state)
        return result

    def _resolved_params(self, n: int) -> dict[str, object]:
        params = self.get_params()
        params.update(
            n_samples=n,
            n_features=self.features_.shape[1],
            k=self.k_,
            k_rule="given" if self.k is not None else f"max(2, ceil(log_{self.knn_log_base:g}(n)))",
            knn_method="exact" if self.neighbors_.exact else "approximate",
            n_eigenvalues=len(self.eigenvalues_),
            n_clusters=self.n_clusters_,
            n_clusters_rule="given" if self.n_clusters is not None else self.n_clusters_rule,
            gap_rule=f"ratio >= {spectrum.MIN_GAP_RATIO:g} and {spectrum.GAP_Z:g} twin sd above the twins' gap"
            if self.n_clusters_rule == "significant-gap"
            else f"argmax of gaps {self.min_clusters}..{self.max_clusters}",
            twin_conductance=None if self.twins_ is None else self.twins_.conductance,
            n_components=self.n_components_,
            tsne_perplexity=embedding.TSNE_PERPLEXITY,
            tsne_early_exaggeration=embedding.TSNE_EARLY_EXAGGERATION,
            dist_epsilon=embedding.DIST_EPSILON,
            embeddings=list(self.embeddings),
        )
        return params
