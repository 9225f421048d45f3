"""A cluster without workers ends a run with one clear line instead of a traceback or a hang."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workflows import cluster


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def lonely_scheduler(tmp_path):
    """A real `dask scheduler` on 127.0.0.1 with no worker."""
    address = f"tcp://127.0.0.1:{free_port()}"
    log = open(tmp_path / "scheduler.log", "w")  # noqa: SIM115 (closed in the finally below)
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "dask"),
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            address.rsplit(":", 1)[1],
            "--no-dashboard",
        ],
        stdout=log,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", int(address.rsplit(":", 1)[1])), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield address
    finally:
        process.kill()
        process.wait()
        log.close()


def test_a_scheduler_without_workers_is_one_clear_error(lonely_scheduler):
    with (
        pytest.raises(cluster.ClusterError, match=r"has no worker after 1 s; start workers with `dask worker"),
        cluster.remote_client(lonely_scheduler, timeout_s=1),
    ):
        pass


def test_losing_every_worker_stops_the_run_after_the_documented_wait(lonely_scheduler):
    from distributed import Client

    with Client(lonely_scheduler, timeout=30) as client:
        run = cluster.dask_map(client, no_worker_timeout_s=2)
        started = time.monotonic()
        with pytest.raises(
            cluster.ClusterError,
            match=r"no worker for 2 s with 3 task\(s\) left; finished chunks "
            r"are kept",
        ):
            list(run(abs, [1, 2, 3]))
        assert time.monotonic() - started < 20


def _fail_on_three(value: int) -> int:
    if value == 3:
        raise ValueError("task 3 failed")
    time.sleep(0.05)
    return value


def test_dask_map_yields_results_as_tasks_finish_and_a_failed_task_s_error_reaches_the_caller():
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as local,
        Client(local) as client,
    ):
        run = cluster.dask_map(client)
        assert sorted(run(abs, list(range(-20, 0)))) == list(range(1, 21))
        results = []
        with pytest.raises(ValueError, match="task 3 failed"):
            for value in run(_fail_on_three, list(range(40))):
                results.append(value)
        assert len(results) < 40 and 3 not in results
        deadline = time.monotonic() + 10
        while client.futures and time.monotonic() < deadline:  # the rest were cancelled
            time.sleep(0.1)
        assert not client.futures
