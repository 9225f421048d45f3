"""Writer locks with a lease: one lock file per class (or audit) holding its owner and a heartbeat.

A second writer for the same class gets a clear :class:`StoreError` (or waits). While a
lock is held, its record is rewritten every ``HEARTBEAT_S`` (5 s), by one heartbeat thread
per process for all the locks it holds (a run over 1000 classes holds 1000). A lock is
stale, and taken over, when

- its owner ran on this host and is gone (pid dead, a zombie, or reused by a younger
  process): at once, so a killed run never blocks the store; or
- its owner ran on another host and its heartbeat is older than ``LEASE_S`` (60 s): the
  host stopped refreshing it (crashed, powered off, a container restarted under a new host
  name). The age is taken from the newer of the record's heartbeat and the file's mtime,
  so hosts sharing a store need clocks that agree to well within a minute (NTP).

Taking a lock and refreshing it are serialised by ``fcntl.flock`` on one ``.guard`` file in
the locks folder, so two processes can never both take over a stale lock, and a heartbeat
never overwrites a lock taken over meanwhile (the holder then counts it as ``lost``).

The locks live in ``<store>.locks/`` beside the store, not inside it: Zarr 3 warns
("Object at .locks is not recognized as a component of a Zarr hierarchy") on every
listing of a group holding a foreign file. ``spray unlock`` lists and removes them.
Every lock file name is bounded (:func:`lock_file_name`): a class name of 23 CJK
characters made one longer than the 255 bytes file systems allow.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil

from spray.errors import StoreError

HEARTBEAT_S = 5.0
"""Seconds between two refreshes of a held lock's record."""
LEASE_S = 60.0
"""Seconds without a heartbeat after which a lock of another host is stale (12 missed heartbeats)."""
MAX_NAME_BYTES = 120
"""Longest lock file name: 255 bytes is the usual limit, eCryptfs allows 143, and the
temporary file of a refresh adds its pid to the name."""
GUARD = ".guard"
log = logging.getLogger("spray.locks")


def locks_folder(store_path: str | os.PathLike) -> Path:
    """The folder beside a local store that holds its lock files: ``<store>.locks``."""
    store_path = Path(store_path)
    return store_path.with_name(store_path.name + ".locks")


def lock_file_name(stem: str) -> str:
    """``<stem>.lock``, or, when that is longer than ``MAX_NAME_BYTES``, the stem cut short
    plus ``~`` and 16 hex digits of its sha256 (so two long names never share a file)."""
    name = f"{stem}.lock"
    if len(name.encode()) <= MAX_NAME_BYTES:
        return name
    digest = hashlib.sha256(stem.encode()).hexdigest()[:16]
    keep = MAX_NAME_BYTES - len(f"~{digest}.lock".encode())
    cut = stem.encode()[:keep].decode(errors="ignore")
    return f"{cut}~{digest}.lock"


def _this_process(what: str) -> dict:
    me = psutil.Process()
    now = time.time()
    return {
        "pid": me.pid,
        "host": socket.gethostname(),
        "create_time": me.create_time(),
        "since": now,
        "heartbeat": now,
        "what": what,
        "token": uuid.uuid4().hex,
    }


def heartbeat_age(owner: dict, path: Path | None = None) -> float:
    """Seconds since the record's last heartbeat (or the file's mtime, whichever is newer).

    Records written without a heartbeat count from their ``since``."""
    stamps = [float(owner.get("heartbeat", owner.get("since", 0.0)) or 0.0)]
    if path is not None:
        with contextlib.suppress(OSError):
            stamps.append(path.stat().st_mtime)
    return max(0.0, time.time() - max(stamps))


def owner_is_alive(owner: dict, path: Path | None = None, lease_s: float = LEASE_S) -> bool:
    """Whether the owner recorded in a lock still holds it (see the module docstring)."""
    if not owner:  # an unreadable record: no process can be waiting on it
        return False
    if owner.get("host") != socket.gethostname():
        return heartbeat_age(owner, path) <= lease_s
    try:
        process = psutil.Process(int(owner["pid"]))
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        # A pid reused by a process started after the lock was written is not the owner.
        return process.create_time() <= float(owner.get("create_time", float("inf"))) + 1.0
    except (psutil.NoSuchProcess, KeyError, ValueError, TypeError):
        return False


def describe_owner(owner: dict, path: Path | None = None) -> str:
    """``pid 12 on host-a, started 2026-12-01 02:00:03 UTC, last heartbeat 4 s ago``."""
    since = owner.get("since")
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(since))) if since else "at an unknown time"
    return (
        f"pid {owner.get('pid')} on {owner.get('host')}, started {started}, "
        f"last heartbeat {heartbeat_age(owner, path):.0f} s ago"
    )


@contextlib.contextmanager
def guarded(folder: Path) -> Iterator[None]:
    """Hold the locks folder's guard (``fcntl.flock`` on ``folder/.guard``) for the block."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / GUARD, "a") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(guard, fcntl.LOCK_UN)


def read_record(path: Path) -> dict | None:
    """The lock record at ``path``, None when unlocked, ``{}`` when unreadable (stale)."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}


class WriterLock:
    """Exclusive writer lock with a lease (a context manager); see the module docstring.

    ``unlock_hint`` ends the message of a refused writer (e.g. the ``spray unlock`` command
    for this store).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        what: str,
        *,
        wait: bool = False,
        poll_s: float = 0.5,
        heartbeat_s: float = HEARTBEAT_S,
        lease_s: float = LEASE_S,
        unlock_hint: str = "",
    ) -> None:
        self.path, self.what, self.wait, self.poll_s = Path(path), what, wait, poll_s
        self.heartbeat_s, self.lease_s, self.unlock_hint = heartbeat_s, lease_s, unlock_hint
        self._owner: dict | None = None
        self._stop = threading.Event()
        self.lost = False
        """Set when the record stopped being this lock's (taken over after a lapse, or removed by hand)."""

    @classmethod
    def beside_store(cls, store_path: str | os.PathLike, stem: str, what: str, *, wait: bool = False) -> WriterLock:
        """The lock ``stem`` of the local store at ``store_path``, in its :func:`locks_folder` under a
        bounded name (:func:`lock_file_name`); a refused writer is told about ``spray unlock``."""
        hint = f"; if that run is gone, `spray unlock --store {store_path}` removes the lock (read its warning)"
        return cls(locks_folder(store_path) / lock_file_name(stem), what, wait=wait, unlock_hint=hint)

    def acquire(self) -> WriterLock:
        while True:
            holder = self._try_acquire()
            if holder is None:
                self._start_heartbeat()
                return self
            if not self.wait:
                raise StoreError(
                    f"{self.what} is being written by {describe_owner(holder, self.path)} (lock {self.path}; "
                    f"a lock of another host whose heartbeat stops is taken over after {self.lease_s:.0f} s); "
                    "wait for that run to finish (`spray compute --wait` queues behind it)" + self.unlock_hint
                )
            time.sleep(self.poll_s)

    def _try_acquire(self) -> dict | None:
        """Take the lock and return None, or return the live holder's record."""
        with guarded(self.path.parent):
            holder = self.read_owner()
            if holder is not None and owner_is_alive(holder, self.path, self.lease_s):
                return holder
            if holder:
                log.warning("taking over the stale lock %s of %s", self.path, describe_owner(holder, self.path))
            owner = _this_process(self.what)
            self._write(owner)
            self._owner, self.lost = owner, False
            return None

    def _write(self, record: dict) -> None:
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, self.path)

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        _HEARTBEATS.add(self)

    def beat(self) -> bool:
        """Refresh the record once; False when the lock is no longer this one's (released, taken
        over after a lapse, or removed by hand), so that it needs no more beats."""
        try:
            with guarded(self.path.parent):
                if self._stop.is_set():
                    return False
                owner = self._owner
                if owner is None or not self._is_mine():
                    self.lost = True
                    log.warning("the lock %s of %s was taken over or removed while held", self.path, self.what)
                    return False
                self._owner = {**owner, "heartbeat": time.time()}
                self._write(self._owner)
        except OSError as error:  # a full or unreachable disk: try again at the next beat
            log.warning("could not refresh the lock %s (%s)", self.path, error)
        return True

    def _is_mine(self) -> bool:
        record = self.read_owner()
        if not record or self._owner is None:
            return False
        return bool(record.get("token") == self._owner["token"])

    def read_owner(self) -> dict | None:
        """The current lock record, or None when unlocked (an unreadable record counts as stale)."""
        return read_record(self.path)

    def release(self) -> None:
        self._stop.set()  # a beat that takes the guard after this writes nothing
        _HEARTBEATS.discard(self)
        if self._owner is not None:
            with guarded(self.path.parent):
                if self._is_mine():
                    with contextlib.suppress(FileNotFoundError):
                        self.path.unlink()
        self._owner = None

    def __enter__(self) -> WriterLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


class _Heartbeats:
    """One daemon thread that beats every held lock of this process when it is due (each lock
    every ``heartbeat_s``), instead of a thread per lock."""

    def __init__(self) -> None:
        self._due: dict[WriterLock, float] = {}
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, lock: WriterLock) -> None:
        with self._changed:
            self._due[lock] = time.monotonic() + lock.heartbeat_s
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="spray lock heartbeats", daemon=True)
                self._thread.start()
            self._changed.notify()

    def discard(self, lock: WriterLock) -> None:
        with self._changed:
            self._due.pop(lock, None)
            self._changed.notify()

    def _run(self) -> None:
        while True:
            with self._changed:
                now = time.monotonic()
                due = [lock for lock, at in self._due.items() if at <= now]
                if not due:
                    self._changed.wait(min(self._due.values()) - now if self._due else None)
                    continue
                for lock in due:
                    self._due[lock] = now + lock.heartbeat_s
            for lock in due:
                if not lock.beat():
                    self.discard(lock)


_HEARTBEATS = _Heartbeats()


def list_locks(folder: Path) -> list[tuple[Path, dict]]:
    """Every lock file in ``folder`` with its record (``{}`` when unreadable), by name."""
    if not folder.is_dir():
        return []
    return [(path, read_record(path) or {}) for path in sorted(folder.glob("*.lock"))]


def remove_locks(paths: list[Path]) -> None:
    """Delete lock files (under the guard, so no acquisition is half-way)."""
    if paths:
        with guarded(paths[0].parent):
            for path in paths:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
