"""Lanczos with partial reorthogonalisation against dense eigh and ARPACK: same eigenpairs, exact zeros kept."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from spray.analysis import lanczos
from spray.analysis.affinity import knn_affinity
from spray.analysis.knn import exact_knn
from spray.analysis.laplacian import laplacian
from spray.analysis.spectrum import null_space, smallest_eigenpairs


def mixture_affinity(n: int, d: int = 5, seed: int = 0, k: int = 7) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    x[: n // 3] += 4.0
    return knn_affinity(exact_knn(x, k))


def test_row_disjoint_basis_projects_like_the_dense_null_space():
    affinity = sp.block_diag(
        [mixture_affinity(50, seed=1), mixture_affinity(70, seed=2), sp.csr_matrix((1, 1))]
    ).tocsr()
    n_components, labels = connected_components(affinity, directed=False)
    zeros = null_space(affinity, labels, n_components, "sym")
    vector = np.random.default_rng(0).standard_normal(affinity.shape[0])
    dense = zeros.toarray()
    expected = vector - dense @ (dense.T @ vector)
    np.testing.assert_allclose(lanczos.RowDisjointBasis(zeros).project_out(vector.copy()), expected, atol=1e-14)


def test_partial_reorthogonalisation_is_used_and_matches_dense_eigh():
    """At n = 1500 the Lanczos path (not ARPACK) solves, to 1e-10 of dense eigh, with orthonormal vectors."""
    affinity = mixture_affinity(1500)
    n_components, labels = connected_components(affinity, directed=False)
    top = sp.identity(1500) - laplacian(affinity, "sym")
    basis = lanczos.RowDisjointBasis(null_space(affinity, labels, n_components, "sym"))
    solved = lanczos.top_eigenpairs(top.tocsr(), 30, basis, np.random.default_rng(0))
    assert solved is not None
    values, vectors = solved
    dense = np.linalg.eigvalsh(laplacian(affinity, "sym").toarray())[n_components : n_components + 30]
    np.testing.assert_allclose(1.0 - values, dense, atol=1e-10, rtol=0)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(30), atol=1e-12)
    assert np.abs(top @ vectors - vectors * values).max() < 1e-8


def test_repeated_eigenvalues_of_identical_components_are_all_found():
    """Three copies of one graph: every nonzero eigenvalue is triple, and all copies are returned."""
    one = mixture_affinity(400, seed=3)
    affinity = sp.block_diag([one, one, one]).tocsr()
    solved = smallest_eigenpairs(affinity, 24, dense_max_n=0)
    dense = np.linalg.eigvalsh(laplacian(affinity, "sym").toarray())[:24]
    nonzero = dense[solved.n_components :]
    assert (
        solved.n_components % 3 == 0 and np.ptp(nonzero[: len(nonzero) // 3 * 3].reshape(-1, 3), axis=1).max() < 1e-12
    )
    np.testing.assert_allclose(solved.eigenvalues, dense, atol=1e-10, rtol=0)
    assert (solved.eigenvalues == 0).sum() == solved.n_components


@pytest.mark.parametrize("kind", ["sym", "unnormalized"])
def test_arpack_fallback_when_the_basis_does_not_fit_gives_the_same_spectrum(kind, monkeypatch):
    affinity = mixture_affinity(1200, seed=4)
    ours = smallest_eigenpairs(affinity, 20, kind=kind, dense_max_n=0)
    monkeypatch.setattr(lanczos, "MEMORY_BYTES", 8 * 1200 * 20)  # room for 19 steps: ARPACK solves
    calls = []
    original = lanczos.top_eigenpairs
    monkeypatch.setattr(lanczos, "top_eigenpairs", lambda *a, **k: calls.append(original(*a, **k)) or calls[-1])
    fallback = smallest_eigenpairs(affinity, 20, kind=kind, dense_max_n=0)
    assert calls == [None]
    np.testing.assert_allclose(ours.eigenvalues, fallback.eigenvalues, atol=1e-10 * max(1.0, ours.eigenvalues.max()))
