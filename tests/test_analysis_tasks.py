"""The analysis as Dask tasks: one per class, thread limits set inside, the same result on a real
`dask scheduler` with two `dask worker` processes as in this process."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from relevance_store import open_store
from workflows.analyze import AnalysisTask, run_analysis
from workflows.compute import compute_classes
from workflows.config import RunConfig
from workflows.pipeline import run


@pytest.fixture
def config(compute_images, tiny_model_spec, tmp_path) -> RunConfig:
    return RunConfig().replace(
        model=tiny_model_spec["model"],
        preprocessing=tiny_model_spec["preprocessing"],
        class_names=None,
        data=str(compute_images),
        store=str(tmp_path / "s.zarr"),
        reports=str(tmp_path / "reports"),
        embeddings=("tsne",),
        workers=1,
    )


def _compute_dog(config: RunConfig):
    """The maps of class "dog" of the tiny model, computed in this process."""
    return compute_classes(
        config.store,
        "dog",
        model_spec=config.model_spec(["cat", "dog", "fox"]),
        source_spec=config.data,
        workers=1,
        progress=False,
        chunk_size=5,
    )


def test_an_analysis_task_runs_with_one_blas_thread_and_the_worker_s_share_of_openmp_and_numba(config):
    (result,) = _compute_dog(config)
    done = run_analysis(AnalysisTask(config.store, result.key, config.replace(stability="off"), threads=1))
    assert done.skipped is None and not done.reused
    assert done.threads["blas"] == 1 and done.threads.get("openmp", 1) == 1 and done.threads["numba"] == 1
    again = run_analysis(AnalysisTask(config.store, result.key, config.replace(stability="off"), threads=1))
    assert again.reused and again.params_hash == done.params_hash


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def dask_cluster(tmp_path):
    """A real `dask scheduler` and two `dask worker` processes on 127.0.0.1."""
    dask = str(Path(sys.executable).parent / "dask")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    log = open(tmp_path / "dask.log", "w")  # noqa: SIM115 (closed in the finally below, after the processes)
    processes = [
        subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], stdout=log, stderr=log
        )
    ]
    processes += [
        subprocess.Popen(
            [dask, "worker", address, "--nthreads", "1", "--no-dashboard", "--name", f"w{i}"], stdout=log, stderr=log
        )
        for i in range(2)
    ]
    try:
        from distributed import Client

        deadline = time.monotonic() + 120
        while True:
            try:
                with Client(address, timeout=10) as client:
                    client.wait_for_workers(2, timeout=120)
                break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "dask.log").read_text()
                time.sleep(0.5)
        yield address
    finally:
        for process in reversed(processes):
            process.kill()
            process.wait()
        log.close()


@pytest.mark.slow
def test_compute_and_analysis_on_a_real_dask_cluster_equal_an_in_process_run(config, dask_cluster, tmp_path):
    local = run(config.replace(classes=("all",)), progress=False)
    remote = run(
        config.replace(
            classes=("all",),
            scheduler=dask_cluster,
            store=str(tmp_path / "remote.zarr"),
            reports=str(tmp_path / "remote-reports"),
            workers=None,
        ),
        progress=False,
    )
    assert [o.class_name for o in remote.outcomes] == [o.class_name for o in local.outcomes] == ["cat", "dog", "fox"]
    for mine, theirs in zip(local.outcomes, remote.outcomes, strict=True):
        assert theirs.n_computed == mine.n_computed and not theirs.reused_analysis
        np.testing.assert_allclose(theirs.eigenvalues, mine.eigenvalues, atol=1e-9)
        assert theirs.n_clusters == mine.n_clusters
    for key in open_store(tmp_path / "remote.zarr").class_keys():
        remote_labels = open_store(tmp_path / "remote.zarr").class_group(key).read_analysis().arrays["labels"]
        local_labels = open_store(config.store).class_group(key).read_analysis().arrays["labels"]
        np.testing.assert_array_equal(remote_labels, local_labels)


@pytest.mark.parametrize(("mode", "variants"), [("off", None), ("quick", 2), ("full", "every")])
def test_stability_is_off_quick_or_full(config, mode, variants):
    from workflows.analyze import analyze_group

    (result,) = _compute_dog(config)
    group = open_store(config.store).class_group(result.key)
    analysis = analyze_group(group, config.replace(stability=mode, embeddings=())).result
    table = analysis.tables.get("stability")
    if variants is None:
        assert table is None
        return
    k = analysis.attrs["resolved"]["k"]
    if variants == "every":  # the other grids and k-2..k+2 (a k below 2 is left out: 12 samples, k = 3)
        expected = [("grid", 5), ("grid", 10), ("grid", 50), *(("k", k + d) for d in (-2, -1, 1, 2) if k + d >= 2)]
        assert [tuple(row) for row in table[["parameter", "value"]].itertuples(index=False)] == expected
        return
    assert len(table) == variants
    if mode == "quick":
        assert [tuple(row) for row in table[["parameter", "value"]].itertuples(index=False)] == [
            ("grid", 10),
            ("k", k + 1),
        ]


def test_a_rerun_with_every_analysis_stored_asks_for_no_worker(config):
    """The client checks which analyses are stored before it asks for workers: a rerun with
    nothing new starts no cluster (1000 stored classes cost 1000 tasks and a cluster start)."""
    import contextlib

    from workflows import cluster
    from workflows.analyze import analyze_classes

    (result,) = _compute_dog(config)
    settings = config.replace(stability="off")
    with contextlib.ExitStack() as stack:
        first, _ = analyze_classes(
            config.store, [result.key], settings, cluster.Executor(stack, None, 1, config.store), progress=False
        )

    class NoWorkers:
        def choose(self, n_maps: int):
            raise AssertionError(f"workers asked for {n_maps} maps of work")

    again, skipped = analyze_classes(config.store, [result.key], settings, NoWorkers(), progress=False)
    assert not first[result.key].reused and again[result.key].reused and not skipped
    assert again[result.key].result.params_hash == first[result.key].result.params_hash
    with contextlib.ExitStack() as stack:  # another parameter: a new entry, made by a task
        changed, _ = analyze_classes(
            config.store,
            [result.key],
            settings.replace(k=4),
            cluster.Executor(stack, None, 1, config.store),
            progress=False,
        )
    assert not changed[result.key].reused
