"""Thread-pool limits (threadpoolctl) without rescanning every loaded library at each call.

``threadpoolctl.threadpool_limits`` builds a new ``ThreadpoolController`` per call, which walks
every loaded shared library: 2-4 ms in a process with torch, scikit-learn and numba loaded, more
in a Dask worker. An analysis task sets limits several times, so 1000 small classes paid about
10 CPU-s for it (py-spy, benchmarks/many_classes.py). The controller is kept and made again only
after new modules were imported, which is when new native libraries (and thread pools) load; a
pool's thread count is always read live.
"""

from __future__ import annotations

import sys
from typing import Any

from threadpoolctl import ThreadpoolController

_cached: tuple[int, ThreadpoolController] | None = None


def controller() -> ThreadpoolController:
    """This process's thread pools, rescanned when the set of imported modules has grown."""
    global _cached
    if _cached is None or _cached[0] != len(sys.modules):
        _cached = (len(sys.modules), ThreadpoolController())
    return _cached[1]


def limit(limits: int, user_api: str) -> Any:
    """A context manager holding the pools of ``user_api`` ("blas", "openmp") at ``limits`` threads."""
    return controller().limit(limits=limits, user_api=user_api)


def pool_info() -> list[dict[str, Any]]:
    """threadpoolctl's description of every pool, thread counts as they are now."""
    return controller().info()
