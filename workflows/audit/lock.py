"""One audit at a time per store.

Two audits of the same store would compute into the same class groups and race on the
history; the second one stops at once with a message naming the running one. The lock is
``audit.lock`` in the store's locks folder (``<store>.locks/``, beside the store, with the
class writer locks) and holds the owner's pid, host, start time and heartbeat. A lock left
by a process that died (crash, ``kill -9``, power cut) is taken over at once on the same
host, and after its lease (60 s without heartbeat) when it was taken on another host (a
container restarted under a new host name), so a failed night never blocks the next one.
The mechanics are the store's writer lock (:class:`relevance_store.locks.WriterLock`);
``spray unlock`` removes a lock by hand.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from relevance_store.locks import WriterLock, describe_owner
from relevance_store.store import local_path
from spray.errors import SprayError, StoreError

AUDIT_LOCK = "audit"


class AuditRunningError(SprayError):
    """Another audit holds the lock of this store."""


def _lock(store: str | Path) -> WriterLock:
    return WriterLock.beside_store(local_path(str(store)), AUDIT_LOCK, f"the audit of {store}")


def audit_lock_path(store: str | Path) -> Path:
    """Where the audit lock of ``store`` lives: ``<store>.locks/audit.lock``."""
    return _lock(store).path


@contextlib.contextmanager
def audit_lock(store: str | Path) -> Iterator[None]:
    """Hold the audit lock of ``store`` for the ``with`` block, or raise :class:`AuditRunningError`."""
    lock = _lock(store)
    try:
        lock.acquire()
    except StoreError:
        holder = lock.read_owner() or {}
        raise AuditRunningError(
            f"another audit of store {store} is running ({describe_owner(holder, lock.path)}); wait for it to "
            f"finish, this audit did nothing{lock.unlock_hint}"
        ) from None
    try:
        yield
    finally:
        lock.release()


__all__ = ["AuditRunningError", "audit_lock", "audit_lock_path"]
