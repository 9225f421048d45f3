"""--device and --batch-size: where the model runs, one worker per GPU, the same maps everywhere."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from relevance_store import open_store
from spray.errors import SprayError
from workflows import cluster, relevance_task
from workflows.compute import compute_classes
from workflows.settings import ComputeSettings, ConfigError

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")


def test_auto_is_the_gpu_when_torch_sees_one_else_the_cpu():
    assert relevance_task.resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert relevance_task.resolve_device("cpu") == "cpu"


@no_cuda
def test_asking_for_cuda_without_a_gpu_is_one_clear_error(compute_images, tiny_model_spec, tmp_path):
    with pytest.raises(SprayError, match="torch sees no CUDA device here; use --device cpu"):
        compute_classes(
            tmp_path / "s.zarr",
            "dog",
            model_spec=tiny_model_spec,
            source_spec=str(compute_images),
            device="cuda",
            progress=False,
        )
    assert not (tmp_path / "s.zarr").exists()  # refused before anything was written


def test_a_bad_device_or_batch_size_is_refused_as_a_setting():
    with pytest.raises(ConfigError, match="is not one of auto, cpu, cuda, cuda:N"):
        ComputeSettings(device="gpu")
    with pytest.raises(ConfigError, match=r"batch_size \(--batch-size\) = 0 is out of range"):
        ComputeSettings(batch_size=0)
    assert ComputeSettings().batch_for("cpu") == 16 and ComputeSettings().batch_for("cuda:0") == 64
    assert ComputeSettings(batch_size=5).batch_for("cuda:1") == 5


def test_each_local_worker_takes_its_own_gpu(monkeypatch):
    import distributed

    class Worker:
        name = 3

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(distributed, "get_worker", lambda: Worker)
    assert relevance_task.worker_device("cuda") == "cuda:1"
    assert relevance_task.worker_device("auto") == "cuda:1"
    assert relevance_task.worker_device("cuda:0") == "cuda:0"  # an explicit device is kept


def test_with_several_gpus_local_workers_are_one_per_gpu_holding_a_gpu_resource(monkeypatch):
    started = {}

    @contextlib.contextmanager
    def fake_local_client(n_workers, resources=None):
        started.update(n_workers=n_workers, resources=resources)
        yield object()

    monkeypatch.setattr(cluster, "local_client", fake_local_client)
    monkeypatch.setattr(cluster, "dask_map", lambda client, resources=None: ("dask", resources))
    with contextlib.ExitStack() as stack:
        runner, _ = cluster.choose_runner(stack, None, None, "store", n_maps=10, gpus=2)
    assert started == {"n_workers": 2, "resources": {"GPU": 1}} and runner == ("dask", {"GPU": 1})
    with contextlib.ExitStack() as stack:  # one GPU: the client process uses it, no cluster start-up
        runner, _ = cluster.choose_runner(stack, None, None, "store", n_maps=10, gpus=1)
    assert runner is map


def test_batch_size_does_not_change_the_maps(compute_images, tiny_model_spec, tmp_path):
    options = {"model_spec": tiny_model_spec, "source_spec": str(compute_images), "workers": 1, "progress": False}
    (small,) = compute_classes(tmp_path / "a.zarr", "dog", batch_size=3, device="cpu", **options)
    (large,) = compute_classes(tmp_path / "b.zarr", "dog", batch_size=32, **options)
    a = open_store(tmp_path / "a.zarr").class_group(small.key).full[:]
    b = open_store(tmp_path / "b.zarr").class_group(large.key).full[:]
    assert small.key == large.key  # device and batch size are not part of what the maps are
    np.testing.assert_allclose(a, b, rtol=2**-11, atol=2**-11 * np.abs(b).max())


@needs_cuda
def test_cuda_maps_equal_cpu_maps(compute_images, tiny_model_spec, tmp_path):
    options = {"model_spec": tiny_model_spec, "source_spec": str(compute_images), "workers": 1, "progress": False}
    (cpu,) = compute_classes(tmp_path / "cpu.zarr", "dog", device="cpu", **options)
    (gpu,) = compute_classes(tmp_path / "gpu.zarr", "dog", device="cuda", **options)
    a = open_store(tmp_path / "cpu.zarr").class_group(cpu.key)
    b = open_store(tmp_path / "gpu.zarr").class_group(gpu.key)
    np.testing.assert_allclose(b.full[:], a.full[:], rtol=1e-3, atol=1e-3 * np.abs(a.full[:]).max())
    assert b.provenance["compute"]["device"] == "cuda"
