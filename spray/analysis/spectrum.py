"""The smallest eigenpairs of a graph Laplacian, with exact zeros for every connected component.

Lanczos runs on the *top* end of B = s I - L, which costs ~O(nnz) per step: with partial
reorthogonalisation while its basis fits in memory (``lanczos``, 0.3-0.6 CPU-s for 32 pairs at
10k), else ARPACK's ``eigsh(which='LA')`` (25 / 170 CPU-s at 100k / 1M, ARCHITECTURE.md);
shift-invert factorises L and is never used. Lanczos can miss repeated eigenvalues, so the
null space is not left to it: the connected components are found first, each one gets its
exact zero eigenvalue with its indicator eigenvector (D^1/2 1_c normalised for L_sym, L2087),
and Lanczos runs on B deflated by (orthogonal to) those vectors. Small graphs use a dense ``eigh`` of the same deflated B.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import LinearOperator, eigsh

from spray.analysis import lanczos
from spray.analysis.laplacian import LAPLACIAN_DEFAULT, LaplacianKind, degrees, laplacian

N_EIGENVALUES_DEFAULT = 32
"""Eigenpairs kept: >= 20 per class are reported (Fig. 6.3, L2096, L2595), 5 for ranking (L2117)."""

MAX_CLUSTERS_DEFAULT = 10
"""Automatic cluster count = argmax of the first 10 eigengaps (SPEC §1.5; the thesis chooses by eye)."""

DENSE_MAX_N = 1000
"""Graphs up to this many nodes are solved with a dense ``eigh`` (exact, < 1 s)."""


@dataclass(frozen=True)
class Spectrum:
    """Smallest eigenvalues (ascending) and eigenvectors of a Laplacian, and the graph's components."""

    eigenvalues: np.ndarray  # (m,)
    eigenvectors: np.ndarray  # (N, m), orthonormal columns (D-orthogonal for L_rw)
    n_components: int
    component_labels: np.ndarray  # (N,)

    @property
    def eigengap(self) -> np.ndarray:
        """|lambda_{i+1} - lambda_i| for i = 1..m-1 (L2087)."""
        return eigengap(self.eigenvalues)


def eigengap(eigenvalues: np.ndarray) -> np.ndarray:
    """|lambda_{i+1} - lambda_i| (L2087); entry i-1 is the gap after the i-th eigenvalue."""
    return np.abs(np.diff(eigenvalues))


def auto_n_clusters(eigenvalues: np.ndarray, max_clusters: int = MAX_CLUSTERS_DEFAULT, min_clusters: int = 1) -> int:
    """The thesis-style rule ("largest-gap"): the i in min_clusters..max_clusters whose following
    gap |lambda_{i+1} - lambda_i| is largest (SPEC §1.5).

    Caveat from the toy calibration (SPEC §1.10): on blurry spectra the argmax can land on
    later gaps, so the full gap vector is always reported and ``n_clusters`` overrides this.
    ``min_clusters=2`` skips the first gap, lambda_2 - 0, which on a connected graph is often
    the largest even when small clusters hang off it (the thesis's horse reading, L2102); it
    then lands on late, tiny gaps in classes without groups (9-10 clusters for the demo's car,
    cat and dog), which is why ``significant_n_clusters`` is the default.
    """
    gaps = eigengap(eigenvalues)[:max_clusters]
    first = min(max(1, min_clusters), len(gaps)) - 1
    return int(np.argmax(gaps[first:])) + first + 1 if len(gaps) else 1


ZERO_EIGENVALUE = 1e-9
"""Eigenvalues below this are exact zeros, one per connected component (L2087, SPEC §1.10)."""

MIN_GAP_RATIO = 1.5
"""A gap counts only if lambda_{i+1} >= 1.5 lambda_i. Real classes without groups show gaps the
Gaussian twins lack but that are small in relative terms (lambda_{i+1} / lambda_i of 1.2-1.3 at
gaps 6-9 in the demo's car and bird, at 3+ twin standard deviations); a group that hangs off the
class shows a ratio of 5 or more (demo horse: 0.168 / 0.030) or an exact zero (Fashion-MNIST
artefacts), and the Fig. 6.2 toy at sigma = 0.4 about 2.2 (SPEC §1.10)."""

GAP_Z = 3.0
"""... and only if its log ratio exceeds the twins' mean log ratio by 3 twin standard deviations:
with up to 9 gaps looked at, a class without groups that behaves like its twins gets a spurious
count in about 1 % of classes (9 one-sided normal tails of 0.13 %)."""

MIN_TWIN_EXCESS = 1.3
"""... and only if it is at least 1.3 times the twins' mean ratio. The twins vary so little at large
n (log-ratio sd ~0.03 at 1000 maps) that 3 sd can be a 10 % excess: a class whose maps vary
smoothly (an object moving about) then showed its first step (ratio 1.8-2.0 against the twins'
1.5-1.7) as "4 clusters" in 12 of 40 synthetic classes of 1000 maps; with 1.3, in 0."""

MIN_TWIN_SPREAD = 0.05
"""Floor of the twins' standard deviation of a log gap ratio (10 twins can by chance agree closely)."""


def log_gap_ratios(eigenvalues: np.ndarray) -> np.ndarray:
    """log(lambda_{i+1} / lambda_i) for i = 1..m-1 (entry i-1 is the gap after lambda_i).

    Exact zeros: a gap from a zero to a positive eigenvalue is +inf (the end of the connected
    components, L2087), a gap between two zeros is 0.
    """
    values = np.asarray(eigenvalues, dtype=np.float64)
    zero = values <= ZERO_EIGENVALUE
    low, high = values[:-1], values[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.log(np.where(zero[1:], 1.0, high) / np.where(zero[:-1], 1.0, low))
    ratios[zero[:-1] & ~zero[1:]] = np.inf
    ratios[zero[:-1] & zero[1:]] = 0.0
    return ratios


def significant_n_clusters(
    eigenvalues: np.ndarray,
    twin_eigenvalues: np.ndarray,
    max_clusters: int = MAX_CLUSTERS_DEFAULT,
    min_clusters: int = 1,
    min_gap_ratio: float = MIN_GAP_RATIO,
    gap_z: float = GAP_Z,
    min_twin_excess: float = MIN_TWIN_EXCESS,
) -> int:
    """The default rule ("significant-gap"): among the significant gaps after lambda_i, i in
    2..max_clusters, the i of the largest ratio lambda_{i+1} / lambda_i; 1 if none is
    significant (at least ``min_clusters``).

    A gap is significant when lambda_{i+1} / lambda_i >= ``min_gap_ratio`` and its log ratio
    exceeds the mean log ratio of the same gap in the class's structureless twins
    (``twin_eigenvalues``, (n_twins, m'), from ``null.twin_reference``) by ``gap_z`` twin standard
    deviations and by log(``min_twin_excess``). Gaps are compared as ratios because the eigenvalues of a kNN graph without
    groups rise like i^(2/d) (d: the data's intrinsic dimension), so the twins, which share
    the class's covariance, set what a chance gap is. A graph of c components has c exact zeros
    (L2087) and an infinite ratio after them, so c clusters at least. The thesis picks the
    count by eye (L2087, L2102); ``auto_n_clusters`` keeps the largest-gap reading. Taking the
    largest significant ratio, not the last significant gap, keeps a class whose maps vary
    smoothly (an object that moves: its spectrum rises in steps of about 1.5) from being cut
    into its harmonics when a real group sits in front of them.
    """
    observed = log_gap_ratios(eigenvalues)[:max_clusters]
    twins = np.full((len(np.atleast_2d(twin_eigenvalues)), len(observed)), np.nan)
    for row, spectrum in zip(twins, np.atleast_2d(twin_eigenvalues), strict=True):
        ratios = log_gap_ratios(spectrum)[: len(observed)]
        row[: len(ratios)] = np.where(np.isfinite(ratios), ratios, np.nan)  # a twin in pieces says nothing
    counts = np.isfinite(twins).sum(axis=0)
    mean = np.divide(np.nansum(twins, axis=0), counts, out=np.zeros(len(observed)), where=counts > 0)
    squares = np.nansum((twins - mean) ** 2, axis=0)
    spread = np.sqrt(np.divide(squares, counts - 1, out=np.zeros(len(observed)), where=counts > 1))
    spread = np.maximum(spread, MIN_TWIN_SPREAD)
    margin = np.maximum(gap_z * spread, np.log(min_twin_excess))
    significant = (observed >= np.log(min_gap_ratio)) & (observed - mean >= margin)
    significant[:1] = False  # lambda_2 / lambda_1 is infinite for every graph: no evidence of groups
    chosen = int(np.argmax(np.where(significant, observed, -np.inf))) + 1 if significant.any() else 1
    return max(chosen, min(max(1, min_clusters), max_clusters))


def null_space(
    affinity: sp.spmatrix, component_labels: np.ndarray, n_components: int, kind: LaplacianKind
) -> sp.csc_matrix:
    """(N, c) orthonormal indicator eigenvectors of the zero eigenvalue, one per component, largest first.

    For L_sym the vector of component c is D^1/2 1_c / ||D^1/2 1_c||; for L and L_rw it is
    1_c / sqrt(|c|). An isolated node's vector is its unit vector either way.
    """
    n = affinity.shape[0]
    weight = np.sqrt(degrees(affinity)) if kind == "sym" else np.ones(n)
    weight = np.where(weight > 0, weight, 1.0)  # isolated node: 1_i, which L_sym maps to 0 too
    sizes = np.bincount(component_labels, minlength=n_components)
    rank_of_component = np.empty(n_components, dtype=np.int64)
    rank_of_component[np.argsort(-sizes, kind="stable")] = np.arange(n_components)
    column = rank_of_component[component_labels]
    norms = np.sqrt(np.bincount(column, weights=weight**2, minlength=n_components))
    return sp.csc_matrix((weight / norms[column], (np.arange(n), column)), shape=(n, n_components))


def smallest_eigenpairs(
    affinity: sp.spmatrix,
    n_eigenvalues: int = N_EIGENVALUES_DEFAULT,
    kind: LaplacianKind = LAPLACIAN_DEFAULT,
    random_state: int | None = 0,
    dense_max_n: int = DENSE_MAX_N,
) -> Spectrum:
    """The ``n_eigenvalues`` smallest eigenpairs of the Laplacian ``kind`` of ``affinity``, ascending."""
    n = affinity.shape[0]
    m = min(n_eigenvalues, n)
    n_components, labels = connected_components(affinity, directed=False)
    solved_kind: LaplacianKind = "unnormalized" if kind == "unnormalized" else "sym"  # L_rw is solved through L_sym
    zeros = null_space(affinity, labels, n_components, solved_kind)
    n_zero = min(n_components, m)
    n_rest = m - n_zero

    lap = laplacian(affinity, solved_kind)
    # B = s I - L has L's smallest eigenvalues at its top; s bounds lambda_max (2 d_max for L, 1 for L_sym
    # whose eigenvalues lie in [0, 2]). The null space is moved to s - (s + 3) = -3, below everything.
    shift = 2.0 * degrees(affinity).max() if kind == "unnormalized" else 1.0
    top = sp.csr_matrix(shift * sp.identity(n) - lap)
    deflate = shift + 3.0

    if n_rest == 0:
        values, vectors = np.zeros(0), np.zeros((n, 0))
    elif n <= dense_max_n or n_rest >= n - n_components - 1:
        dense = top.toarray() - deflate * (zeros @ zeros.T).toarray()
        all_values, all_vectors = np.linalg.eigh(dense)
        values, vectors = all_values[::-1][:n_rest], all_vectors[:, ::-1][:, :n_rest]
    else:
        rng = np.random.default_rng(random_state)
        solved = lanczos.top_eigenpairs(top, n_rest, lanczos.RowDisjointBasis(zeros), rng)
        if solved is None:  # the Lanczos basis would not fit in memory, or its Krylov space closed
            operator = LinearOperator(
                (n, n), matvec=lambda x: top @ x - deflate * (zeros @ (zeros.T @ x)), dtype=np.float64
            )
            ncv = min(n, max(2 * n_rest + 1, n_rest + 32))
            values, vectors = eigsh(operator, k=n_rest, which="LA", v0=rng.standard_normal(n), ncv=ncv, tol=0)
            order = np.argsort(-values)
            solved = values[order], vectors[:, order]
        values, vectors = solved

    eigenvalues = np.concatenate([np.zeros(n_zero), np.maximum(shift - values, 0.0)])
    eigenvectors = np.hstack([zeros[:, :n_zero].toarray(), vectors])
    if kind == "rw":  # L_rw v = lambda v  <=>  L_sym (D^1/2 v) = lambda (D^1/2 v)
        d = degrees(affinity)
        eigenvectors = eigenvectors * np.divide(1.0, np.sqrt(d), out=np.ones_like(d), where=d > 0)[:, None]
        eigenvectors /= np.linalg.norm(eigenvectors, axis=0, keepdims=True)
    return Spectrum(eigenvalues, eigenvectors, int(n_components), labels)
