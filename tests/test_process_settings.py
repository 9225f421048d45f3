"""Process settings of relevance work (workflows/process_settings.py)."""

from __future__ import annotations

import platform

import pytest
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from workflows.process_settings import relevance_compute, tune_allocator


def _blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_one_blas_thread_inside_and_the_old_count_after():
    import numpy  # noqa: F401  (loads numpy's BLAS, so there is a pool to limit)

    torch_threads = torch.get_num_threads()
    try:
        with threadpool_limits(limits=2, user_api="blas"):  # what a 2-core machine has by default
            assert set(_blas_threads()) == {2}
            with relevance_compute(torch_threads=1):
                assert set(_blas_threads()) == {1}
                assert torch.get_num_threads() == 1
            assert set(_blas_threads()) == {2}
    finally:
        torch.set_num_threads(torch_threads)


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_glibc_accepts_the_allocator_thresholds():
    assert tune_allocator() is True


def test_thread_limits_reuse_one_scan_of_the_loaded_libraries(monkeypatch):
    """spray.thread_pools sets limits through threadpoolctl's cached controller: the loaded
    libraries are scanned once, not at every limit (4 ms each in a worker); the limits still
    reach the pools."""
    import threadpoolctl

    from spray import thread_pools

    scans = []

    class CountedController(threadpoolctl.ThreadpoolController):
        def __init__(self) -> None:
            scans.append(1)
            super().__init__()

    monkeypatch.setattr(threadpoolctl, "ThreadpoolController", CountedController)
    threadpoolctl.reset_cached_controller()
    try:
        for _ in range(3):
            with thread_pools.limit(1, user_api="blas"):
                pass
        assert len(scans) == 1
    finally:
        threadpoolctl.reset_cached_controller()
        monkeypatch.undo()
    with threadpool_limits(limits=2, user_api="blas"):
        with thread_pools.limit(1, user_api="blas"):
            assert set(_blas_threads()) == {1}
        assert set(_blas_threads()) == {2}
