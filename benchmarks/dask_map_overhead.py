"""The client's cost of collecting many task results: `workflows.cluster.dask_map` against the loop
it replaced (`distributed.wait(pending, return_when="FIRST_COMPLETED")` until nothing is pending),
same LocalCluster, same tasks, same run.

The old loop re-armed every pending future after each completion (O(n^2)); in a 1000-class run
(benchmarks/many_classes.py) py-spy found the client's event loop busy with it, on a 2-core
machine whose two workers needed the CPU.

    .venv/bin/python benchmarks/dask_map_overhead.py --tasks 1000 --task-ms 40
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def task(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def wait_loop(client, func, items):
    """The baseline: the collection loop of workflows/cluster.py before this change."""
    from distributed import wait

    pending = set(client.map(func, items, pure=False))
    while pending:
        done, pending = wait(pending, timeout=5.0, return_when="FIRST_COMPLETED")
        for future in done:
            yield future.result()


def measure(name: str, run, items: list[float]) -> dict:
    cpu, wall = time.process_time(), time.perf_counter()
    results = list(run(task, items))
    figures = {"client_cpu_s": time.process_time() - cpu, "wall_s": time.perf_counter() - wall}
    assert sorted(results) == sorted(items), f"{name} lost results"
    print(f"{name:10s} client CPU {figures['client_cpu_s']:6.2f} s   wall {figures['wall_s']:6.2f} s", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--task-ms", type=float, default=40.0)
    args = parser.parse_args()
    from workflows import cluster

    items = [args.task_ms / 1000.0] * args.tasks
    with cluster.local_client(2) as client:
        client.submit(task, 0.0).result()  # workers up
        ideal = args.tasks * args.task_ms / 1000.0 / 2
        print(f"{args.tasks} tasks of {args.task_ms:.0f} ms on 2 workers (ideal wall {ideal:.1f} s)")
        old = measure("wait loop", lambda func, xs: wait_loop(client, func, xs), items)
        new = measure("dask_map", cluster.dask_map(client), items)
    print(
        f"client CPU: dask_map {old['client_cpu_s'] / max(new['client_cpu_s'], 1e-9):.1f}x less; "
        f"wall: {old['wall_s'] / new['wall_s']:.2f}x faster"
    )


if __name__ == "__main__":
    main()
