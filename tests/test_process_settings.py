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


def test_the_thread_pool_scan_is_kept_until_a_module_is_imported(monkeypatch):
    """spray.thread_pools scans the loaded libraries once and again only after an import (when a new
    pool may have loaded); the limits it sets still reach the pools."""
    import sys
    import types

    from spray import thread_pools

    first = thread_pools.controller()
    assert thread_pools.controller() is first
    monkeypatch.setitem(sys.modules, "spray_test_new_module", types.ModuleType("spray_test_new_module"))
    rescanned = thread_pools.controller()
    assert rescanned is not first and thread_pools.controller() is rescanned
    with threadpool_limits(limits=2, user_api="blas"):
        with thread_pools.limit(1, user_api="blas"):
            assert set(_blas_threads()) == {1}
        assert set(_blas_threads()) == {2}
