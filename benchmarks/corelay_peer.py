"""spray's SpRAy core against CoRelAy's own, on the same data in the same run (issue 16 item 5).

CoRelAy (``corelay==1.0.0`` from the package index) is installed by this benchmark into its own
virtual environment (default ``~/.cache/spray-bench/corelay-venv``, reused when it imports) and
runs there as a subprocess; spray runs in this interpreter's environment, also as a subprocess.
Both read the same ``.npy`` file: ``--n`` points of ``analysis_scale.mixture`` (5 Gaussians in
d = 400), correlated (``--smoothing 1.0``, neighbouring cells of the 20 x 20 map correlate as in
pooled relevance maps) and isotropic (0, the hardest case).

The cores compared, each as its own code defines it:

- CoRelAy: ``corelay.pipeline.spectral.SpectralEmbedding()`` with its defaults, the SpRAy core
  of its ``SpectralClustering`` before k-means: ``SciPyPDist`` (scipy ``pdist`` + ``squareform``,
  float64), ``SparseKNN(n_neighbors=10, symmetric=True)`` (full ``argsort`` of every row, mean
  symmetrisation), ``SymmetricNormalLaplacian`` (D^-1/2 W D^-1/2) and
  ``EigenDecomposition(n_eigval=32)`` (``eigsh(which='LM')``, eigenvalues 1 - mu).
- spray: the stages ``SpectralRelevanceAnalysis.fit`` runs before its twins, clustering and
  embeddings: ``knn.knn`` (k = max(2, ceil(ln n)) = 10 at 10k, exact), ``affinity.knn_affinity``
  (binary, max-symmetrised) and ``spectrum.smallest_eigenpairs`` (L_sym, 32 pairs, exact zeros
  per connected component).

Each measurement is a fresh process; CPU seconds (all threads of the process) and wall seconds
of the core alone (no imports, no data loading), per stage too. Runs are interleaved (CoRelAy,
spray, alternating which goes first) and the best of ``--repeats`` is kept, with BLAS threads
set by environment variables before numpy loads, the same for both: 1 thread, and the machine's
default (the variables unset). A last spray run uses CoRelAy's graph definition (k = 10, mean
symmetrisation): its eigenvalues must equal CoRelAy's.

    flock /tmp/spray-heavy.lock .venv/bin/python benchmarks/corelay_peer.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CORELAY_REQUIREMENT = "corelay==1.0.0"
DEFAULT_VENV = Path.home() / ".cache" / "spray-bench" / "corelay-venv"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
N_EIGENVALUES = 32


# ---------------------------------------------------------------- workers (run in their own process)


def _clock() -> tuple[float, float]:
    return time.process_time(), time.perf_counter()


def _since(start: tuple[float, float]) -> dict[str, float]:
    return {"cpu_s": time.process_time() - start[0], "wall_s": time.perf_counter() - start[1]}


def corelay_worker(data: str) -> dict:
    """CoRelAy's default ``SpectralEmbedding`` pipeline on the data; each processor timed from inside."""
    from corelay.pipeline.spectral import SpectralEmbedding
    from corelay.processor.affinity import SparseKNN
    from corelay.processor.distance import SciPyPDist
    from corelay.processor.embedding import EigenDecomposition
    from corelay.processor.laplacian import SymmetricNormalLaplacian
    from corelay.version import __version__

    stages: dict[str, dict[str, float]] = {}

    def timed(name, function):
        def wrapper(self, data):
            start = _clock()
            out = function(self, data)
            stages[name] = _since(start)
            return out

        return wrapper

    for name, cls in [
        ("pdist", SciPyPDist),
        ("knn", SparseKNN),
        ("laplacian", SymmetricNormalLaplacian),
        ("eigen", EigenDecomposition),
    ]:
        cls.function = timed(name, cls.function)
    x = np.load(data)
    start = _clock()
    eigenvalues, _ = SpectralEmbedding()(x)
    total = _since(start)
    return {
        "total": total,
        "stages": stages,
        "eigenvalues": np.sort(eigenvalues).tolist(),
        "version": __version__,
        "numpy": np.__version__,
    }


def spray_worker(data: str, k: int | None, symmetrize: str) -> dict:
    """spray's core stages on the data (those ``SpectralRelevanceAnalysis.fit`` runs first)."""
    from spray.analysis import affinity, knn, spectrum

    x = np.load(data)
    k = knn.default_k(len(x)) if k is None else k
    stages: dict[str, dict[str, float]] = {}
    total = _clock()
    start = _clock()
    graph = knn.knn(x, k)
    stages["knn"] = _since(start)
    start = _clock()
    weights = affinity.knn_affinity(graph, symmetrize)
    stages["affinity"] = _since(start)
    start = _clock()
    solved = spectrum.smallest_eigenpairs(weights, N_EIGENVALUES)
    stages["eigen"] = _since(start)
    return {
        "total": _since(total),
        "stages": stages,
        "eigenvalues": solved.eigenvalues.tolist(),
        "k": k,
        "exact": graph.exact,
        "n_components": solved.n_components,
        "numpy": np.__version__,
    }


# ---------------------------------------------------------------- driver


def ensure_corelay(venv: Path) -> Path:
    """The CoRelAy venv's python: created and installed with the machine's package index when missing."""
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import corelay.version as v, sys; sys.exit(v.__version__ != '1.0.0')"]
    if python.exists() and subprocess.run(check, capture_output=True, check=False).returncode == 0:
        return python
    print(f"installing {CORELAY_REQUIREMENT} into {venv} ...", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", CORELAY_REQUIREMENT], check=True, stderr=subprocess.DEVNULL
    )
    subprocess.run(check, check=True)
    return python


def run_worker(python: str, args: list[str], threads: int | None) -> dict:
    """One measurement in a fresh process with BLAS threads set before numpy loads (None: unset)."""
    env = {key: value for key, value in os.environ.items() if key not in THREAD_VARIABLES}
    if threads is not None:
        env.update({key: str(threads) for key in THREAD_VARIABLES})
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    result = subprocess.run(
        [python, str(Path(__file__).resolve()), *args], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"worker {args[:2]} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def best(runs: list[dict], key: str) -> dict:
    """The run with the least CPU time (its wall time and stages with it) and the least wall time."""
    by_cpu = min(runs, key=lambda run: run["total"]["cpu_s"])
    return {
        "cpu_s": by_cpu["total"]["cpu_s"],
        "wall_s": min(run["total"]["wall_s"] for run in runs),
        "stages": by_cpu["stages"],
        "all_cpu_s": [run["total"]["cpu_s"] for run in runs],
        "name": key,
    }


def stage_cells(stages: dict) -> str:
    return ", ".join(f"{name} {s['cpu_s']:.2f}/{s['wall_s']:.2f}" for name, s in stages.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="samples (default 10000)")
    parser.add_argument("--smoothing", default="1.0,0", help="comma-separated data sets (default 1.0,0)")
    parser.add_argument("--threads", default="1,default", help="BLAS threads per run: numbers or 'default'")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs per pipeline, best kept")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="CoRelAy's virtual environment")
    parser.add_argument("--json", default=None, help="also write all results to this JSON file")
    parser.add_argument("--worker", choices=["corelay", "spray"], help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--k", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--symmetrize", default="max", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "corelay":
        print(json.dumps(corelay_worker(args.data)))
        return
    if args.worker == "spray":
        print(json.dumps(spray_worker(args.data, args.k, args.symmetrize)))
        return

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from analysis_scale import mixture

    corelay_python = str(ensure_corelay(args.venv))
    thread_settings = [None if t == "default" else int(t) for t in args.threads.split(",")]
    results = []
    print(f"load average at start: {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs", flush=True)
    print(
        "| data | BLAS threads | CoRelAy CPU-s / wall-s | spray CPU-s / wall-s | CPU ratio | wall ratio |"
        " CoRelAy stages CPU/wall | spray stages CPU/wall |"
    )
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(dir=args.venv.parent) as work:
        for smoothing in (float(s) for s in args.smoothing.split(",")):
            data = str(Path(work) / f"mixture-{args.n}-smoothing-{smoothing:g}.npy")
            np.save(data, mixture(args.n, 5, smoothing=smoothing)[0])
            name = "correlated (smoothing 1.0)" if smoothing == 1.0 else f"smoothing {smoothing:g}"
            name = "isotropic" if smoothing == 0 else name
            for threads in thread_settings:
                runs: dict[str, list[dict]] = {"corelay": [], "spray": []}
                for repeat in range(args.repeats):
                    order = ["corelay", "spray"] if repeat % 2 == 0 else ["spray", "corelay"]
                    for pipeline in order:
                        python = corelay_python if pipeline == "corelay" else sys.executable
                        runs[pipeline].append(run_worker(python, ["--worker", pipeline, "--data", data], threads))
                peer, ours = best(runs["corelay"], "corelay"), best(runs["spray"], "spray")
                label = "default" if threads is None else str(threads)
                print(
                    f"| {name} | {label} | {peer['cpu_s']:.2f} / {peer['wall_s']:.2f} | {ours['cpu_s']:.2f} / "
                    f"{ours['wall_s']:.2f} | {peer['cpu_s'] / ours['cpu_s']:.1f}x | "
                    f"{peer['wall_s'] / ours['wall_s']:.1f}x | {stage_cells(peer['stages'])} | "
                    f"{stage_cells(ours['stages'])} |",
                    flush=True,
                )
                results.append(
                    {
                        "data": name,
                        "smoothing": smoothing,
                        "n": args.n,
                        "threads": label,
                        "corelay": peer,
                        "spray": ours,
                        "corelay_runs": runs["corelay"],
                        "spray_runs": runs["spray"],
                    }
                )
            # the same graph definition: eigenvalues must agree
            same = run_worker(
                sys.executable,
                ["--worker", "spray", "--data", data, "--k", "10", "--symmetrize", "mean"],
                thread_settings[0],
            )
            peer_values = np.sort(results[-1]["corelay_runs"][0]["eigenvalues"])
            ours_values = np.array(same["eigenvalues"])
            # 'LM' takes the largest |mu| of D^-1/2 W D^-1/2: a mu near -1 (L_sym eigenvalue near 2) can displace
            # the wanted top; those of CoRelAy's below 1 must be spray's smallest
            below = int((peer_values < 1.0).sum())
            difference = float(np.abs(peer_values[:below] - ours_values[:below]).max())
            results.append(
                {
                    "data": name,
                    "same_definition": same,
                    "max_eigenvalue_difference": difference,
                    "corelay_eigenvalues_below_1": below,
                }
            )
            print(
                f"| {name} | agreement | spray with k=10, mean symmetrisation: CoRelAy's {below} eigenvalues below 1 "
                f"equal spray's {below} smallest to {difference:.1e}; CoRelAy's other {N_EIGENVALUES - below} lie at "
                f"{', '.join(f'{v:.3f}' for v in peer_values[below:]) or '-'} (spray's next: "
                f"{', '.join(f'{v:.3f}' for v in ours_values[below : below + 3]) or '-'}) | | | | | |",
                flush=True,
            )
            if args.json:
                Path(args.json).write_text(json.dumps(results, indent=1))
    print(f"load average at end: {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
