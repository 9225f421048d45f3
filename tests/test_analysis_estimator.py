"""The public estimator: agreement with scikit-learn, seeds, bad input, descriptors, stability, ranking."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.cluster import SpectralClustering
from sklearn.metrics import adjusted_rand_score

import spray
from spray.analysis import DegenerateMapsWarning, SpectralRelevanceAnalysis, rank_classes
from spray.errors import AnalysisInputError


def blobs(n_per: int = 200, n_blobs: int = 3, d: int = 10, separation: float = 4.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = separation * rng.standard_normal((n_blobs, d))
    labels = np.repeat(np.arange(n_blobs), n_per)
    return centres[labels] + rng.standard_normal((len(labels), d)), labels


def test_public_entry_point_is_the_estimator():
    assert spray.SpectralRelevanceAnalysis is SpectralRelevanceAnalysis


def test_init_does_no_work_and_get_params_round_trips():
    analysis = SpectralRelevanceAnalysis(grid=10, k=7)
    assert analysis.get_params()["grid"] == 10 and analysis.get_params()["k"] == 7
    assert not hasattr(analysis, "labels_")


def test_fit_sets_the_documented_attributes_with_defaults_from_spec():
    x, _ = blobs()
    analysis = SpectralRelevanceAnalysis(grid=None, embeddings=()).fit(x)
    n = len(x)
    assert analysis.k_ == max(2, int(np.ceil(np.log(n))))  # L2100, SPEC §1.3
    assert sp.issparse(analysis.affinity_) and analysis.affinity_.shape == (n, n)
    assert (analysis.affinity_ != analysis.affinity_.T).nnz == 0
    assert len(analysis.eigenvalues_) == 32 and np.all(np.diff(analysis.eigenvalues_) >= 0)
    np.testing.assert_allclose(analysis.eigengap_, np.abs(np.diff(analysis.eigenvalues_)))
    assert analysis.eigenvectors_.shape == (n, 32)
    assert analysis.n_clusters_ == 3 and analysis.labels_.shape == (n,)
    assert isinstance(analysis.clusters_, pd.DataFrame) and len(analysis.clusters_) == 3
    assert analysis.params_["k"] == analysis.k_ and analysis.params_["knn_method"] == "exact"
    assert analysis.params_["tsne_perplexity"] == 7 and analysis.params_["tsne_early_exaggeration"] == 6


def test_njw_labels_agree_with_sklearn_spectral_clustering_on_the_same_graph():
    x, planted = blobs(separation=1.5)  # close enough that the kNN graph is one connected component
    ours = SpectralRelevanceAnalysis(grid=None, n_clusters=3, embeddings=()).fit(x)
    assert ours.n_components_ == 1
    theirs = SpectralClustering(n_clusters=3, affinity="precomputed", random_state=0).fit(ours.affinity_)
    assert adjusted_rand_score(ours.labels_, theirs.labels_) >= 0.99
    assert adjusted_rand_score(ours.labels_, planted) >= 0.95


def test_n_clusters_override_and_labels_ordered_by_size():
    x, _ = blobs(n_per=100, n_blobs=4)
    analysis = SpectralRelevanceAnalysis(grid=None, n_clusters=2, embeddings=()).fit(x)
    assert analysis.n_clusters_ == 2
    sizes = np.bincount(analysis.labels_)
    assert sizes[0] >= sizes[1]


@pytest.mark.slow  # UMAP and openTSNE compile with numba on first use
def test_same_seed_gives_identical_labels_and_embeddings():
    x, _ = blobs(n_per=100)
    first = SpectralRelevanceAnalysis(grid=None, random_state=3).fit(x)
    second = SpectralRelevanceAnalysis(grid=None, random_state=3).fit(x)
    np.testing.assert_array_equal(first.labels_, second.labels_)
    for name in ("tsne", "umap"):
        assert first.embedding_[name].shape == (len(x), 2)
        np.testing.assert_array_equal(first.embedding_[name], second.embedding_[name])
    # the embedding reflects the clusters: each point's nearest embedded neighbour shares its label
    tsne = first.embedding_["tsne"]
    d2 = ((tsne[:, None] - tsne[None]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    assert (first.labels_[d2.argmin(1)] == first.labels_).mean() > 0.95


@pytest.mark.parametrize("n", [0, 1, 2])
def test_too_few_maps_is_a_clear_error(n):
    with pytest.raises(AnalysisInputError, match="at least 3 maps"):
        SpectralRelevanceAnalysis(embeddings=()).fit(np.ones((n, 8, 8)))


def test_non_finite_maps_error_names_how_many_and_which_rows():
    maps = np.random.default_rng(0).random((20, 8, 8))
    maps[4, 1, 1] = np.nan
    maps[11, 0, 0] = np.inf
    with pytest.raises(AnalysisInputError, match=r"2 of 20 maps contain NaN or Inf \(rows 4, 11\)"):
        SpectralRelevanceAnalysis(grid=4, embeddings=()).fit(maps)


def test_k_not_below_n_is_a_clear_error():
    with pytest.raises(AnalysisInputError, match="k=10 neighbours needs 1 <= k < n=10"):
        SpectralRelevanceAnalysis(grid=None, k=10, embeddings=()).fit(np.random.default_rng(0).random((10, 4)))


def test_wrong_shape_is_a_clear_error():
    with pytest.raises(AnalysisInputError, match=r"shape \(N, H, W\)"):
        SpectralRelevanceAnalysis(grid=20).fit(np.ones((10, 3, 8, 8)))


def test_identical_maps_warn_and_give_one_cluster():
    maps = np.ones((30, 16, 16))
    with pytest.warns(DegenerateMapsWarning, match="all 30 maps are identical"):
        analysis = SpectralRelevanceAnalysis(grid=8).fit(maps)
    assert analysis.n_clusters_ == 1
    np.testing.assert_array_equal(analysis.labels_, 0)
    assert len(analysis.clusters_) == 1 and analysis.clusters_["suspicion"].iloc[0] == 0
    assert np.isfinite(analysis.eigenvalues_).all()


def planted_artefact_maps(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A class whose objects sit near the centre (two strategies: far and close-up views) plus a
    planted Clever Hans cluster that also looks at a tag in the bottom-left corner (cf. L2102)."""
    rng = np.random.default_rng(seed)
    kinds = np.repeat([0, 1, 2], [220, 120, 40])  # main, close-up, artefact
    maps = rng.normal(0, 0.05, (len(kinds), 60, 60))
    for i, kind in enumerate(kinds):
        cy, cx = 30 + rng.integers(-6, 7, size=2)
        half = 12 if kind == 1 else 6
        maps[i, cy - half : cy + half, cx - half : cx + half] += 1.0 if kind != 1 else 0.5
        if kind == 2:
            maps[i, 52:60, 0:10] += 3.0
    return maps, kinds


def test_suspicion_ranks_the_planted_artefact_cluster_first():
    maps, kinds = planted_artefact_maps()
    analysis = SpectralRelevanceAnalysis(grid=20, n_clusters=3, embeddings=()).fit(maps)
    assert adjusted_rand_score(kinds, analysis.labels_) > 0.95
    table = analysis.clusters_
    most_suspicious = int(table.loc[table["suspicion_rank"] == 1, "cluster"].iloc[0])
    assert np.all(kinds[analysis.labels_ == most_suspicious] == 2)
    assert table.loc[most_suspicious, "border_share"] == table["border_share"].max()
    assert analysis.prototypes_.shape == (3, 20, 20)
    members = analysis.labels_ == most_suspicious
    np.testing.assert_allclose(analysis.prototypes_[most_suspicious], analysis.pooled_[members].mean(axis=0))
    assert set(table.loc[most_suspicious, "medoids"]) <= set(np.flatnonzero(members))


def test_conductance_is_zero_for_disconnected_clusters_and_positive_otherwise():
    x, _ = blobs(separation=50.0)
    separated = SpectralRelevanceAnalysis(grid=None, embeddings=()).fit(x)
    np.testing.assert_allclose(separated.clusters_["conductance"], 0.0)
    x, _ = blobs(separation=1.0)
    touching = SpectralRelevanceAnalysis(grid=None, n_clusters=3, embeddings=()).fit(x)
    assert (touching.clusters_["conductance"] > 0).all()


def test_stability_is_high_on_clean_clustered_maps():
    maps, _ = planted_artefact_maps()
    analysis = SpectralRelevanceAnalysis(grid=20, n_clusters=3, embeddings=()).fit(maps)
    table = analysis.stability(maps)
    assert set(table["parameter"]) == {"grid", "k"}
    assert set(table.loc[table["parameter"] == "grid", "value"]) == {5, 10, 50}
    assert table["ari"].min() > 0.9
    assert analysis.stability_ is table


def test_cross_class_ranking_orders_by_lambda_2_and_by_largest_gap():
    spectra = {"cat": [0, 0.30, 0.35, 0.4, 0.45], "horse": [0, 0.01, 0.02, 0.5, 0.55], "boat": [0, 0.1, 0.5, 0.52, 0.6]}
    table = rank_classes(spectra)
    assert list(table["class"]) == ["horse", "boat", "cat"]  # lambda_2 ascending (L2124)
    assert table.set_index("class")["rank_by_gap"].to_dict() == {"horse": 1, "boat": 2, "cat": 3}
    assert table.set_index("class")["largest_gap_after"].to_dict() == {"horse": 3, "boat": 2, "cat": 1}
    assert table.set_index("class")["alphabetical_index"].to_dict() == {"boat": 0, "cat": 1, "horse": 2}
