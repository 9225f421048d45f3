"""Compression of the stored arrays.

Full-resolution relevance keeps 12 mantissa bits (``BitRound(keepbits=12)``) before blosc
zstd: measured at ~1.9x with ~7e-5 relative error (ARCHITECTURE.md, Zarr facts), where
lossless float32 gives <= 1.2x and float16 flushes the ~1e-5 per-pixel values of typical
maps to zero. Pooled maps, scores and everything else are stored losslessly.

Every chunk ends with a crc32c of its compressed bytes (Zarr 3's built-in ``crc32c`` codec,
4 bytes a chunk): without it, 8 flipped bytes inside a compressed score chunk decoded to
other finite numbers and went unnoticed (issue 14). A chunk whose checksum does not match
fails to decode; ``spray check`` names it and ``spray check --repair`` has it recomputed.
"""

from __future__ import annotations

import warnings

from zarr.codecs import BloscCodec, Crc32cCodec
from zarr.codecs.numcodecs import BitRound
from zarr.errors import ZarrUserWarning

FULL_MAP_KEEPBITS = 12

# BitRound is a numcodecs codec: readable by zarr-python, which is what spray uses.
warnings.filterwarnings("ignore", message="Numcodecs codecs are not in the Zarr version 3", category=ZarrUserWarning)


def full_map_filters() -> list:
    """Array-to-array filters for the full relevance maps (bounded-error rounding)."""
    return [BitRound(keepbits=FULL_MAP_KEEPBITS)]


def compressors() -> list:
    """Bytes-to-bytes codecs for every array: blosc zstd with bit shuffling, then a crc32c checksum."""
    return [BloscCodec(cname="zstd", clevel=5, shuffle="bitshuffle"), Crc32cCodec()]
