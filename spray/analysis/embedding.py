"""2-D embeddings of a class for inspection: t-SNE (L2091, L2100) and UMAP [X], both seeded.

Both reuse the kNN graph that the spectral analysis already built; no second neighbour search.

t-SNE: the thesis feeds t-SNE DIST = 1/(W + eps) (L2091). With a binary W every graph
neighbour is at distance 1 and every other sample at 1/eps, so the perplexity-calibrated input
affinities are uniform over each sample's graph neighbours whenever its degree reaches the
perplexity (7, L2100; the max-symmetrised degree is >= k); that is exactly openTSNE's
``PrecomputedAffinities`` built from W, which is what runs here (several times faster than
scikit-learn's exact-affinity t-SNE). Its gradients are Barnes-Hut below ``FFT_FROM_N`` samples
and FFT-interpolated above: the FFT method costs ~7 CPU-s whatever the size (its grid), Barnes-
Hut 0.08 / 0.25 / 2.3 / 11 CPU-s at 64 / 200 / 1000 / 3000 samples (FFT 8.8 at 3000; this
machine, same run), so a class of a few hundred images no longer pays seconds for its picture.
The early exaggeration is 6 (L2100). The initial layout is the spectral embedding (eigenvectors 2 and 3), rescaled as
openTSNE recommends. For non-binary W the affinities are proportional to the edge weights.

UMAP: umap-learn with ``precomputed_knn`` from the same neighbour lists, initialised from
the same spectral coordinates (its own spectral initialisation would solve another eigenproblem).

numba-compiled libraries are imported only inside these functions: their JIT costs ~1 min
cold and must not slow down runs that skip embeddings.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from spray.analysis.knn import NeighborGraph

TSNE_PERPLEXITY = 7.0
"""t-SNE perplexity 7 (L2100)."""

TSNE_EARLY_EXAGGERATION = 6.0
"""t-SNE early exaggeration 6 (L2100)."""

DIST_EPSILON = 1e-6
"""eps in DIST = 1/(W + eps) (L2091); the value is not given, SPEC §1.7 default."""

FFT_FROM_N = 2000
"""Samples from which t-SNE's gradients use FFT interpolation instead of Barnes-Hut (measured crossover)."""

EMBEDDINGS_DEFAULT = ("tsne", "umap")
"""t-SNE is the thesis's embedding (L2091); UMAP is an addition [X]."""


def spectral_layout(eigenvectors: np.ndarray) -> np.ndarray:
    """(N, 2) starting layout from eigenvectors 2 and 3 (the first is constant on a connected graph)."""
    columns = eigenvectors[:, 1:3] if eigenvectors.shape[1] >= 3 else eigenvectors[:, :2]
    layout = np.zeros((len(eigenvectors), 2))
    layout[:, : columns.shape[1]] = columns
    spread = layout.std(axis=0)
    return (layout - layout.mean(axis=0)) / np.where(spread > 0, spread, 1.0)


def tsne_embedding(
    affinity: sp.spmatrix,
    initial_layout: np.ndarray,
    random_state: int | None = 0,
    early_exaggeration: float = TSNE_EARLY_EXAGGERATION,
    n_iter: int = 500,
    early_exaggeration_iter: int = 250,
    n_jobs: int = 1,
) -> np.ndarray:
    """t-SNE (N, 2) from input affinities proportional to W (uniform over the kNN graph for binary W)."""
    from openTSNE import TSNEEmbedding
    from openTSNE.affinity import PrecomputedAffinities
    from openTSNE.initialization import jitter, rescale

    # A copy: openTSNE normalises the matrix it is given in place.
    affinities = PrecomputedAffinities(sp.csr_matrix(affinity, dtype=np.float64, copy=True), normalize=True)
    # A small seeded jitter separates samples that share an identical starting point.
    start = jitter(rescale(initial_layout.astype(np.float64)), random_state=random_state)
    method = "fft" if len(start) >= FFT_FROM_N else "bh"
    embedding = TSNEEmbedding(
        start, affinities, negative_gradient_method=method, n_jobs=n_jobs, random_state=random_state, verbose=False
    )
    embedding = embedding.optimize(early_exaggeration_iter, exaggeration=early_exaggeration, momentum=0.5)
    embedding = embedding.optimize(n_iter, momentum=0.8)
    return np.asarray(embedding, dtype=np.float64)


def tsne_on_features(
    features: np.ndarray,
    random_state: int | None = 0,
    perplexity: float = TSNE_PERPLEXITY,
    early_exaggeration: float = TSNE_EARLY_EXAGGERATION,
    n_jobs: int = 1,
) -> np.ndarray:
    """The alternative input: openTSNE on the pooled features themselves, perplexity 7 (L2100)."""
    from openTSNE import TSNE

    model = TSNE(perplexity=perplexity, early_exaggeration=early_exaggeration, random_state=random_state, n_jobs=n_jobs)
    return np.asarray(model.fit(features), dtype=np.float64)


def umap_embedding(
    features: np.ndarray,
    graph: NeighborGraph,
    initial_layout: np.ndarray,
    random_state: int | None = 0,
    min_dist: float = 0.1,
) -> np.ndarray:
    """UMAP (N, 2) on the given kNN graph (self prepended as umap-learn expects), seeded, so single-threaded."""
    import warnings

    from umap import UMAP

    n = len(features)
    indices = np.hstack([np.arange(n)[:, None], graph.indices])
    distances = np.hstack([np.zeros((n, 1)), graph.distances]).astype(np.float32)
    model = UMAP(
        n_neighbors=indices.shape[1],
        precomputed_knn=(indices, distances, None),
        init=initial_layout * 10.0,
        random_state=random_state,
        min_dist=min_dist,
    )
    with warnings.catch_warnings():  # "n_jobs overridden by random_state" and small-n notes
        warnings.simplefilter("ignore")
        return np.asarray(model.fit_transform(features), dtype=np.float64)
