"""The smallest eigenpairs of a graph Laplacian, with exact zeros for every connected component.

Lanczos (``eigsh(which='LA')``) runs on the *top* end of B = s I - L, which costs ~O(nnz) per
step (2 / 25 / 170 CPU-s for 32 pairs at 10k / 100k / 1M, ARCHITECTURE.md); shift-invert
factorises L and is never used. Lanczos can miss repeated eigenvalues, so the null space is
not left to it: the connected components are found first, each one gets its exact zero
eigenvalue with its indicator eigenvector (D^1/2 1_c normalised for L_sym, L2087), and Lanczos
runs on B deflated by those vectors. Small graphs use a dense ``eigh`` of the same deflated B.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import LinearOperator, eigsh

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
    """The i in min_clusters..max_clusters whose following gap |lambda_{i+1} - lambda_i| is largest (SPEC §1.5).

    Caveat from the toy calibration (SPEC §1.10): on blurry spectra the argmax can land on
    later gaps, so the full gap vector is always reported and ``n_clusters`` overrides this.
    ``min_clusters=2`` skips the first gap, lambda_2 - 0, which on a connected graph is often
    the largest even when small clusters hang off it (the thesis's horse reading, L2102).
    """
    gaps = eigengap(eigenvalues)[:max_clusters]
    first = min(max(1, min_clusters), len(gaps)) - 1
    return int(np.argmax(gaps[first:])) + first + 1 if len(gaps) else 1


def null_space(affinity: sp.spmatrix, component_labels: np.ndarray, n_components: int, kind: LaplacianKind) -> sp.csc_matrix:
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
    solved_kind = "unnormalized" if kind == "unnormalized" else "sym"  # L_rw is solved through L_sym
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
        operator = LinearOperator(
            (n, n), matvec=lambda x: top @ x - deflate * (zeros @ (zeros.T @ x)), dtype=np.float64
        )
        v0 = np.random.default_rng(random_state).standard_normal(n)
        ncv = min(n, max(2 * n_rest + 1, n_rest + 32))
        values, vectors = eigsh(operator, k=n_rest, which="LA", v0=v0, ncv=ncv, tol=0)
        order = np.argsort(-values)
        values, vectors = values[order], vectors[:, order]

    eigenvalues = np.concatenate([np.zeros(n_zero), np.maximum(shift - values, 0.0)])
    eigenvectors = np.hstack([zeros[:, :n_zero].toarray(), vectors])
    if kind == "rw":  # L_rw v = lambda v  <=>  L_sym (D^1/2 v) = lambda (D^1/2 v)
        d = degrees(affinity)
        eigenvectors = eigenvectors * np.divide(1.0, np.sqrt(d), out=np.ones_like(d), where=d > 0)[:, None]
        eigenvectors /= np.linalg.norm(eigenvectors, axis=0, keepdims=True)
    return Spectrum(eigenvalues, eigenvectors, int(n_components), labels)
