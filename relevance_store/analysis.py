"""Analysis results of a class: ``analysis/<params-hash>/`` with arrays, tables and attrs.

The hash covers *all* parameters (CoRelAy keyed its cache without some and served stale
results, ARCHITECTURE.md), so another grid, k or seed is another entry. Entries are written
arrays first and the ``complete`` flag last; readers skip incomplete ones.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import zarr

from relevance_store.codecs import compressors
from relevance_store.naming import ClassKey, encode_name
from relevance_store.nodes import json_mapping, json_number, subgroup
from relevance_store.tables import read_table, write_table
from spray.errors import StoreError

ANALYSIS = "analysis"


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
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    tables: dict = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)
    written_at: float = 0.0


def write_analysis(
    group: zarr.Group, params: Mapping, arrays: Mapping[str, np.ndarray], tables: Mapping, attrs: Mapping
) -> str:
    """Store one analysis under ``analysis/<params_hash(params)>`` (replacing it) and return the hash."""
    digest = params_hash(params)
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
    node.attrs.update({"params": to_json(params), "attrs": to_json(attrs), "written_at": time.time(), "complete": True})
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
    """Load the analysis ``digest`` (default: the latest written) of a class group."""
    hashes = analysis_hashes(group)
    if not hashes:
        raise StoreError(f"no analysis stored for {key}; run `spray analyze` first")
    digest = digest or hashes[-1]
    if digest not in hashes:
        raise StoreError(f"no analysis {digest!r} stored for {key}; stored: {', '.join(hashes)}")
    node = subgroup(group, f"{ANALYSIS}/{digest}")
    result = AnalysisResult(
        digest,
        json_mapping(node.attrs["params"], "analysis params"),
        attrs=json_mapping(node.attrs["attrs"], "analysis attrs"),
        written_at=json_number(node.attrs["written_at"], "analysis written_at"),
    )
    if "arrays" in node:
        result.arrays = {name: np.asarray(array[...]) for name, array in subgroup(node, "arrays").arrays()}
    if "tables" in node:
        result.tables = {name: read_table(array) for name, array in subgroup(node, "tables").arrays()}
    return result
