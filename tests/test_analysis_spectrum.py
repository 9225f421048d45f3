"""Spectrum of the kNN graph: the Fig. 6.2 toy (SPEC §1.10), agreement with dense eigh, exact zeros."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from spray.analysis import SpectralRelevanceAnalysis
from spray.analysis.affinity import knn_affinity
from spray.analysis.knn import exact_knn
from spray.analysis.laplacian import laplacian
from spray.analysis.spectrum import smallest_eigenpairs


def toy_samples(sigma: float, n: int = 200, seed: int = 0) -> np.ndarray:
    """Fig. 6.2 (L2085): 1-D samples from 4 Gaussians at 2, 4, 6, 8 with a common sigma."""
    rng = np.random.default_rng(seed)
    return (rng.choice([2.0, 4.0, 6.0, 8.0], size=n) + sigma * rng.standard_normal(n))[:, None]


def toy_eigenvalues(sigma: float) -> np.ndarray:
    analysis = SpectralRelevanceAnalysis(grid=None, k=10, n_eigenvalues=10, embeddings=()).fit(toy_samples(sigma))
    return analysis.eigenvalues_


def test_fig_6_2_sigma_0_2_has_exactly_four_zero_eigenvalues_then_a_gap():
    eigenvalues = toy_eigenvalues(0.2)
    assert (eigenvalues < 1e-9).sum() == 4
    assert eigenvalues[4] > 1e-3
    assert np.all(np.diff(eigenvalues) >= 0)


def test_fig_6_2_zeros_fall_and_lambda_4_rises_as_sigma_grows():
    spectra = [toy_eigenvalues(s) for s in (0.2, 0.4, 0.8)]
    zeros = [(e < 1e-9).sum() for e in spectra]
    assert zeros[0] > zeros[1] >= zeros[2]
    assert spectra[0][3] < spectra[1][3] < spectra[2][3]


def mixture_affinity(n: int, seed: int = 0, k: int = 7) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 5))
    x[: n // 2] += 3.0
    return knn_affinity(exact_knn(x, k))


@pytest.mark.parametrize("kind", ["sym", "unnormalized", "rw"])
def test_lanczos_eigenvalues_equal_dense_eigh_at_n_1000(kind):
    affinity = mixture_affinity(1000)
    solved = smallest_eigenpairs(affinity, 32, kind=kind, dense_max_n=0)  # force the Lanczos path
    dense = laplacian(affinity, kind).toarray()
    # L_rw is similar to L_sym (same eigenvalues); its own eigen-equation is checked by the residual
    reference = np.linalg.eigh(laplacian(affinity, "sym" if kind == "rw" else kind).toarray())[0][:32]
    np.testing.assert_allclose(solved.eigenvalues, reference, atol=1e-8, rtol=0)
    residual = dense @ solved.eigenvectors - solved.eigenvectors * solved.eigenvalues
    assert np.abs(residual).max() < 1e-7


@pytest.mark.parametrize(("per_component", "dense_max_n"), [(300, 0), (60, 10_000)])  # Lanczos, dense
def test_graph_with_c_components_has_exactly_c_zero_eigenvalues(per_component, dense_max_n):
    rng = np.random.default_rng(1)
    centres = 100.0 * np.arange(5)[:, None] * np.ones((1, 3))
    x = np.concatenate([c + rng.standard_normal((per_component, 3)) for c in centres])
    solved = smallest_eigenpairs(knn_affinity(exact_knn(x, 6)), 12, dense_max_n=dense_max_n)
    assert solved.n_components == 5
    assert (solved.eigenvalues == 0).sum() == 5
    assert solved.eigenvalues[5] > 1e-6
    # each zero eigenvector lives on one component (D^1/2 1_c, L2087)
    for column in range(5):
        support = np.flatnonzero(solved.eigenvectors[:, column])
        assert len(np.unique(solved.component_labels[support])) == 1


def test_isolated_node_gives_a_zero_eigenvalue_and_no_nan():
    affinity = sp.lil_matrix((6, 6))
    for i, j in [(0, 1), (1, 2), (2, 0), (3, 4), (4, 3)]:
        affinity[i, j] = affinity[j, i] = 1.0
    affinity = sp.csr_matrix(affinity)  # node 5 is isolated
    for kind in ("sym", "unnormalized", "rw"):
        assert np.isfinite(laplacian(affinity, kind).toarray()).all()
    solved = smallest_eigenpairs(affinity, 5)
    assert solved.n_components == 3
    np.testing.assert_array_equal(solved.eigenvalues[:3], 0.0)
    assert np.isfinite(solved.eigenvectors).all()


def test_min_clusters_skips_the_first_gap_but_keeps_the_largest_later_one():
    from spray.analysis.spectrum import auto_n_clusters

    eigenvalues = np.array([0.0, 0.30, 0.32, 0.50, 0.52, 0.55])  # gaps 0.30, 0.02, 0.18, 0.02, 0.03
    assert auto_n_clusters(eigenvalues) == 1
    assert auto_n_clusters(eigenvalues, min_clusters=2) == 3
    assert auto_n_clusters(eigenvalues, max_clusters=2, min_clusters=2) == 2


def toy_counts(sigma: float, seeds: range, rule: str = "significant-gap") -> list[int]:
    counts = []
    for seed in seeds:
        analysis = SpectralRelevanceAnalysis(grid=None, k=10, embeddings=(), n_clusters_rule=rule, random_state=seed)
        counts.append(analysis.fit(toy_samples(sigma, seed=seed)).n_clusters_)
    return counts


def test_fig_6_2_default_count_is_four_at_sigma_0_2_and_one_without_a_gap():
    """The significant-gap rule reads the toy as the thesis does (L2089): four clusters at sigma=0.2,
    none at 0.8, in between at 0.4; the largest-gap argmax lands on later gaps (SPEC §1.10)."""
    seeds = range(5)
    sharp, blurred, flat = toy_counts(0.2, seeds), toy_counts(0.4, seeds), toy_counts(0.8, seeds)
    assert sharp == [4] * 5
    assert flat == [1] * 5
    assert np.mean(sharp) > np.mean(blurred) > np.mean(flat)
    assert min(toy_counts(0.2, seeds, "largest-gap")) > 4
