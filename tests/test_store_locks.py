"""The per-class writer lock: a second writer is refused (or waits), a dead owner's lock is taken over."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time

import pytest

from relevance_store import ClassKey, StoreError, open_store
from relevance_store.locks import WriterLock

KEY = ClassKey("model", "data", "v" * 16, "horse")


def lock_record(pid: int, host: str | None = None, create_time: float = 0.0) -> str:
    return json.dumps({"pid": pid, "host": host or socket.gethostname(), "create_time": create_time, "since": 0})


def test_second_writer_gets_a_clear_error_and_the_first_keeps_the_lock(tmp_path):
    store = open_store(tmp_path / "s.zarr", "a")
    with store.writer_lock(KEY) as first:
        with pytest.raises(StoreError, match=r"class 'horse' .* is being written by pid .*--wait"):
            store.writer_lock(KEY).acquire()
        assert first.read_owner()["pid"] == first._owner["pid"]
    assert not first.path.exists()


def test_second_writer_held_by_another_process_is_refused(tmp_path):
    store = open_store(tmp_path / "s.zarr", "a")
    code = (
        "import sys, time; from relevance_store import open_store, ClassKey; "
        f"lock = open_store({str(tmp_path / 's.zarr')!r}, 'a').writer_lock(ClassKey('model', 'data', 'vvvvvvvvvvvvvvvv', 'horse')); "
        "lock.acquire(); print('locked', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreError, match=f"pid {holder.pid}"):
            store.writer_lock(KEY).acquire()
    finally:
        holder.kill()
        holder.wait()
    with store.writer_lock(KEY):  # its owner is gone now: stale, taken over
        pass


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    store = open_store(tmp_path / "s.zarr", "a")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock = store.writer_lock(KEY)
    lock.path.parent.mkdir(parents=True)
    lock.path.write_text(lock_record(dead.pid))
    with lock:
        assert lock.read_owner()["pid"] != dead.pid


def test_lock_of_a_reused_pid_is_stale(tmp_path):
    """A live process that started after the lock's owner did (a reused pid) is not its owner."""
    lock = WriterLock(tmp_path / "x.lock", "class 'x'")
    lock.path.write_text(lock_record(1, create_time=0.0))  # pid 1 lives, but was created at boot, not t=0
    with lock:
        assert lock.read_owner()["pid"] != 1


def test_lock_held_on_another_host_is_respected(tmp_path):
    lock = WriterLock(tmp_path / "x.lock", "class 'x'")
    lock.path.write_text(lock_record(12345, host="elsewhere.invalid"))
    with pytest.raises(StoreError, match=r"elsewhere.invalid"):
        lock.acquire()


def test_wait_queues_behind_the_current_writer(tmp_path):
    first = WriterLock(tmp_path / "x.lock", "class 'x'").acquire()
    releaser = threading.Timer(0.6, first.release)
    releaser.start()
    started = time.monotonic()
    with WriterLock(tmp_path / "x.lock", "class 'x'", wait=True, poll_s=0.05) as second:
        waited = time.monotonic() - started
        assert second.read_owner() == second._owner
    assert waited >= 0.5
