"""The Zarr store of relevance maps: layout, schema version, chunk-aligned writes,
completion masks (resume), provenance, locks and integrity checks. Never imports torch."""
