"""Process settings for relevance work: torch threads, BLAS threads and glibc's allocator.

Three settings, each measured on the demo (64 px VGG-style CNN, LRP batches of 16, 2 cores,
idle machine, same runs; benchmarks/compute_throughput.py and the notes in benchmarks/README.md):

- **Torch threads** are pinned per process so that workers x threads = cores.
- **One BLAS thread while computing.** numpy's OpenBLAS threads busy-wait after each call and
  take the cores from torch's own threads: a plain loop with 2 torch threads made 131 maps/s,
  196 maps/s with OpenBLAS limited to one thread. The limit holds only inside
  :func:`relevance_compute`, so the analysis after it keeps every BLAS thread.
- **glibc's allocator.** Setting any malloc threshold switches off glibc's dynamic mmap
  threshold, and Dask's nanny sets ``MALLOC_TRIM_THRESHOLD_=65536`` in every worker: each
  tensor above 128 KiB was then mmap'ed, faulted in and unmapped on every operation, and LRP
  ran 2.2x slower in a worker than in a plain process. With a 64 MiB trim threshold and a
  32 MiB mmap threshold (glibc's largest on 64-bit), LRP ran 1.6x faster than with glibc's
  defaults. The price is up to 64 MiB of freed memory kept per process.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import sys
from collections.abc import Iterator

from spray.thread_pools import limit, pool_info

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
"""``mallopt`` parameter numbers (glibc's malloc.h)."""

TRIM_THRESHOLD_BYTES = 64 * 2**20
MMAP_THRESHOLD_BYTES = 32 * 2**20
"""glibc's ``DEFAULT_MMAP_THRESHOLD_MAX`` on 64-bit: ``mallopt`` refuses anything larger."""


@functools.cache
def tune_allocator() -> bool:
    """Set glibc's trim and mmap thresholds (once per process); False where there is no glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)) and bool(
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    )


def pin_torch_threads(threads: int) -> None:
    """Pin torch's intra-op threads for this process."""
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def analysis_compute(threads: int) -> Iterator[None]:
    """Settings for one class's spectral analysis: one BLAS thread (with busy-waiting OpenBLAS
    threads and one other busy process, the 32-eigenpair stage at 10k took 4.7-11.5 CPU-s, with
    one thread 0.7 CPU-s; ARCHITECTURE.md), ``threads`` OpenMP threads (scikit-learn's k-means)
    and numba threads (UMAP, NN-descent), so that workers x threads = cores."""
    tune_allocator()
    previous = _numba_threads(threads)
    try:
        with limit(1, user_api="blas"), limit(threads, user_api="openmp"):
            yield
    finally:
        _numba_threads(previous)


def _numba_threads(threads: int) -> int:
    """Set numba's threads (at most its pool's size) and return the previous count."""
    import numba

    previous = numba.get_num_threads()
    pool_size = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]  # numba.config sets it through globals()
    numba.set_num_threads(max(1, min(threads, pool_size)))
    return previous


def thread_counts() -> dict[str, int]:
    """The thread limits in force now: BLAS and OpenMP (threadpoolctl), numba, torch if loaded."""
    counts: dict[str, int] = {}
    for pool in pool_info():
        counts[pool["user_api"]] = max(counts.get(pool["user_api"], 0), int(pool["num_threads"]))
    if "numba" in sys.modules:
        counts["numba"] = sys.modules["numba"].get_num_threads()
    if "torch" in sys.modules:
        counts["torch"] = sys.modules["torch"].get_num_threads()
    return counts


@contextlib.contextmanager
def relevance_compute(torch_threads: int) -> Iterator[None]:
    """Settings for a block of model work: ``torch_threads`` torch threads, the allocator tuned,
    and one BLAS thread until the block ends."""
    pin_torch_threads(torch_threads)
    tune_allocator()
    with limit(1, user_api="blas"):
        yield
