"""Analysis results of a class: ``analysis/<params-hash>/`` with arrays, tables and attrs.

The hash covers *all* parameters (CoRelAy keyed its cache without some and served stale
results, ARCHITECTURE.md), so another grid, k or seed is another entry. Entries are written
arrays first and the ``complete`` flag last; readers skip incomplete ones.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import pandas as pd
import zarr

from relevance_store.codecs import compressors
from relevance_store.naming import ClassKey, encode_name
from relevance_store.nodes import array, json_mapping, json_number, subgroup
from relevance_store.tables import read_table, write_table
from spray.errors import StoreError

ANALYSIS = "analysis"
Member = TypeVar("Member")


def _jsonable(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def to_json(value: Mapping) -> dict:
    """``value`` as plain JSON types (numpy scalars and tuples converted)."""
    return json.loads(json.dumps(dict(value), sort_keys=True, default=_jsonable))


def params_hash(params: Mapping) -> str:
    """Stable 16-hex-digit digest of the canonical JSON of ``params``."""
    canonical = json.dumps(to_json(params), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _check_name(name: str) -> str:
    if encode_name(name) != name:
        raise StoreError(f"analysis item name {name!r} must use only letters, digits, '_' and '-' (not leading '_')")
    return name


@dataclass
class AnalysisResult:
    """One stored analysis: its parameters, arrays, tables (pandas) and extra attrs."""

    params_hash: str
    params: dict
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)
    tables: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)
    written_at: float = 0.0

    def read_all(self) -> AnalysisResult:
        """This result with every array and table read now (they load when first used)."""
        for members in (self.arrays, self.tables):
            for name in members:
                members[name]
        return self


def write_analysis(
    group: zarr.Group, params: Mapping, arrays: Mapping[str, np.ndarray], tables: Mapping, attrs: Mapping
) -> str:
    """Store one analysis under ``analysis/<params_hash(params)>`` (replacing it) and return the hash."""
    digest = params_hash(params)
    arrays, tables = dict(arrays.items()), dict(tables.items())  # read now: they may be this entry's own members
    node = group.require_group(ANALYSIS).create_group(digest, overwrite=True)
    for name, value in arrays.items():
        value, path = np.asarray(value), f"arrays/{_check_name(name)}"
        if value.dtype.kind in "OUS":  # variable-length strings: the stable Zarr v3 string type
            node.create_array(path, shape=value.shape, dtype=str, fill_value="", compressors=compressors())[...] = (
                value.astype(str)
            )
        else:
            node.create_array(path, data=value, compressors=compressors())
    for name, table in tables.items():
        write_table(node.require_group("tables"), _check_name(name), table, index=True)
    members = {"arrays": sorted(arrays), "tables": sorted(tables)}
    node.update_attributes(
        {
            "params": to_json(params),
            "attrs": to_json(attrs),
            "members": members,
            "written_at": time.time(),
            "complete": True,
        }
    )
    return digest


def analysis_hashes(group: zarr.Group) -> list[str]:
    """Hashes of complete analyses, oldest first."""
    if ANALYSIS not in group:
        return []
    entries = [
        (node.attrs.get("written_at", 0.0), name)
        for name, node in subgroup(group, ANALYSIS).groups()
        if node.attrs.get("complete")
    ]
    return [name for _, name in sorted(entries)]


def read_analysis(group: zarr.Group, key: ClassKey, digest: str | None = None) -> AnalysisResult:
    """The analysis ``digest`` (default: the latest written) of a class group; its arrays and tables
    are read when first used (:class:`StoredMembers`)."""
    node = _complete_entry(group, digest) if digest else None
    if node is None or digest is None:
        hashes = analysis_hashes(group)
        if not hashes:
            raise StoreError(f"no analysis stored for {key}; run `spray analyze` first")
        if digest:
            raise StoreError(f"no analysis {digest!r} stored for {key}; stored: {', '.join(hashes)}")
        digest = hashes[-1]
        node = subgroup(group, f"{ANALYSIS}/{digest}")
    members = json_mapping(node.attrs.get("members") or _listed_members(node), "analysis members")
    return AnalysisResult(
        digest,
        json_mapping(node.attrs["params"], "analysis params"),
        arrays=StoredMembers(node, "arrays", members.get("arrays", []), _read_array),
        tables=StoredMembers(node, "tables", members.get("tables", []), read_table),
        attrs=json_mapping(node.attrs["attrs"], "analysis attrs"),
        written_at=json_number(node.attrs["written_at"], "analysis written_at"),
    )


def _read_array(array: zarr.Array) -> np.ndarray:
    return np.asarray(array[...])


def _complete_entry(group: zarr.Group, digest: str) -> zarr.Group | None:
    """The complete entry ``digest`` of the group, None when there is none (checked without listing
    every entry: a run reads 1000 classes' analyses back)."""
    if not re.fullmatch(r"[0-9a-f]{16}", digest) or ANALYSIS not in group or digest not in subgroup(group, ANALYSIS):
        return None
    node = subgroup(group, f"{ANALYSIS}/{digest}")
    return node if node.attrs.get("complete") else None


def _listed_members(node: zarr.Group) -> dict[str, list[str]]:
    """The names of an entry's arrays and tables, listed (entries written before ``members`` was kept)."""
    return {kind: sorted(subgroup(node, kind).array_keys()) if kind in node else [] for kind in ("arrays", "tables")}


class StoredMembers(Mapping[str, Member]):
    """The arrays (or tables) of a stored analysis entry, each read on first use and then kept.

    A run reads every class's analysis back, while its summary and an unchanged report page use a
    few small members (eigenvalues, the cluster table), not the embeddings or eigenvectors: read
    all at once, an entry of a 64-image class took 26 ms (a 1000-class store, page cache warm).
    A member read after its entry was replaced or removed raises a StoreError (read it again).
    Pickled (to a report process), it carries no member already read."""

    def __init__(self, node: zarr.Group, kind: str, names: list[str], read: Callable[[zarr.Array], Member]) -> None:
        self._node, self._kind, self._names, self._read = node, kind, list(names), read
        self._loaded: dict[str, Member] = {}

    def __getitem__(self, name: str) -> Member:
        if name not in self._names:
            raise KeyError(name)
        if name not in self._loaded:
            try:
                self._loaded[name] = self._read(array(self._node, f"{self._kind}/{name}"))
            except (KeyError, OSError) as error:
                raise StoreError(
                    f"the analysis entry {self._node.path} changed or was removed since it was opened "
                    f"({name!r}: {error}); read the analysis again"
                ) from None
        return self._loaded[name]

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_loaded": {}}

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)
