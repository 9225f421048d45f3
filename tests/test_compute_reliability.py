"""Reliability of the compute workflow with real processes (issue 4): a LocalCluster, a real
``dask scheduler`` + ``dask worker``s on 127.0.0.1, a worker killed mid-run, the whole
``spray compute`` process group SIGKILLed mid-run, and a second writer on the same class.
Every finished store must equal, array for array, an uninterrupted in-process run. The model is
paced (0.3 s a forward pass) so that the kills land mid-run on any machine."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from compute_fixtures import PACED_FACTORY, write_image_folder

from relevance_store import check_store, open_store
from workflows.compute import ComputeError, compute_classes

pytestmark = pytest.mark.slow
CLASS, CHUNK = "cat", 3


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("reliability") / "images", per_class=24, corrupt=CLASS)


def compute_options(images: Path) -> dict:
    """The options `spray compute` uses by default, for the Python API."""
    return {"model_spec": {"model": PACED_FACTORY}, "source_spec": str(images), "chunk_size": CHUNK, "progress": False}


@pytest.fixture(scope="module")
def reference(images, tmp_path_factory):
    """Arrays of an uninterrupted in-process run of the class."""
    store = tmp_path_factory.mktemp("reference") / "s.zarr"
    compute_classes(store, CLASS, workers=1, **compute_options(images))
    return arrays_of(store)


def arrays_of(store: Path) -> dict[str, np.ndarray]:
    group = open_store(store).find_class(CLASS)
    assert group.complete
    arrays = {name: np.asarray(array[...]) for name, array in group.data_arrays().items()}
    return {**arrays, "sample_id": np.asarray(group.sample_ids), "label": group.labels}


def assert_equal_stores(store: Path, reference: dict) -> None:
    actual = arrays_of(store)
    assert actual.keys() == reference.keys()
    for name in reference:
        np.testing.assert_array_equal(actual[name], reference[name], err_msg=name)
    assert check_store(open_store(store)) == []


def spray_compute(images: Path, store: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "spray",
        "compute",
        "--class",
        CLASS,
        "--data",
        str(images),
        "--model",
        PACED_FACTORY,
        "--store",
        str(store),
        "--chunk-size",
        str(CHUNK),
        *extra,
    ]


def chunks_done(store: Path) -> int:
    try:
        return int(open_store(store).find_class(CLASS).done.sum())
    except Exception:  # not created yet, or being created
        return 0


def wait_until(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


def test_local_cluster_run_equals_in_process_and_a_second_writer_is_refused(images, reference, tmp_path):
    store = tmp_path / "s.zarr"
    first = subprocess.Popen(
        spray_compute(images, store, "--workers", "2"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until(lambda: any(Path(f"{store}.locks").glob("*.lock")), 120, "the first run's lock")
        second = subprocess.run(
            spray_compute(images, store, "--workers", "1"), capture_output=True, text=True, timeout=180
        )
        assert first.poll() is None, "the first run ended before the second writer tried: the test proves nothing"
        assert second.returncode == 1
        assert f"is being written by pid {first.pid}" in second.stderr and "--wait" in second.stderr
        out, err = first.communicate(timeout=300)
        assert first.returncode == 0, err
    finally:
        first.kill()
    assert "1 unreadable or failed (recorded)" in out
    assert_equal_stores(store, reference)


def test_sigkill_of_the_whole_run_then_rerun_equals_uninterrupted(images, reference, tmp_path):
    store = tmp_path / "s.zarr"
    command = spray_compute(images, store, "--workers", "2")
    killed = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until(lambda: chunks_done(store) >= 1, 180, "a first finished chunk")
        time.sleep(random.uniform(0.0, 0.3))  # an arbitrary moment while chunks are in flight
    finally:
        os.killpg(killed.pid, signal.SIGKILL)  # the client, the cluster and every worker
        killed.wait()
    group = open_store(store).find_class(CLASS)
    assert not group.complete, "the run finished before the kill: the test proves nothing"
    assert check_store(open_store(store)) == []  # no chunk marked done without its data
    (lock,) = Path(f"{store}.locks").glob("*.lock")
    assert f'"pid": {killed.pid}' in lock.read_text()  # left behind by the killed run: stale
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert_equal_stores(store, reference)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def dask_processes(tmp_path):
    """A real `dask scheduler` and two `dask worker` processes (no nanny) on 127.0.0.1."""
    dask = str(Path(sys.executable).parent / "dask")
    address = f"tcp://127.0.0.1:{free_port()}"
    logs = open(tmp_path / "dask.log", "w")  # noqa: SIM115 (closed in the finally below)
    scheduler = subprocess.Popen(
        [dask, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1], "--no-dashboard"],
        stdout=logs,
        stderr=logs,
    )
    workers = [
        subprocess.Popen(
            [dask, "worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard", "--name", f"w{i}"],
            stdout=logs,
            stderr=logs,
        )
        for i in range(2)
    ]
    try:
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield address, workers
    finally:
        for process in [*workers, scheduler]:
            process.kill()
            process.wait()
        logs.close()


def test_worker_killed_mid_run_then_rerun_equals_uninterrupted(images, reference, tmp_path, dask_processes):
    address, workers = dask_processes
    store = tmp_path / "s.zarr"
    outcome: dict = {}

    def compute() -> None:
        try:
            outcome["result"] = compute_classes(store, CLASS, scheduler=address, **compute_options(images))
        except ComputeError as error:  # failing cleanly is allowed; completing is better
            outcome["error"] = error

    runner = threading.Thread(target=compute)
    runner.start()
    wait_until(lambda: chunks_done(store) >= 1, 180, "a first finished chunk")
    done_at_kill = chunks_done(store)
    workers[0].send_signal(signal.SIGKILL)
    runner.join(timeout=300)
    assert done_at_kill < 9, "the run finished before the kill: the test proves nothing"
    assert not runner.is_alive() and ("result" in outcome or "error" in outcome)
    assert check_store(open_store(store)) == []  # no chunk marked done without its data
    (rerun,) = compute_classes(store, CLASS, scheduler=address, **compute_options(images))
    assert rerun.n_samples == 25 and open_store(store).find_class(CLASS).complete
    assert_equal_stores(store, reference)
