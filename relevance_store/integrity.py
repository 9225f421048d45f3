"""Integrity check, repair and summary of a store (``spray check`` / ``spray info``).

The check decodes every chunk a reader would use: each done chunk of every array the chunk
tasks write (score, predicted, error, pooled/<G>, full, thumbnail), the done flags, the
arrays written when the class was created (sample_id, label) and every stored analysis.
Each chunk carries a crc32c (:mod:`relevance_store.codecs`), so bit rot fails to decode
instead of reading as other numbers. A problem names its chunk, and the check goes on.

The repair marks every done chunk with a problem (undecodable, missing, or non-finite
without a recorded error) not done, so that the next ``spray compute`` or ``spray run`` with
the same settings recomputes it (the same inputs give the same bits), and removes every
analysis that cannot be decoded, so that the next analysis recomputes it. A damaged
``sample_id`` or ``label`` array needs the class recomputed with ``--force``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr

from relevance_store import nodes
from relevance_store.class_group import ClassGroup
from relevance_store.naming import ClassKey
from relevance_store.store import RelevanceStore

TASK_ARRAYS = ("score", "predicted", "error", "full", "thumbnail")  # plus every pooled/<G>
FLOAT_ARRAYS = ("score", "full")  # plus every pooled/<G>
CREATED_ARRAYS = ("sample_id", "label")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a class group, and what repairs it."""

    key: ClassKey | None
    """None for a node that could not even be read as a class group."""
    message: str
    chunk: int | None = None
    """A done chunk that recomputing repairs (``repair_store`` marks it not done)."""
    analysis: str | None = None
    """The hash of an analysis entry that recomputing repairs (``repair_store`` removes it)."""

    @property
    def repairable(self) -> bool:
        return self.chunk is not None or self.analysis is not None

    def __str__(self) -> str:
        return self.message if self.key is None else f"{self.key}: {self.message}"


@dataclass
class ClassSummary:
    """One line of ``spray info``."""

    model_id: str
    dataset_id: str
    maps_id: str
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
        rows.append(
            ClassSummary(
                *key,
                group.n_samples,
                int(group.sample_done.sum()),
                len(group.errors),
                int(done.sum()),
                group.n_chunks,
                group.grids,
                group.full is not None,
                len(group.analysis_hashes()),
                group.model_name,
                dataset_name,
            )
        )
    return rows


def check_class(group: ClassGroup) -> list[Problem]:
    """Problems of one class group: chunks that cannot be decoded, done chunks with missing
    objects or with non-finite good rows, and analyses that cannot be decoded."""
    problems: list[Problem] = []

    def found(message: str, *, chunk: int | None = None, analysis: str | None = None) -> None:
        problems.append(Problem(group.key, message, chunk=chunk, analysis=analysis))

    for name in CREATED_ARRAYS:
        _, reason = _decode(nodes.array(group.group, name).__getitem__, ...)
        if reason:
            found(f"its {name!r} array cannot be decoded ({reason}); recompute the class with `spray compute --force`")
    arrays = _task_arrays(group)
    for flat_index in np.flatnonzero(_done_flags(group, found)):
        index = int(flat_index)
        rows = group.chunk_rows(index)
        decoded = {}
        for name, array in arrays.items():
            if not group.chunk_present(name, index):
                found(f"chunk {index} is marked done but its {name!r} data is missing", chunk=index)
                continue
            values, reason = _decode(array.__getitem__, rows)
            if reason:
                found(f"chunk {index} of {name!r} cannot be decoded ({reason})", chunk=index)
            else:
                decoded[name] = np.asarray(values)
        good = decoded["error"] == "" if "error" in decoded else np.ones(rows.stop - rows.start, bool)
        for name, values in decoded.items():
            if name in FLOAT_ARRAYS or name.startswith("pooled/"):
                bad = int((~np.isfinite(values.reshape(len(values), -1)).all(axis=1))[good].sum())
                if bad:
                    found(f"chunk {index} has {bad} non-finite rows in {name!r} without a recorded error", chunk=index)
    for digest in group.analysis_hashes():
        _, reason = _decode(lambda digest: group.read_analysis(digest).read_all(), digest)
        if reason:
            found(f"analysis {digest} cannot be decoded ({reason})", analysis=digest)
    return problems


def check_store(store: RelevanceStore) -> list[Problem]:
    """Problems of every class group (empty list: the store is sound)."""
    keys = store.class_keys()
    problems = [Problem(None, unreadable) for unreadable in store.problems]  # groups the listing skipped
    for key in keys:
        try:
            problems += check_class(store.class_group(key))
        except Exception as error:  # a class that cannot even be opened: report it, check the others
            problems.append(
                Problem(key, f"cannot be read ({_reason(error)}); recompute the class with `spray compute --force`")
            )
    return problems


def repair_store(store: RelevanceStore, problems: list[Problem]) -> list[str]:
    """Mark the chunks named by ``problems`` not done and remove the analyses named; one line
    per class and kind saying what was done and what recomputes it. Takes each class's writer
    lock, so a compute running on that class is never raced."""
    chunks: defaultdict[ClassKey, set[int]] = defaultdict(set)
    analyses: defaultdict[ClassKey, set[str]] = defaultdict(set)
    for problem in problems:
        if problem.key is None:  # a node that is not a class group: nothing to repair
            continue
        if problem.chunk is not None:
            chunks[problem.key].add(problem.chunk)
        if problem.analysis is not None:
            analyses[problem.key].add(problem.analysis)
    lines = []
    for key in sorted(set(chunks) | set(analyses)):
        with store.writer_lock(key):
            group = store.class_group(key)
            for index in sorted(chunks[key]):
                nodes.array(group.group, "done")[index] = False
            for digest in sorted(analyses[key]):
                del nodes.subgroup(group.group, "analysis")[digest]
        if chunks[key]:
            listed = ", ".join(map(str, sorted(chunks[key])))
            lines.append(
                f"marked chunk{'s' if len(chunks[key]) > 1 else ''} {listed} of class {key.class_name!r} "
                "not done: the next `spray compute` or `spray run` with the same settings recomputes them"
            )
        for digest in sorted(analyses[key]):
            lines.append(
                f"removed analysis {digest} of class {key.class_name!r}: the next `spray analyze` or "
                "`spray run` with its parameters recomputes it"
            )
    return lines


def _task_arrays(group: ClassGroup) -> dict[str, zarr.Array]:
    names = [*TASK_ARRAYS, *(f"pooled/{grid}" for grid in group.grids)]
    return {name: nodes.array(group.group, name) for name in names if name in group.group}


def _done_flags(group: ClassGroup, found: Callable[..., None]) -> np.ndarray:
    """The done mask; a flag that cannot be decoded counts as not done and is a problem."""
    try:
        return group.done
    except Exception:
        flags = np.zeros(group.n_chunks, dtype=bool)
        done = nodes.array(group.group, "done")
        for index in range(group.n_chunks):
            try:
                flags[index] = bool(done[index])
            except Exception as error:
                found(f"the done flag of chunk {index} cannot be decoded ({_reason(error)})", chunk=index)
        return flags


def _decode(read: Callable[[Any], Any], argument: Any) -> tuple[Any, str | None]:
    """``(read(argument), None)``, or ``(None, why it failed)``. Any exception counts: codecs
    raise many kinds (a checksum mismatch is a ValueError, blosc a RuntimeError, ...)."""
    try:
        return read(argument), None
    except Exception as error:
        return None, _reason(error)


def _reason(error: Exception) -> str:
    if isinstance(error, ValueError) and "checksum" in str(error).lower():
        return "checksum mismatch"
    return f"{type(error).__name__}: {str(error)[:100]}"
