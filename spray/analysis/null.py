"""The structureless twin of a class: what its spectrum and its clusters look like by chance [X].

A twin is a sample of the same size from a Gaussian with the class's mean and covariance: it has
the class's spread and its correlations between grid cells (hence about its intrinsic dimension,
which sets how fast a kNN graph's eigenvalues rise), but no groups. The twin goes through the
same kNN graph (same k, symmetrisation, edge weights), Laplacian and eigensolver as the class,
and its best two-way NJW split is taken. Twins are the chance reference of

- the cluster count (``spectrum.significant_n_clusters``): a gap in the class's spectrum counts
  only when it is larger than the same gap in the twins' spectra (gap significance against a
  null spectrum), and
- the separation of a cluster (``suspicion``): its conductance against the conductance of the
  twins' clusters (the cut a structureless class of the same shape allows).

This is the parametric-bootstrap null of SigClust (Liu, Hayes, Nobel & Marron 2008, "Statistical
significance of clustering for high-dimension, low-sample size data"), which compares a split
of the data with the splits of Gaussian samples of the same covariance; here the split is the
spectral one. It accounts for selection: the twins' clusters are also chosen by the clustering,
unlike random member sets, which every spectral cluster beats (a spectral cluster is chosen to
have a small cut). Cost per twin: one kNN search and ``N_TWIN_EIGENVALUES`` eigenpairs,
about 0.03 CPU-s at 200 samples and 3 CPU-s at 10 000 (d = 400); memory O(n d), like the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spray.analysis import affinity as affinity_module
from spray.analysis import knn as knn_module
from spray.analysis.clustering import cluster_spectral_embedding
from spray.analysis.descriptors import conductance
from spray.analysis.laplacian import LaplacianKind
from spray.analysis.spectrum import smallest_eigenpairs
from spray.thread_pools import limit

N_TWINS_DEFAULT = 10
"""Twins per class: the twins' gap ratios vary by about 0.05-0.1 (log scale), so ten give their mean
and spread to about a third of that; each costs one kNN search and a few eigenpairs."""

N_TWIN_EIGENVALUES = 12
"""Eigenvalues per twin: the gaps up to the 10th (``spectrum.MAX_CLUSTERS_DEFAULT``) and one more."""

TWIN_N_INIT = 3
"""k-means restarts for a twin's split (its conductance, not its exact labels, is used)."""

TWIN_DENSE_MAX_N = 300
"""Twins above this size use Lanczos for their few eigenpairs (a dense solve at 1000 costs 10x more)."""


@dataclass(frozen=True)
class TwinReference:
    """Spectra and split conductances of a class's structureless twins.

    ``eigenvalues`` (n_twins, m) ascending per twin; ``conductances`` (2 n_twins,) of the two
    clusters of each twin's NJW split.
    """

    eigenvalues: np.ndarray
    conductances: np.ndarray

    @property
    def conductance(self) -> float:
        """Mean conductance of the twins' clusters: the cut a structureless class of this shape allows."""
        return float(np.mean(self.conductances))


class TwinSampler:
    """Draws structureless twins of ``features``: Gaussian samples with the rows' mean and covariance.

    The covariance is factorised once from its d x d form (eigh), so each twin of n rows costs
    O(n d^2) time and O(n d) memory; directions of zero variance stay at the mean.
    """

    def __init__(self, features: np.ndarray) -> None:
        x = np.asarray(features, dtype=np.float64)
        self.n, self.dtype = len(x), np.asarray(features).dtype
        self.mean = x.mean(axis=0)
        centred = x - self.mean
        values, vectors = np.linalg.eigh(centred.T @ centred / max(self.n - 1, 1))
        self.basis = np.sqrt(np.clip(values, 0.0, None))[:, None] * vectors.T  # (d, d): scaled principal axes

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """One twin, (n, d) in the features' dtype."""
        noise = rng.standard_normal((self.n, len(self.basis)))
        return (self.mean + noise @ self.basis).astype(self.dtype, copy=False)


def twin_reference(
    features: np.ndarray,
    k: int,
    n_twins: int = N_TWINS_DEFAULT,
    symmetrize: affinity_module.Symmetrize = affinity_module.SYMMETRIZE_DEFAULT,
    edge_weight: affinity_module.EdgeWeight = affinity_module.EDGE_WEIGHT_DEFAULT,
    laplacian: LaplacianKind = "sym",
    knn_method: knn_module.KnnMethod = "auto",
    random_state: int | None = 0,
) -> TwinReference:
    """Run ``n_twins`` structureless twins of ``features`` through the class's graph and spectrum.

    BLAS runs single-threaded here: the twins' products are small, and extra OpenBLAS threads
    only spin (0.3 CPU-s for 10 twins of 200 maps with one thread, 6 CPU-s with two on a busy
    machine; the same effect as in ARCHITECTURE.md "Threads in the analysis").
    """
    with limit(1, user_api="blas"):
        return _twin_reference(features, k, n_twins, symmetrize, edge_weight, laplacian, knn_method, random_state)


def _twin_reference(
    features, k, n_twins, symmetrize, edge_weight, laplacian, knn_method, random_state
) -> TwinReference:
    rng = np.random.default_rng([0 if random_state is None else random_state, 62])
    sampler = TwinSampler(features)
    spectra, cuts = [], []
    for _ in range(n_twins):
        twin = sampler.draw(rng)
        graph = knn_module.knn(twin, k, knn_method, int(rng.integers(2**31)))
        w = affinity_module.knn_affinity(graph, symmetrize, edge_weight)
        solved = smallest_eigenpairs(
            w, min(N_TWIN_EIGENVALUES, len(twin)), laplacian, int(rng.integers(2**31)), dense_max_n=TWIN_DENSE_MAX_N
        )
        spectra.append(solved.eigenvalues)
        labels = cluster_spectral_embedding(
            solved.eigenvectors, 2, random_state=int(rng.integers(2**31)), n_init=TWIN_N_INIT
        )
        cuts += [conductance(w, labels, c) for c in (0, 1)]
    return TwinReference(np.vstack(spectra), np.asarray(cuts))
