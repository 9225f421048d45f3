"""Per-stage CPU time, wall time and peak RSS of an analysis run, for provenance and benchmarks."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (ru_maxrss is KB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


@contextmanager
def stage(timings: dict[str, dict[str, float]], name: str) -> Iterator[None]:
    """Record ``{"cpu_s", "wall_s", "peak_rss_mb"}`` of the enclosed block under ``timings[name]``."""
    cpu, wall = time.process_time(), time.perf_counter()
    yield
    timings[name] = {
        "cpu_s": time.process_time() - cpu,
        "wall_s": time.perf_counter() - wall,
        "peak_rss_mb": peak_rss_mb(),
    }
