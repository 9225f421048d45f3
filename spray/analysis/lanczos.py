"""The largest eigenpairs of a sparse symmetric matrix: Lanczos with partial reorthogonalisation.

ARPACK (``eigsh``) re-orthogonalises every new Lanczos vector against its whole basis and
restarts every ncv steps; on the flat spectra of kNN graphs (32 wanted eigenvalues within
~0.02 of each other and of the bulk) that costs ~1 ms a step at N = 10k, 5x the matrix-vector
product. Here the basis is never restarted and a new vector is re-orthogonalised only when
Simon's recurrence (H. D. Simon, "The Lanczos algorithm with partial reorthogonalization",
Math. Comp. 42, 1984) estimates that its overlap with an earlier one has grown past sqrt(eps):
about one step in 12 on those graphs. Semi-orthogonality (overlaps <= sqrt(eps)) keeps the
Ritz values as accurate as full reorthogonalisation would (Simon, Thm. 4); a final Rayleigh-Ritz
step on the orthonormalised Ritz vectors gives orthonormal eigenvectors and their eigenvalues.
At N = 10k and d = 400 (``benchmarks/corelay_peer.py``): 32 pairs in 0.6 instead of 1.0 CPU-s on
the isotropic mixture and 0.3 instead of 0.6 CPU-s on the correlated one, eigenvalues equal to
ARPACK's to 1e-14.

The basis is held whole (N x steps float64), so the method is used while it fits in
``MEMORY_BYTES``; ``top_eigenpairs`` returns None when it did not converge within that many
steps (or the Krylov space closed early), and the caller falls back to ARPACK.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
from scipy.linalg import eigh_tridiagonal

from spray.thread_pools import limit

EPS = float(np.finfo(np.float64).eps)

MEMORY_BYTES = 512 * 2**20
"""Largest Lanczos basis held (512 MB: 6500 steps at N = 10k, 650 at 100k)."""

RESIDUAL_TOL = 1e-9
"""Converged when every wanted Ritz pair has ||A y - theta y|| <= 1e-9 ||A||; the eigenvalue errors are then
below 1e-12 on the test graphs (dense ``eigh``: tests/test_analysis_spectrum.py)."""

MIN_STEPS_PER_PAIR = 8
"""Too small a basis to try: 32 pairs took 13-23 steps a pair at N = 10k (fewer steps fit above ~200k rows)."""

CHECK_EVERY = 20
"""Steps between convergence checks (the innermost wanted Ritz pair of the tridiagonal matrix: 0.5 ms at 600 steps)."""


class RowDisjointBasis:
    """Projection onto the complement of orthonormal columns with disjoint supports (one nonzero a row at most).

    The exact null space of a graph Laplacian has this form (one indicator vector per connected
    component, ``spectrum.null_space``), so projecting costs O(N) however many components there are.
    """

    def __init__(self, basis: sp.spmatrix) -> None:
        coo = sp.coo_matrix(basis)
        if np.bincount(coo.row, minlength=basis.shape[0]).max(initial=0) > 1:
            raise ValueError("RowDisjointBasis needs at most one nonzero per row")
        self.column = np.zeros(basis.shape[0], dtype=np.int64)  # rows without a nonzero: value 0
        self.value = np.zeros(basis.shape[0])
        self.column[coo.row], self.value[coo.row] = coo.col, coo.data
        self.size = basis.shape[1]

    def project_out(self, vector: np.ndarray) -> np.ndarray:
        """vector - Z (Z^T vector), in place."""
        if self.size:
            coefficients = np.bincount(self.column, weights=self.value * vector, minlength=self.size)
            vector -= self.value * coefficients[self.column]
        return vector


def top_eigenpairs(
    matrix: sp.spmatrix,
    m: int,
    exclude: RowDisjointBasis,
    rng: np.random.Generator,
    tol: float = RESIDUAL_TOL,
    max_steps: int | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The ``m`` largest eigenvalues (descending) and orthonormal eigenvectors of ``matrix`` on the
    complement of ``exclude``, or None when ``max_steps`` (default: what ``MEMORY_BYTES`` holds) did not suffice.
    """
    with limit(1, user_api="blas"):  # BLAS-2 on a basis in memory: a second thread only spins
        return _top_eigenpairs(matrix, m, exclude, rng, tol, max_steps)


def _top_eigenpairs(
    matrix: sp.spmatrix,
    m: int,
    exclude: RowDisjointBasis,
    rng: np.random.Generator,
    tol: float,
    max_steps: int | None,
) -> tuple[np.ndarray, np.ndarray] | None:
    n = matrix.shape[0]
    room = n - exclude.size
    steps = min(room, max_steps if max_steps is not None else MEMORY_BYTES // (8 * n) - 1)
    if m < 1 or steps < MIN_STEPS_PER_PAIR * m:
        return None
    basis = np.empty((steps + 1, n))  # Lanczos vectors as rows
    alpha, beta = np.zeros(steps), np.zeros(steps)
    vector = exclude.project_out(rng.standard_normal(n))
    basis[0] = vector / np.linalg.norm(vector)
    overlap_before, overlap = np.zeros(0), np.ones(1)  # Simon's estimates of |v_j . v_k|, k <= j
    rounding = math.sqrt(n) * EPS / 2
    norm_estimate = 0.0
    forced = False  # Simon: re-orthogonalise the vector after a re-orthogonalised one too
    for j in range(steps):
        w = matrix @ basis[j]
        if j:
            w -= beta[j - 1] * basis[j - 1]
        alpha[j] = basis[j] @ w
        w -= alpha[j] * basis[j]
        exclude.project_out(w)
        b = float(np.linalg.norm(w))
        norm_estimate = max(norm_estimate, math.hypot(alpha[j], b, beta[j - 1] if j else 0.0))
        estimate = _next_overlaps(alpha, beta, overlap, overlap_before, j, b, rounding * norm_estimate)
        if forced or np.abs(estimate[: j + 1]).max() > math.sqrt(EPS):
            w = _orthogonalise(w, basis[: j + 1])
            exclude.project_out(w)
            b = float(np.linalg.norm(w))
            estimate[: j + 1] = rounding
            forced = not forced
        if b <= EPS * max(norm_estimate, 1.0) * n:
            return None  # the Krylov space closed (an invariant subspace): ARPACK restarts for us
        beta[j] = b
        basis[j + 1] = w / b
        overlap_before, overlap = overlap, estimate
        if j + 1 >= m and ((j + 1) % CHECK_EVERY == 0 or j + 1 == steps):
            # the innermost wanted Ritz pair converges last: check it alone (0.5 ms), then all m (8 ms at 600 steps)
            limit = tol * max(norm_estimate, 1.0)
            innermost = eigh_tridiagonal(alpha[: j + 1], beta[:j], select="i", select_range=(j + 1 - m, j + 1 - m))[1]
            if abs(b * innermost[-1, 0]) <= limit:
                ritz = eigh_tridiagonal(alpha[: j + 1], beta[:j], select="i", select_range=(j + 1 - m, j))[1]
                if np.abs(b * ritz[-1]).max() <= limit:
                    return _rayleigh_ritz(matrix, ritz.T @ basis[: j + 1])
    return None


def _next_overlaps(
    alpha: np.ndarray,
    beta: np.ndarray,
    overlap: np.ndarray,
    overlap_before: np.ndarray,
    j: int,
    b: float,
    noise: float,
) -> np.ndarray:
    """Simon's recurrence: estimates of |v_{j+1} . v_k| for k <= j + 1 from those of v_j and v_{j-1}.

    b v_{j+1} = A v_j - alpha_j v_j - beta_{j-1} v_{j-1} and A v_k = beta_{k-1} v_{k-1} + alpha_k v_k
    + beta_k v_{k+1} give b w_{j+1,k} = beta_k w_{j,k+1} + (alpha_k - alpha_j) w_{j,k} + beta_{k-1} w_{j,k-1}
    - beta_{j-1} w_{j-1,k}; ``noise`` models the rounding of each step.
    """
    estimate = np.empty(j + 2)
    divisor = max(b, EPS)
    if j:
        k = np.arange(j)
        t = (alpha[:j] - alpha[j]) * overlap[:j] + beta[:j] * overlap[1 : j + 1] - beta[j - 1] * overlap_before[:j]
        t[1:] += beta[k[1:] - 1] * overlap[: j - 1]
        estimate[:j] = (t + np.copysign(noise, t)) / divisor
    estimate[j] = noise / divisor
    estimate[j + 1] = 1.0
    return estimate


def _orthogonalise(w: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """w minus its projection on the rows of ``basis``: classical Gram-Schmidt, repeated once if it cancelled."""
    for _ in range(2):
        before = np.linalg.norm(w)
        w = w - (basis @ w) @ basis
        if np.linalg.norm(w) > 0.7 * before:  # "twice is enough" (Kahan-Parlett)
            break
    return w


def _rayleigh_ritz(matrix: sp.spmatrix, ritz_vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormalise the Ritz vectors (rows) and diagonalise ``matrix`` on their span: descending pairs."""
    q, _ = np.linalg.qr(ritz_vectors.T)
    projected = q.T @ (matrix @ q)
    values, rotation = np.linalg.eigh((projected + projected.T) / 2)
    return values[::-1], (q @ rotation)[:, ::-1]
