"""What the fault-injection probe found to hold, kept as tests (issue 14, "Held"): a full disk
during compute keeps the finished chunks, a SIGKILLed padding experiment resumes to the same
results, and the on-findings hook gets the summary path as one argument however it is spelled."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from compute_fixtures import FACTORY, write_image_folder

from relevance_store import check_store, open_store
from workflows.compute import ComputeError, compute_classes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("held") / "images", per_class=24)


@pytest.fixture
def small_disk(tmp_path):
    """A 1.3 MB tmpfs: room for the store's metadata and about 3 of the 8 chunks (tmpfs counts 4 KB pages)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1300k", "tmpfs", str(mount)], capture_output=True
    ).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root with CAP_SYS_ADMIN)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_during_compute_keeps_every_finished_chunk(images, small_disk, tmp_path):
    options = {
        "model_spec": {"model": FACTORY},
        "source_spec": str(images),
        "chunk_size": 3,
        "workers": 1,
        "progress": False,
    }
    with pytest.raises((ComputeError, OSError)):
        compute_classes(small_disk / "s.zarr", "dog", **options)
    store = tmp_path / "moved.zarr"
    shutil.copytree(small_disk / "s.zarr", store)  # the operator frees space (here: moves the store)
    group = open_store(store).find_class("dog")
    assert 0 < group.done.sum() < group.n_chunks  # some chunks finished before the disk filled
    assert check_store(open_store(store)) == []  # none marked done without its data
    finished = {name: np.asarray(a[...])[group.sample_done] for name, a in group.data_arrays().items()}
    (result,) = compute_classes(store, "dog", **options)
    group = open_store(store).find_class("dog")
    assert group.complete and result.n_computed == group.n_samples - len(finished["score"])
    reference = tmp_path / "reference.zarr"
    compute_classes(reference, "dog", **options)
    expected = open_store(reference).find_class("dog")
    for name, array in group.data_arrays().items():
        np.testing.assert_array_equal(np.asarray(array[...]), np.asarray(expected.data_arrays()[name][...]), name)


TINY = textwrap.dedent(
    """
    import torch
    from torch import nn

    def tiny():
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 4, 5, stride=4), nn.ReLU(), nn.MaxPool2d(4), nn.Flatten(),
                             nn.Linear(4 * 14 * 14, 7))
    """
)


def test_a_sigkilled_padding_experiment_resumes_to_the_same_results(tmp_path):
    (tmp_path / "tiny.py").write_text(TINY)
    command = [
        str(Path(sys.executable).parent / "spray"),
        "verify",
        "padding",
        "--class",
        "aeroplane",
        "--model",
        f"{tmp_path / 'tiny.py'}:tiny",
        "--samples",
        "40",
        "--workers",
        "1",
        "--examples",
        "0",
    ]

    def run(folder: Path, kill_after_chunks: int | None = None) -> subprocess.Popen:
        args = [*command, "--store", str(folder / "s.zarr"), "--reports", str(folder / "r")]
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        if kill_after_chunks is not None:
            deadline = time.monotonic() + 240
            while sum(1 for _ in (folder / "s.zarr").rglob("samples/chunk-*/zarr.json")) < kill_after_chunks:
                assert process.poll() is None and time.monotonic() < deadline, "finished or stuck before the kill"
                time.sleep(0.05)
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=300)
        return process

    run(tmp_path / "killed", kill_after_chunks=2)
    assert run(tmp_path / "killed").returncode == 0
    assert run(tmp_path / "whole").returncode == 0

    def table(folder: Path) -> pd.DataFrame:
        from workflows.verify_padding import read_padding_results

        return read_padding_results(folder / "s.zarr", "aeroplane").table

    pd.testing.assert_frame_equal(table(tmp_path / "killed"), table(tmp_path / "whole"))


def test_the_on_findings_hook_gets_the_summary_path_as_one_argument(tmp_path):
    from workflows.audit.run import run_on_findings

    odd = tmp_path / "audits; rm -rf $HOME 'x' \"y\"" / "summary.json"
    odd.parent.mkdir()
    odd.write_text("{}")
    received = tmp_path / "argv.json"
    script = f"import json, sys; open({str(received)!r}, 'w').write(json.dumps(sys.argv[1:]))"
    assert run_on_findings(f'{sys.executable} -c "{script}"', odd) == 0
    assert json.loads(received.read_text()) == [str(odd)]
