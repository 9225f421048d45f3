"""Chunk-aligned writes from parallel processes lose nothing (the Zarr 3 fact of ARCHITECTURE.md)."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from relevance_store import ClassKey, check_store, open_store

KEY = ClassKey("model", "data", "v" * 16, "boat")
N, CHUNK, GRID, SIDE = 600, 10, 2, 4


def write_chunks(location: str, chunks: list[int]) -> None:
    group = open_store(location, "r+").class_group(KEY)
    for index in chunks:
        rows = np.arange(*group.chunk_rows(index).indices(N), dtype=np.float32)
        group.write_chunk(
            index,
            scores=rows,
            errors=[f"row {int(r)}" if r % 97 == 0 else "" for r in rows],
            pooled={GRID: np.broadcast_to(rows[:, None, None], (len(rows), GRID, GRID))},
            full=np.broadcast_to(rows[:, None, None], (len(rows), SIDE, SIDE)),
            thumbnails=np.broadcast_to((rows % 256).astype(np.uint8)[:, None, None, None], (len(rows), 3, 3, 3)),
        )


def test_parallel_processes_writing_whole_chunks_keep_every_row(tmp_path):
    location = str(tmp_path / "s.zarr")
    group = open_store(location, "a").create_class(
        KEY,
        [f"s{i}" for i in range(N)],
        [1] * N,
        grids=(GRID,),
        map_shape=(SIDE, SIDE),
        thumbnail_size=3,
        chunk_size=CHUNK,
    )
    # Interleaved ownership (chunk i -> worker i % 3) so neighbouring chunks are written at once.
    with ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(write_chunks, [location] * 3, [list(range(w, N // CHUNK, 3)) for w in range(3)]))
    rows = np.arange(N, dtype=np.float32)
    assert group.complete
    np.testing.assert_array_equal(group.scores, rows)
    np.testing.assert_array_equal(group.pooled(GRID), np.broadcast_to(rows[:, None, None], (N, GRID, GRID)))
    np.testing.assert_array_equal(group.full[:], np.broadcast_to(rows[:, None, None], (N, SIDE, SIDE)))
    np.testing.assert_array_equal(group.thumbnails[:, 0, 0, 0], (rows % 256).astype(np.uint8))
    assert group.errors == {f"s{r}": f"row {r}" for r in range(0, N, 97)}
    assert check_store(open_store(location)) == []
