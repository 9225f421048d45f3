"""One audit at a time per store.

Two audits of the same store would compute into the same class groups and race on the
history; the second one stops at once with a message naming the running one. The lock file
sits beside the store (``<store>.audit.lock``) and holds the owner's pid, host and start
time; a lock left by a process that died (crash, ``kill -9``, power cut) is taken over, so a
failed night never blocks the next one. The mechanics are the store's writer lock
(:class:`relevance_store.locks.WriterLock`).
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterator
from pathlib import Path

from relevance_store.locks import WriterLock
from spray.errors import SprayError, StoreError


class AuditRunningError(SprayError):
    """Another audit holds the lock of this store."""


def audit_lock_path(store: str | Path) -> Path:
    store = Path(store)
    return store.with_name(store.name + ".audit.lock")


@contextlib.contextmanager
def audit_lock(store: str | Path) -> Iterator[None]:
    """Hold the audit lock of ``store`` for the ``with`` block, or raise :class:`AuditRunningError`."""
    lock = WriterLock(audit_lock_path(store), f"the audit of {store}")
    try:
        lock.acquire()
    except StoreError:
        holder = lock.read_owner() or {}
        since = holder.get("since")
        started = (
            datetime.datetime.fromtimestamp(float(since), tz=datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            if since
            else "an unknown time"
        )
        raise AuditRunningError(
            f"another audit of store {store} is running (pid {holder.get('pid')} on {holder.get('host')}, "
            f"started {started}); wait for it to finish, this audit did nothing"
        ) from None
    try:
        yield
    finally:
        lock.release()


__all__ = ["AuditRunningError", "audit_lock", "audit_lock_path"]
