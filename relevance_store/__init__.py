"""The Zarr store of relevance maps: layout, schema version, chunk-aligned writes,
completion masks (resume), provenance, locks and integrity checks. Never imports torch.

Reader API (docs/interfaces.md, ``relevance_store``)::

    from relevance_store import open_store
    store = open_store("spray-store.zarr")                  # mode "r" | "r+" | "a"
    group = store.find_class("aeroplane")                   # or store.class_group(ClassKey(...))
    group.sample_ids, group.scores, group.labels, group.pooled(20), group.valid
    group.full, group.thumbnails                            # lazy Zarr arrays (or None)
    group.done, group.complete, group.errors, group.provenance
    group.write_analysis(params, arrays, tables, attrs) -> params hash
    group.read_analysis(params_hash=None)                   # latest by default
"""

from relevance_store.analysis import AnalysisResult, params_hash
from relevance_store.class_group import ClassGroup
from relevance_store.integrity import check_store, summarise
from relevance_store.naming import ClassKey, decode_name, encode_name
from relevance_store.store import FORMAT, SCHEMA_VERSION, RelevanceStore, open_store
from spray.errors import StoreError

__all__ = [
    "FORMAT",
    "SCHEMA_VERSION",
    "AnalysisResult",
    "ClassGroup",
    "ClassKey",
    "RelevanceStore",
    "StoreError",
    "check_store",
    "decode_name",
    "encode_name",
    "open_store",
    "params_hash",
    "summarise",
]
