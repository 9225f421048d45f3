"""Thread-pool limits (threadpoolctl) from its cached controller.

``threadpoolctl.threadpool_limits`` builds a new ``ThreadpoolController`` per call, which walks
every loaded shared library: 2-4 ms in a process with torch, scikit-learn and numba loaded, more
in a Dask worker (py-spy of a 1000-class rerun: 5-9 CPU-s of each worker went to it).
``get_cached_controller`` keeps one, made again after new imports (when new native libraries,
hence pools, may have loaded); a pool's thread count is always read live.
"""

from __future__ import annotations

from typing import Any

from threadpoolctl import get_cached_controller


def limit(limits: int, user_api: str) -> Any:
    """A context manager holding the pools of ``user_api`` ("blas", "openmp") at ``limits`` threads."""
    return get_cached_controller().limit(limits=limits, user_api=user_api)


def pool_info() -> list[dict[str, Any]]:
    """threadpoolctl's description of every pool, thread counts as they are now."""
    return get_cached_controller().info()
