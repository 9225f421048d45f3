"""Integrity check and summary of a store (``spray check`` / ``spray info``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from relevance_store.class_group import ClassGroup
from relevance_store.store import RelevanceStore

FLOAT_ARRAYS = ("score", "full")  # plus every pooled/<G>


@dataclass
class ClassSummary:
    """One line of ``spray info``."""

    model_id: str
    dataset_id: str
    class_name: str
    n_samples: int
    n_done: int
    n_errors: int
    chunks_done: int
    n_chunks: int
    grids: list[int]
    full_maps: bool
    analyses: int
    model_name: str
    dataset_name: str


def summarise(store: RelevanceStore) -> list[ClassSummary]:
    """Counts and completeness of every class group."""
    rows = []
    for key in store.class_keys():
        group = store.class_group(key)
        done, provenance = group.done, group.provenance
        dataset_name = provenance.get("dataset", {}).get("name", "?")
        rows.append(ClassSummary(*key, group.n_samples, int(group.sample_done.sum()), len(group.errors),
                                 int(done.sum()), group.n_chunks, group.grids, group.full is not None,
                                 len(group.analysis_hashes()), group.model_name, dataset_name))
    return rows


def check_class(group: ClassGroup) -> list[str]:
    """Problems of one class group: done chunks with missing objects or non-finite good rows."""
    problems = []
    reasons = group.error_reasons
    arrays = group.data_arrays()
    for index in np.flatnonzero(group.done):
        rows = group.chunk_rows(int(index))
        good = reasons[rows] == ""
        for name, array in arrays.items():
            if not group.chunk_present(name, int(index)):
                problems.append(f"{group.key}: chunk {index} is marked done but its {name!r} data is missing")
                continue
            if name in FLOAT_ARRAYS or name.startswith("pooled/"):
                values = np.asarray(array[rows]).reshape(rows.stop - rows.start, -1)[good]
                bad = int((~np.isfinite(values).all(axis=1)).sum())
                if bad:
                    problems.append(f"{group.key}: chunk {index} has {bad} non-finite rows in {name!r} "
                                    "without a recorded error")
    return problems


def check_store(store: RelevanceStore) -> list[str]:
    """Problems of every class group (empty list: the store is sound)."""
    return [problem for key in store.class_keys() for problem in check_class(store.class_group(key))]
