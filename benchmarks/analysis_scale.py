"""Speed and memory of the spectral analysis at 10k / 100k / 1M samples, with peer baselines (issue 5).

Data: a mixture of ``--clusters`` Gaussians in d=400 (= 20 x 20 pooled maps), float32, with
planted labels. Every pipeline runs in its own forked child process, which generates the data
itself, so the peak RSS reported is that pipeline's alone. Per stage: CPU seconds (user+sys of
the process, all threads), wall seconds, peak RSS so far. Also: ARI against the planted
labels and the recall of the kNN graph on a sample of rows.

Pipelines:
- ``spray``: ``SpectralRelevanceAnalysis`` (exact kNN <= 20k, NN-descent above; Lanczos on the
  top of D^-1/2 W D^-1/2; NJW k-means; openTSNE + UMAP on the same kNN graph). The pool stage
  sum-pools synthetic 40 x 40 maps (in chunks of 10k) whose 20 x 20 pooling is the data.
  numba's JIT warm-up (pynndescent, UMAP) is timed separately as ``jit``. Above
  ``--embed-max`` samples the embeddings run on a random subsample of that size.
- ``sklearn``: ``SpectralClustering(affinity='nearest_neighbors', n_neighbors=k)``, whose
  default eigen path is ARPACK shift-invert.
- ``dense``: the CoRelAy-style dense pipeline: scipy ``pdist`` + ``squareform``, a full
  ``argsort`` of every row, kNN graph, mean-symmetrised, ``eigsh`` on the dense normalised
  affinity, k-means.

Usage: ``flock /tmp/spray-heavy.lock python benchmarks/analysis_scale.py --sizes 10000,100000``
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing as mp
import time
import traceback

import numpy as np

D = 400


def mixture(n: int, clusters: int, seed: int = 0, smoothing: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """n points of ``clusters`` unit-variance Gaussians in d=400 whose centres have per-axis std 1.

    With ``smoothing`` > 0 every point, seen as a 20 x 20 map, is blurred by a Gaussian of that
    many cells: neighbouring cells then correlate as in pooled relevance maps, where the
    isotropic default (intrinsic dimension 400) is the hardest case for approximate search.
    """
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, D)).astype(np.float32)
    labels = rng.integers(0, clusters, n)
    x = np.empty((n, D), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        x[start:stop] = centres[labels[start:stop]] + rng.standard_normal((stop - start, D), dtype=np.float32)
        if smoothing > 0:
            maps = x[start:stop].reshape(-1, 20, 20)
            x[start:stop] = gaussian_filter(maps, sigma=(0, smoothing, smoothing), mode="nearest").reshape(-1, D)
    return x, labels


def _timed(stages: dict, name: str, fn):
    from spray.analysis.timing import stage

    with stage(stages, name):
        return fn()


def run_spray(n: int, clusters: int, embed_max: int, recall_rows: int, smoothing: float = 0.0) -> dict:
    from sklearn.metrics import adjusted_rand_score

    from spray.analysis import SpectralRelevanceAnalysis
    from spray.analysis.knn import exact_knn, recall
    from spray.analysis.pooling import sum_pool
    from spray.analysis.spectrum import auto_n_clusters

    x, planted = mixture(n, clusters, smoothing=smoothing)
    stages: dict = {}

    def pool_all() -> float:
        worst = 0.0
        for start in range(0, n, 10_000):
            chunk = x[start : start + 10_000]
            maps = np.repeat(np.repeat(chunk.reshape(-1, 20, 20) / 4.0, 2, axis=1), 2, axis=2)
            worst = max(worst, float(np.abs(sum_pool(maps, 20).reshape(len(chunk), -1) - chunk).max()))
        return worst

    pool_error = _timed(stages, "pool", pool_all)

    def warm_jit() -> None:
        small = x[:2000]
        SpectralRelevanceAnalysis(grid=None, knn_method="approximate", n_eigenvalues=8).fit(small)

    _timed(stages, "jit", warm_jit)
    embed_here = n <= embed_max
    analysis = SpectralRelevanceAnalysis(
        grid=None, n_clusters=clusters, embeddings=("tsne", "umap") if embed_here else ()
    ).fit(x)
    stages.update({name: s for name, s in analysis.timings_.items() if name != "pool"})  # features given: no pooling
    if not embed_here:
        rows = np.random.default_rng(1).choice(n, embed_max, replace=False)
        sub = SpectralRelevanceAnalysis(grid=None, n_clusters=clusters, n_eigenvalues=8).fit(x[rows])
        for name in ("tsne", "umap"):
            stages[name] = dict(sub.timings_[name], subsample=embed_max)
    rows = np.random.default_rng(2).choice(n, min(n, recall_rows), replace=False)
    measured_recall = recall(analysis.neighbors_, exact_knn(x, analysis.k_, rows), rows)
    return {
        "stages": stages,
        "ari": float(adjusted_rand_score(planted, analysis.labels_)),
        "recall": float(measured_recall),
        "recall_rows": len(rows),
        "k": analysis.k_,
        "knn_method": analysis.params_["knn_method"],
        "n_components": analysis.n_components_,
        "auto_n_clusters": auto_n_clusters(analysis.eigenvalues_, analysis.max_clusters, analysis.min_clusters),
        "pool_max_abs_error": pool_error,
    }


def run_sklearn(n: int, clusters: int, k: int, smoothing: float = 0.0) -> dict:
    from sklearn.cluster import SpectralClustering
    from sklearn.metrics import adjusted_rand_score

    x, planted = mixture(n, clusters, smoothing=smoothing)
    stages: dict = {}
    model = SpectralClustering(n_clusters=clusters, affinity="nearest_neighbors", n_neighbors=k, random_state=0)
    labels = _timed(stages, "total", lambda: model.fit_predict(x))
    return {"stages": stages, "ari": float(adjusted_rand_score(planted, labels))}


def run_dense(n: int, clusters: int, k: int, smoothing: float = 0.0, n_eigenvalues: int = 32) -> dict:
    from scipy.sparse.linalg import eigsh
    from scipy.spatial.distance import pdist, squareform
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    x, planted = mixture(n, clusters, smoothing=smoothing)
    stages: dict = {}
    distances = _timed(stages, "pdist", lambda: squareform(pdist(x.astype(np.float64))))
    # No closures over distances / order: both are deleted below to free their n x n memory.
    order = _timed(stages, "argsort", functools.partial(np.argsort, distances, axis=1))

    def graph(order: np.ndarray) -> np.ndarray:
        w = np.zeros((n, n))
        rows = np.repeat(np.arange(n), k)
        w[rows, order[:, 1 : k + 1].ravel()] = 1.0
        w = (w + w.T) / 2.0
        d = w.sum(axis=1)
        return w / np.sqrt(np.outer(d, d))

    normalized = _timed(stages, "laplacian", functools.partial(graph, order))
    del distances, order
    _, vectors = _timed(stages, "eigen", lambda: eigsh(normalized, k=n_eigenvalues, which="LA"))

    def kmeans():
        top = vectors[:, ::-1][:, :clusters]
        top = top / np.linalg.norm(top, axis=1, keepdims=True)
        return KMeans(clusters, n_init=10, random_state=0).fit_predict(top)

    labels = _timed(stages, "cluster", kmeans)
    return {"stages": stages, "ari": float(adjusted_rand_score(planted, labels))}


def _child(queue, fn, args) -> None:
    try:
        queue.put(fn(*args))
    except Exception:  # report and keep the other pipelines running
        queue.put({"error": traceback.format_exc(limit=3)})


def in_child(fn, *args) -> dict:
    """Run ``fn(*args)`` in a forked process (own peak RSS); returns its dict result."""
    context = mp.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=_child, args=(queue, fn, args))
    start = time.perf_counter()
    process.start()
    result = queue.get()
    process.join()
    result["child_wall_s"] = time.perf_counter() - start
    return result


def summarise(n: int, pipeline: str, result: dict) -> str:
    if "error" in result:
        return f"| {n:,} | {pipeline} | error: {result['error'].strip().splitlines()[-1]} |"
    stages = result["stages"]
    cells = ", ".join(
        f"{name} {s['cpu_s']:.1f}/{s['wall_s']:.1f}" + (f" (on {s['subsample']:,})" if "subsample" in s else "")
        for name, s in stages.items()
    )
    core = sum(stages[s]["cpu_s"] for s in ("knn", "laplacian", "eigen", "cluster") if s in stages)
    if pipeline != "spray":
        core = sum(s["cpu_s"] for s in stages.values())
    peak = max(s["peak_rss_mb"] for s in stages.values())
    extra = f"ARI {result['ari']:.3f}"
    if "recall" in result:
        extra += f", recall {result['recall']:.3f} ({result['knn_method']}, k={result['k']})"
    return f"| {n:,} | {pipeline} | {core:.1f} | {peak / 1024:.2f} | {extra} | {cells} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated N (default 10000,100000)")
    parser.add_argument("--clusters", type=int, default=5, help="planted clusters (default 5)")
    parser.add_argument("--baseline-max", type=int, default=10_000, help="largest N for the peer baselines")
    parser.add_argument("--embed-max", type=int, default=100_000, help="embed a subsample of this size above it")
    parser.add_argument("--recall-rows", type=int, default=1000, help="rows whose exact neighbours measure recall")
    parser.add_argument(
        "--smoothing",
        type=float,
        default=0.0,
        help="blur each 20 x 20 point by a Gaussian of this many cells (default 0: isotropic, hardest)",
    )
    parser.add_argument("--json", default=None, help="also write all results to this JSON file")
    args = parser.parse_args()
    results = []
    print("| N | pipeline | core CPU-s | peak RSS GB | quality | stages: CPU-s/wall-s |")
    print("|---|---|---|---|---|---|")
    for n in (int(s) for s in args.sizes.split(",")):
        from spray.analysis.knn import default_k

        k = default_k(n)
        runs = [("spray", run_spray, (n, args.clusters, args.embed_max, args.recall_rows, args.smoothing))]
        if n <= args.baseline_max:
            runs += [
                ("dense", run_dense, (n, args.clusters, k, args.smoothing)),
                ("sklearn", run_sklearn, (n, args.clusters, k, args.smoothing)),
            ]
        for pipeline, fn, fn_args in runs:
            result = in_child(fn, *fn_args)
            results.append({"n": n, "pipeline": pipeline, "smoothing": args.smoothing, **result})
            print(summarise(n, pipeline, result), flush=True)
            if args.json:
                with open(args.json, "w") as handle:
                    json.dump(results, handle, indent=1, default=float)


if __name__ == "__main__":
    main()
