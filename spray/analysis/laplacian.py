"""Graph Laplacians of the affinity W (Eq. 6.2, L2076-L2080).

Isolated nodes (degree 0) get a zero row and column in every Laplacian: they are their own
connected component, so they contribute one zero eigenvalue like any other component (L2087),
and no 1/0 ever produces a NaN.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp

LaplacianKind = Literal["unnormalized", "sym", "rw"]

LAPLACIAN_DEFAULT: LaplacianKind = "sym"
"""L_sym = I - D^-1/2 W D^-1/2 (Ng et al.), used throughout Sec. 6.3 so classes of different n compare (L2100)."""


def degrees(affinity: sp.spmatrix) -> np.ndarray:
    """d_i = sum_j w_ij (L2078)."""
    return np.asarray(affinity.sum(axis=1)).ravel()


def inverse_sqrt_degrees(affinity: sp.spmatrix) -> np.ndarray:
    """d_i^-1/2, and 0 for isolated nodes."""
    d = degrees(affinity)
    return np.divide(1.0, np.sqrt(d), out=np.zeros_like(d), where=d > 0)


def normalized_adjacency(affinity: sp.spmatrix) -> sp.csr_matrix:
    """D^-1/2 W D^-1/2, whose largest eigenpairs are the smallest of L_sym = I - (this)."""
    scale = sp.diags(inverse_sqrt_degrees(affinity))
    return sp.csr_matrix(scale @ affinity @ scale)


def laplacian(affinity: sp.spmatrix, kind: LaplacianKind = LAPLACIAN_DEFAULT) -> sp.csr_matrix:
    """L = D - W, L_sym = I - D^-1/2 W D^-1/2 (default, L2100) or L_rw = I - D^-1 W, as sparse CSR."""
    d = degrees(affinity)
    connected = sp.diags((d > 0).astype(np.float64))
    if kind == "unnormalized":
        return sp.csr_matrix(sp.diags(d) - affinity)
    if kind == "sym":
        return sp.csr_matrix(connected - normalized_adjacency(affinity))
    if kind == "rw":
        inverse = np.divide(1.0, d, out=np.zeros_like(d), where=d > 0)
        return sp.csr_matrix(connected - sp.diags(inverse) @ affinity)
    raise ValueError(f"laplacian must be 'unnormalized', 'sym' or 'rw', not {kind!r}")
