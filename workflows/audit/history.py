"""The audit history: a Parquet table beside the Zarr store, one file per audit.

Each audit is written to a hidden temporary file and renamed into place, so a finished
audit appears whole and an interrupted one leaves nothing behind but an ignored temp file.
Earlier audits are never rewritten, so no crash can lose them. The folder is an ordinary
Parquet dataset: ``pandas.read_parquet("<store>.audit-history")`` reads the whole table.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from spray.errors import StoreError
from workflows.audit.record import COLUMNS, SCHEMA

_PREFIX, _SUFFIX = "audit-", ".parquet"


class AuditHistory:
    """The audit table stored in the folder ``path`` (created on the first append)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def append(self, frame: pd.DataFrame) -> Path:
        """Commit the rows of one audit atomically and return the file they went to."""
        audit_ids = frame["audit_id"].unique()
        if len(audit_ids) != 1:
            raise ValueError(f"one audit per append, got audit ids {list(audit_ids)}")
        self.path.mkdir(parents=True, exist_ok=True)
        final = self.path / f"{_PREFIX}{audit_ids[0]}{_SUFFIX}"
        # pyarrow datasets skip names starting with "." — a half-written file is never read.
        temporary = self.path / f".{final.name}.{os.getpid()}.tmp"
        table = pa.Table.from_pandas(frame[COLUMNS], schema=SCHEMA, preserve_index=False)
        pq.write_table(table, temporary)
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, final)
        _fsync_folder(self.path)
        return final

    def read(self, model_name: str | None = None) -> pd.DataFrame:
        """Every committed audit (optionally of one model name), oldest first."""
        files = sorted(self.path.glob(f"{_PREFIX}*{_SUFFIX}"))
        if not files:
            return SCHEMA.empty_table().to_pandas()
        try:
            frame = pa.concat_tables([pq.read_table(file, schema=SCHEMA) for file in files]).to_pandas()
        except (OSError, pa.ArrowInvalid) as error:
            raise StoreError(
                f"the audit history {self.path} has an unreadable file ({error}); move that file aside"
            ) from None
        frame["tag"] = frame["tag"].fillna("")  # audits recorded before tags existed
        if model_name is not None:
            frame = frame[frame["model_name"] == model_name]
        return frame.sort_values(["started_at", "audit_id", "class_name", "cluster"], kind="stable").reset_index(
            drop=True
        )

    def latest(self, model_name: str) -> pd.DataFrame | None:
        """The rows of the most recent audit of ``model_name``, or None before the first one."""
        return last_audit(self.read(model_name))


def last_audit(history: pd.DataFrame) -> pd.DataFrame | None:
    """The rows of the most recent audit in ``history`` (as :meth:`AuditHistory.read` orders it)."""
    if history.empty:
        return None
    return history[history["audit_id"] == history["audit_id"].iloc[-1]].reset_index(drop=True)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX: the directory entry lives in the folder)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


__all__ = ["AuditHistory", "last_audit"]
