"""Relevance maps per second on the demo: a plain loop vs the compute workflow (issue 4).

    flock /tmp/spray-heavy.lock .venv/bin/python benchmarks/compute_throughput.py [--classes aeroplane,horse,boat,car]

(a) a plain single-process loop (load, preprocess, LRP in batches, channel sum, pool; no
    Dask, no Zarr, default threads and allocator, in a fresh process): the baseline of every ratio;
(b) the workflow with 1 worker (in-process: store writes, thumbnails, compression included);
(c) the workflow with 2 local worker processes: end to end (cluster start-up, worker
    imports and model loads included), and on a warm cluster (started, and warmed up by
    computing another class, so each worker has its model loaded): the steady state.
Also prints the bytes per stored map, the compression ratio of the full maps, and the map
count above which a LocalCluster pays for its start-up (``LOCAL_CLUSTER_MIN_MAPS``).
Goals: (b) within 10% of (a); (c) >= 1.6x (a) on 2 cores.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import multiprocessing
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np


def plain_loop(classes: list[str], batch_size: int, limit: int | None = None) -> float:
    """Seconds for the baseline (a) over every test sample of ``classes`` (or the first ``limit``)."""
    import torch

    from spray.analysis.pooling import sum_pool
    from spray.data import open_source
    from spray.lrp import attribute
    from spray.models import load_model

    model, source = load_model(), open_source("demo")
    work = [(name, source.ids("test", name)[:limit]) for name in classes]
    started = time.perf_counter()
    pooled = []
    for name, ids in work:
        for start in range(0, len(ids), batch_size):
            batch = ids[start : start + batch_size]
            x = torch.from_numpy(np.stack([model.preprocessing(source.load(i).image, i) for i in batch]))
            relevance, _ = attribute(model.module, x, model.class_names.index(name))
            pooled.append(sum_pool(relevance.sum(dim=1).numpy(), 20))
    return time.perf_counter() - started


def plain_loop_in_fresh_process(classes: list[str], batch_size: int) -> float:
    """(a) timed in a new process, after a warm-up batch there: untouched by the settings that
    (b) applies to this process (allocator, BLAS threads; workflows/process_settings.py)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pool.submit(plain_loop, classes[:1], batch_size, batch_size).result()
        return pool.submit(plain_loop, classes, batch_size).result()


def workflow(store: Path, classes: list[str], **options) -> float:
    """Seconds for one compute_classes call (every class in one graph) into a fresh store."""
    from workflows.compute import compute_classes

    started = time.perf_counter()
    results = compute_classes(store, classes, source_spec="demo", progress=False, **options)
    elapsed = time.perf_counter() - started
    assert all(r.n_computed == r.n_samples for r in results), results
    return elapsed


def stored_bytes(store: Path) -> tuple[int, int, int]:
    """(bytes of the full maps on disk, their raw float32 bytes, bytes of everything) over all classes."""
    from relevance_store import open_store

    opened = open_store(store)
    full = raw = everything = 0
    for key in opened.class_keys():
        root = store / key.path
        full += sum(f.stat().st_size for f in (root / "full").rglob("*") if f.is_file())
        raw += opened.class_group(key).full.nbytes
        everything += sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    return full, raw, everything


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", default="aeroplane,horse,boat,car", help="comma-separated demo classes")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of (a), (b) and warm (c); the best counts")
    parser.add_argument("--warm-up-class", default="bird", help="class computed first to warm the cluster's workers")
    args = parser.parse_args()
    classes = args.classes.split(",")

    import torch
    from distributed import LocalCluster

    from spray.data import open_source
    from workflows.relevance_task import cached_model, cached_source
    from workflows.settings import CPU_BATCH_SIZE as BATCH_SIZE

    n = sum(len(open_source("demo").ids("test", name)) for name in classes)
    work = Path(tempfile.mkdtemp(prefix="spray-bench-"))
    fresh = (work / f"store-{i}.zarr" for i in itertools.count())
    try:
        cached_model({}), cached_source("demo")  # (b) runs in this process: loaded once, as for (a)
        workflow(next(fresh), [args.warm_up_class], workers=1)  # and warmed up, as (a) is
        a, b = [], []
        for _ in range(args.repeats):  # interleaved, best of each: the machine is shared
            a.append(plain_loop_in_fresh_process(classes, BATCH_SIZE))
            b.append(workflow(store_b := next(fresh), classes, workers=1))
        full_bytes, raw_bytes, all_bytes = stored_bytes(store_b)
        c_end_to_end = workflow(next(fresh), classes, workers=2)
        with LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
        ) as cluster:
            workflow(next(fresh), [args.warm_up_class], scheduler=cluster.scheduler_address)
            c_warm = min(
                workflow(next(fresh), classes, scheduler=cluster.scheduler_address) for _ in range(args.repeats)
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    a, b = min(a), min(b)

    print(
        f"demo classes {','.join(classes)}: {n} maps, LRP batch {BATCH_SIZE}, best of {args.repeats}, "
        f"torch threads: (a)/(b) {torch.get_num_threads()}, (c) 1 per worker"
    )
    print(f"(a) plain loop, one process             {n / a:6.1f} maps/s  baseline")
    print(f"(b) workflow, 1 worker (in-process)     {n / b:6.1f} maps/s  {a / b:5.2f}x (a)  goal >= 0.90x")
    print(
        f"(c) workflow, 2 workers, end to end     {n / c_end_to_end:6.1f} maps/s  {a / c_end_to_end:5.2f}x (a)  (once)"
    )
    print(f"(c) workflow, 2 workers, warm cluster   {n / c_warm:6.1f} maps/s  {a / c_warm:5.2f}x (a)  goal >= 1.60x")
    print(
        f"full maps: {full_bytes / n:,.0f} bytes per stored map (raw float32 {raw_bytes / n:,.0f}), "
        f"compression {raw_bytes / full_bytes:.2f}x; all arrays of a sample: {all_bytes / n:,.0f} bytes"
    )
    start_up, saved_per_map = c_end_to_end - c_warm, (b - c_warm) / n
    if saved_per_map > 0:
        print(f"LocalCluster start-up {start_up:.1f} s: 2 workers pay off above ~{start_up / saved_per_map:,.0f} maps")


if __name__ == "__main__":
    main()
