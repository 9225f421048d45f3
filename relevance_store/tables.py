"""Tables inside the store: a pandas DataFrame as Parquet bytes in a one-chunk uint8 Zarr array.

Analyses and verification experiments keep their tables this way, so no foreign file enters
the Zarr hierarchy and a remote store works too. The bytes carry a crc32c like every chunk
(``relevance_store.codecs``), so a damaged table fails to decode instead of being misread.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import zarr
from zarr.codecs import Crc32cCodec


def write_table(group: zarr.Group, name: str, table: pd.DataFrame, index: bool = False) -> None:
    """Store ``table`` as the array ``name`` of ``group`` (replacing it)."""
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=index)
    data = np.frombuffer(buffer.getvalue(), dtype=np.uint8)
    group.create_array(
        name, shape=data.shape, chunks=data.shape, dtype="uint8", compressors=[Crc32cCodec()], overwrite=True
    )[...] = data


def read_table(array: zarr.Array) -> pd.DataFrame:
    """The DataFrame a :func:`write_table` array holds."""
    return pd.read_parquet(io.BytesIO(np.asarray(array[...]).tobytes()))


__all__ = ["read_table", "write_table"]
