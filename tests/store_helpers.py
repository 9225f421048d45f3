"""Small class groups for the store tests (written through the public store API)."""

from __future__ import annotations

import numpy as np

from relevance_store import ClassGroup, ClassKey, RelevanceStore


def make_group(
    store: RelevanceStore, class_name="aeroplane", n=10, chunk_size=4, grids=(4,), map_shape=(8, 8), thumbnail_size=6
) -> ClassGroup:
    ids = [f"img{i:03d}" for i in range(n)]
    return store.create_class(
        ClassKey("m" * 16, "d" * 16, "v" * 16, class_name),
        ids,
        [1] * n,
        grids=grids,
        map_shape=map_shape,
        thumbnail_size=thumbnail_size,
        chunk_size=chunk_size,
        attrs={"lrp": {"composite": "thesis"}},
    )


def fill_chunk(group: ClassGroup, index: int, value: float = 1.0, errors: list[str] | None = None) -> None:
    rows = group.chunk_rows(index)
    n = rows.stop - rows.start
    full = np.full((n, *group.full.shape[1:]), value, np.float32) if group.full is not None else None
    thumbs = np.full((n, *group.thumbnails.shape[1:]), 7, np.uint8) if group.thumbnails is not None else None
    group.write_chunk(
        index,
        scores=np.full(n, value),
        errors=errors,
        full=full,
        thumbnails=thumbs,
        pooled={g: np.full((n, g, g), value) for g in group.grids},
    )
