"""Independent pages rendered by a pool of processes, one per core.

A class page costs ~0.6 s here, nearly all of it Bokeh building and serialising the page's
~180 models: pure Python on one core. 1000 classes spent 654 s of a 30-minute run on their
pages (benchmarks/README.md, many_classes.py), one core idle. From ``POOL_MIN_PAGES`` pages
on they are rendered by one spawned process per core; a process costs ~3 s to start (imports
of Bokeh and pandas), so fewer pages render here.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from tqdm.auto import tqdm

Job = TypeVar("Job")
Result = TypeVar("Result")

POOL_MIN_PAGES = 24
"""Fewest pages rendered by a pool (an estimate from the figures above: at 0.6 s a page, 24 pages
take ~14 s on one core and ~7 s on two, plus ~3 s to start the processes)."""


def pool_size(n_pages: int, processes: int | None = None) -> int:
    """Pool processes for ``n_pages`` pages, 0 for none (rendered in this process): ``processes``
    when given (1: none), else one per core the process may use from ``POOL_MIN_PAGES`` pages on."""
    if n_pages == 0:
        return 0
    if processes is not None:
        return 0 if processes <= 1 else min(processes, n_pages)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 0 if n_pages < POOL_MIN_PAGES or cores < 2 else min(cores, n_pages)


def _one_thread_each() -> None:
    """Pool processes render, they do not multiply matrices: no spinning BLAS or OpenMP threads
    beside them. Set before numpy loads (a spawned process has not imported it yet)."""
    for variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ[variable] = "1"


def render_all(
    render: Callable[[Job], Result],
    jobs: Sequence[Job],
    *,
    processes: int | None = None,
    progress: bool = False,
    desc: str = "pages",
) -> Iterator[Result]:
    """``render`` of every job, in order: in this process, or by a pool (:func:`pool_size`).
    ``render`` must be a module-level function and the jobs picklable."""
    size = pool_size(len(jobs), processes)
    shown = progress and len(jobs) > 0  # a rerun with every page unchanged prints no empty bar
    with tqdm(total=len(jobs), desc=desc, unit="page", disable=not shown, dynamic_ncols=True) as bar:
        if not size:
            for job in jobs:
                yield render(job)
                bar.update(1)
            return
        context = multiprocessing.get_context("spawn")  # a fork would copy the caller's threads' locks
        with ProcessPoolExecutor(size, mp_context=context, initializer=_one_thread_each) as pool:
            for result in pool.map(render, jobs, chunksize=4):
                yield result
                bar.update(1)
