"""Per-class writer lock: one lock file holding the owner's pid, host and start time.

A second writer for the same class gets a clear :class:`StoreError` (or waits). A lock
whose owner process is gone (same host, pid dead or reused by a younger process) is
stale: it is taken over, so a killed run never blocks the store forever. A lock held on
another host cannot be checked and is always respected. Taking a lock is serialised by
``fcntl.flock`` on a guard file, so two processes can never both take over a stale lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path

import psutil

from spray.errors import StoreError


def _this_process() -> dict:
    me = psutil.Process()
    return {"pid": me.pid, "host": socket.gethostname(), "create_time": me.create_time(), "since": time.time()}


def owner_is_alive(owner: dict) -> bool:
    """Whether the process recorded in a lock still runs (assumed yes on another host)."""
    if not owner:  # an unreadable record: no process can be waiting on it
        return False
    if owner.get("host") != socket.gethostname():
        return True
    try:
        process = psutil.Process(int(owner["pid"]))
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        # A pid reused by a process started after the lock was written is not the owner.
        return process.create_time() <= float(owner.get("create_time", float("inf"))) + 1.0
    except (psutil.NoSuchProcess, KeyError, ValueError, TypeError):
        return False


class WriterLock:
    """Exclusive writer lock for one class group (a context manager)."""

    def __init__(self, path: str | os.PathLike, what: str, *, wait: bool = False, poll_s: float = 0.5) -> None:
        self.path, self.what, self.wait, self.poll_s = Path(path), what, wait, poll_s
        self._owner: dict | None = None

    def acquire(self) -> "WriterLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            holder = self._try_acquire()
            if holder is None:
                return self
            if not self.wait:
                raise StoreError(
                    f"{self.what} is being written by pid {holder.get('pid')} on {holder.get('host')} "
                    f"(lock {self.path}); wait for that run to finish, or pass --wait to queue behind it"
                )
            time.sleep(self.poll_s)

    def _try_acquire(self) -> dict | None:
        """Take the lock and return None, or return the live holder's record."""
        guard = self.path.with_name(self.path.name + ".guard")
        with open(guard, "a") as guard_file:
            fcntl.flock(guard_file, fcntl.LOCK_EX)
            try:
                holder = self.read_owner()
                if holder is not None and owner_is_alive(holder):
                    return holder
                owner = _this_process()
                tmp = self.path.with_name(f"{self.path.name}.{owner['pid']}.tmp")
                tmp.write_text(json.dumps(owner))
                os.replace(tmp, self.path)
                self._owner = owner
                return None
            finally:
                fcntl.flock(guard_file, fcntl.LOCK_UN)

    def read_owner(self) -> dict | None:
        """The current lock record, or None when unlocked (an unreadable record counts as stale)."""
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}

    def release(self) -> None:
        if self._owner is not None and self.read_owner() == self._owner:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        self._owner = None

    def __enter__(self) -> "WriterLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
