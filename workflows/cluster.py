"""Where the compute tasks run: a local Dask cluster, an existing one, or this process.

A ``LocalCluster(processes=True, threads_per_worker=1)`` takes ~9 s to start here
(ARCHITECTURE.md, Dask facts) plus a model load per worker, so small jobs run in the client
process instead (see :data:`workflows.settings.LOCAL_CLUSTER_MIN_MAPS`). Torch threads
per worker are set so that workers x threads = cores.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import queue
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlparse

from spray.errors import SprayError
from workflows import relevance_task
from workflows.settings import LOCAL_CLUSTER_MIN_MAPS


class ClusterError(SprayError):
    """A Dask scheduler that cannot be reached, or workers that cannot reach the store."""


def default_workers() -> int:
    """One local worker process per core."""
    return os.cpu_count() or 1


def local_threads(n_workers: int) -> int:
    """Torch threads per local worker so that workers x threads = cores."""
    return max(1, default_workers() // n_workers)


def use_local_cluster(workers: int | None, n_maps: int) -> bool:
    """Whether to start a LocalCluster (else run in the client process).

    An explicit worker count is obeyed; by default a cluster is started only when it pays
    for its start-up.
    """
    if workers is not None:
        return workers > 1
    return default_workers() > 1 and n_maps >= LOCAL_CLUSTER_MIN_MAPS


@contextlib.contextmanager
def local_client(n_workers: int, resources: dict[str, int] | None = None) -> Iterator:
    """A client of a fresh LocalCluster with ``n_workers`` single-threaded worker processes
    (each with ``resources``, e.g. one GPU)."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
            resources=resources,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


Runner = Callable[[Callable[[Any], Any], list[Any]], Iterator[Any]]
"""``map``-like: applies a task function to items and yields the results (in completion order on Dask)."""


def local_gpus(device: str) -> int:
    """CUDA devices local workers should use for ``device`` (0 for the CPU)."""
    from workflows.relevance_task import resolve_device

    if resolve_device(device) == "cpu":
        return 0
    import torch

    return 1 if ":" in device else torch.cuda.device_count()


def choose_runner(
    stack: contextlib.ExitStack, scheduler: str | None, workers: int | None, location: str, n_maps: int, gpus: int = 0
) -> tuple[Runner, int]:
    """Where tasks run and the torch threads per worker: the cluster at ``scheduler`` (which must
    see the store at ``location``), else a LocalCluster when it pays for its start-up on ``n_maps``
    maps (or ``workers`` > 1 asks for one), else this process. Clients close with ``stack``.

    With ``gpus`` > 1 local GPUs, the default is one worker per GPU, each holding a ``GPU``
    resource that every task asks for, so that no two tasks share a GPU (the worker picks its
    GPU by name, ``relevance_task.worker_device``); with one GPU the client process uses it."""
    if scheduler is not None:
        client = stack.enter_context(remote_client(scheduler))
        require_store_visible(client, location)
        return dask_map(client), remote_threads(client)
    if gpus > 1 and workers is None:
        workers = gpus
    if n_maps and (use_local_cluster(workers, n_maps) if not gpus else (workers or 1) > 1):
        n_workers = workers or default_workers()
        resources = {"GPU": 1} if gpus else None
        client = stack.enter_context(local_client(n_workers, resources))
        return dask_map(client, resources), local_threads(n_workers)
    return map, local_threads(1)


NO_WORKER_TIMEOUT_S = 60.0
"""How long a run waits while the cluster has no worker at all before it stops with a clear
error (what is stored is kept; a rerun resumes). Long enough for a worker to restart."""


class Executor:
    """Where a run's tasks go, chosen when work is known (``choose_runner``) and kept for later
    stages: compute and analysis share the workers. In-process is upgraded to a cluster when a
    later stage alone brings enough work to pay for one; a cluster, once started, is kept."""

    def __init__(
        self,
        stack: contextlib.ExitStack,
        scheduler: str | None,
        workers: int | None,
        location: str,
        device: str = "cpu",
    ) -> None:
        self.stack, self.scheduler, self.workers, self.location = stack, scheduler, workers, location
        self.gpus = local_gpus(device) if scheduler is None else 0
        self.chosen: tuple[Runner, int] | None = None

    def choose(self, n_maps: int) -> tuple[Runner, int]:
        """A function mapping tasks to results (as they complete), and torch/BLAS threads per worker,
        for ``n_maps`` maps of work (or its equivalent)."""
        if self.chosen is None or (
            self.chosen[0] is map
            and n_maps
            and self.scheduler is None
            and use_local_cluster(self.workers, n_maps)
            and not self.gpus
        ):
            self.chosen = choose_runner(self.stack, self.scheduler, self.workers, self.location, n_maps, gpus=self.gpus)
        return self.chosen


def dask_map(
    client: Any, resources: dict[str, int] | None = None, no_worker_timeout_s: float = NO_WORKER_TIMEOUT_S
) -> Runner:
    """``map`` over a Dask client: results as tasks complete (retried twice on a lost worker);
    pending tasks are cancelled when the caller stops or fails. ``resources``: what each task
    holds. With no worker for ``no_worker_timeout_s`` seconds it raises :class:`ClusterError`
    instead of waiting forever.

    Each future reports its own completion into a queue (``add_done_callback``): O(1) per task.
    ``distributed.wait(pending, return_when="FIRST_COMPLETED")`` in a loop re-armed every pending
    future after each completion, O(n^2): for 1000 tasks of 40 ms on 2 workers the client spent
    30 CPU-s against 4.6 with the queue (benchmarks/dask_map_overhead.py, same run)."""

    def run(func: Callable[[Any], Any], items: list[Any]) -> Iterator[Any]:
        futures = client.map(func, items, pure=False, retries=2, resources=resources)
        finished: queue.SimpleQueue = queue.SimpleQueue()
        for future in futures:
            future.add_done_callback(finished.put)
        remaining, alone_since = len(futures), None
        try:
            while remaining:
                try:
                    future = finished.get(timeout=min(5.0, no_worker_timeout_s))
                except queue.Empty:  # nothing finished in this tick
                    future = None
                if future is not None:
                    remaining -= 1
                    yield future.result()
                if future is not None or client.scheduler_info().get("workers"):
                    alone_since = None
                elif alone_since is None:
                    alone_since = time.monotonic()
                elif time.monotonic() - alone_since >= no_worker_timeout_s:
                    raise ClusterError(
                        f"the Dask cluster has had no worker for {no_worker_timeout_s:.0f} s with {remaining} "
                        "task(s) left; finished chunks are kept: start workers (`dask worker ADDRESS`) and rerun"
                    )
        finally:
            client.cancel(futures)

    return run


@contextlib.contextmanager
def remote_client(address: str, timeout_s: float = 10.0) -> Iterator:
    """A client of the existing scheduler at ``address`` (``tcp://HOST:PORT``)."""
    from distributed import Client

    if urlparse(address).scheme not in ("tcp", "tls", "ws", "wss", "inproc", "ucx"):
        raise ClusterError(f"--scheduler {address!r} is not a Dask scheduler address; use tcp://HOST:PORT")
    try:
        client = Client(address, timeout=timeout_s)
    except (OSError, TimeoutError) as error:
        raise ClusterError(
            f"cannot reach the Dask scheduler at {address} ({error}); start it with `dask scheduler` or fix --scheduler"
        ) from None
    with client:
        if not client.scheduler_info().get("workers"):
            try:
                client.wait_for_workers(1, timeout=timeout_s)
            except (TimeoutError, OSError):
                raise ClusterError(
                    f"the Dask scheduler at {address} has no worker after {timeout_s:.0f} s; start "
                    f"workers with `dask worker {address}` and rerun"
                ) from None
        yield client


def remote_threads(client) -> int:
    """Torch threads per worker of a remote cluster: the fewest cores per worker on any host."""
    cores = client.run(relevance_task.cpu_count)
    per_host = collections.Counter(urlparse(address).hostname for address in cores)
    return max(1, min(cores[address] // per_host[urlparse(address).hostname] for address in cores))


def require_store_visible(client, location: str) -> None:
    """Fail with a clear error unless every worker can open the store at ``location``."""
    visible = client.run(relevance_task.store_visible, location)
    blind = sorted(worker for worker, ok in visible.items() if not ok)
    if blind:
        raise ClusterError(
            f"the store {location} is not reachable from Dask workers {', '.join(blind)}; "
            "put it on a file system every worker mounts (same path) or an fsspec URL they can open"
        )
