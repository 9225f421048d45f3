"""Lock leases across hosts (heartbeat + expiry), `spray unlock`, bounded lock file names, and
where the lock files live."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from click.testing import CliRunner

from relevance_store import ClassKey, StoreError, open_store
from relevance_store.locks import LEASE_S, MAX_NAME_BYTES, WriterLock, locks_folder
from spray.cli import cli
from workflows.audit.lock import AuditRunningError, audit_lock, audit_lock_path

KEY = ClassKey("m" * 16, "d" * 16, "v" * 16, "horse")


def foreign_record(heartbeat_age_s: float, pid: int = 4242) -> dict:
    now = time.time()
    return {
        "pid": pid,
        "host": "gone-container-7f3a",
        "create_time": 0.0,
        "since": now - 3600,
        "heartbeat": now - heartbeat_age_s,
        "what": "class 'horse' in s.zarr",
        "token": "theirs",
    }


def plant(path, record: dict) -> None:
    """A lock file as another host left it: its mtime is its last heartbeat."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    os.utime(path, (record["heartbeat"], record["heartbeat"]))


def test_a_lock_of_another_host_with_a_recent_heartbeat_is_respected(tmp_path):
    lock = WriterLock(tmp_path / "x.lock", "class 'x'", unlock_hint="; try spray unlock")
    plant(lock.path, foreign_record(heartbeat_age_s=5))
    with pytest.raises(StoreError, match=r"pid 4242 on gone-container-7f3a.*last heartbeat [56] s ago.*spray unlock"):
        lock.acquire()


def test_a_lock_of_another_host_whose_heartbeat_stopped_is_stale_and_taken_over(tmp_path):
    lock = WriterLock(tmp_path / "x.lock", "class 'x'")
    plant(lock.path, foreign_record(heartbeat_age_s=LEASE_S + 5))
    with lock:
        assert lock.read_owner()["host"] != "gone-container-7f3a"


def test_wait_behind_another_hosts_lock_ends_when_its_lease_expires(tmp_path):
    lock = WriterLock(tmp_path / "x.lock", "class 'x'", wait=True, poll_s=0.05, lease_s=1.0)
    plant(lock.path, foreign_record(heartbeat_age_s=0.0))
    started = time.monotonic()
    with lock:
        waited = time.monotonic() - started
    assert 0.8 <= waited < 10  # waited for the lease, not forever


HOLDER = textwrap.dedent("""
    import socket, sys, time
    socket.gethostname = lambda: "other-host"  # this process plays a second machine
    from relevance_store.locks import WriterLock
    lock = WriterLock(sys.argv[1], "class 'x'", heartbeat_s=0.1, lease_s=1.0).acquire()
    print("locked", flush=True)
    time.sleep(120)
""")


def test_a_live_holder_on_another_host_keeps_its_lease_by_heartbeat_until_it_stops(tmp_path):
    path = tmp_path / "x.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        first = json.loads(path.read_text())["heartbeat"]
        time.sleep(2.0)  # twice the lease: only heartbeats keep it
        assert json.loads(path.read_text())["heartbeat"] > first
        with pytest.raises(StoreError, match="other-host"):
            WriterLock(path, "class 'x'", lease_s=1.0).acquire()
        os.kill(holder.pid, signal.SIGSTOP)  # the machine freezes: no more heartbeats
        time.sleep(1.5)
        with WriterLock(path, "class 'x'", lease_s=1.0) as taken:
            assert taken.read_owner()["host"] != "other-host"
    finally:
        holder.kill()
        holder.wait()


def test_a_holder_whose_lock_was_taken_over_stops_refreshing_it_and_knows(tmp_path):
    lock = WriterLock(tmp_path / "x.lock", "class 'x'", heartbeat_s=0.05).acquire()
    intruder = {**foreign_record(0.0), "token": "intruder"}
    lock.path.write_text(json.dumps(intruder))
    time.sleep(0.3)
    assert lock.lost and json.loads(lock.path.read_text())["token"] == "intruder"
    lock.release()
    assert lock.path.exists()  # the new owner's lock is not removed


def test_many_held_locks_share_one_heartbeat_thread_and_all_stay_fresh(tmp_path):
    """A run over 1000 classes holds 1000 locks: one thread beats them all, not one thread each."""
    before = threading.active_count()
    locks = [WriterLock(tmp_path / f"c{i}.lock", f"class 'c{i}'", heartbeat_s=0.05).acquire() for i in range(50)]
    started = time.time()
    time.sleep(0.4)
    try:
        assert threading.active_count() <= before + 1
        assert all(json.loads(lock.path.read_text())["heartbeat"] > started for lock in locks)
    finally:
        for lock in locks:
            lock.release()
    time.sleep(0.2)  # a released lock is not written again
    assert not any(lock.path.exists() for lock in locks)


def test_audit_locks_have_the_same_lease(tmp_path):
    store = tmp_path / "store.zarr"
    path = audit_lock_path(store)
    assert path.parent == locks_folder(store.resolve()) and path.name == "audit.lock"
    plant(path, foreign_record(heartbeat_age_s=3))
    with pytest.raises(AuditRunningError, match=r"gone-container-7f3a.*spray unlock"), audit_lock(store):
        pass
    plant(path, foreign_record(heartbeat_age_s=LEASE_S + 1))
    with audit_lock(store):
        assert json.loads(path.read_text())["host"] != "gone-container-7f3a"
    assert not path.exists()


def test_a_class_name_of_many_cjk_characters_gets_a_short_unique_lock_file(tmp_path):
    store = open_store(tmp_path / "s.zarr", "a")
    long_a, long_b = "马" * 22 + "甲", "马" * 22 + "乙"
    with (
        store.writer_lock(KEY._replace(class_name=long_a)) as a,
        store.writer_lock(KEY._replace(class_name=long_b)) as b,
    ):
        assert a.path != b.path and a.path.parent == b.path.parent
        assert len(a.path.name.encode()) <= MAX_NAME_BYTES and a.path.name.endswith(".lock")
    with store.writer_lock(KEY._replace(class_name="horse")) as short:
        assert short.path.name == "m" * 16 + "__" + "d" * 16 + "__" + "v" * 16 + "__horse.lock"


def unlock_cli(*args: str, answer: str | None = None):
    return CliRunner().invoke(cli, ["unlock", *args], input=answer)


def test_unlock_lists_what_it_would_remove_warns_and_asks(tmp_path):
    store = tmp_path / "s.zarr"
    open_store(store, "a")
    class_lock = open_store(store, "a").writer_lock(KEY).path
    plant(class_lock, foreign_record(heartbeat_age_s=10))
    plant(audit_lock_path(store), foreign_record(heartbeat_age_s=LEASE_S + 100, pid=77))

    declined = unlock_cli("--store", str(store), answer="n\n")
    assert declined.exit_code == 1 and class_lock.exists() and audit_lock_path(store).exists()
    text = declined.output
    assert "2 lock(s)" in text and class_lock.name in text and "audit.lock" in text
    assert "pid 4242 on gone-container-7f3a" in text and "[ALIVE" in text and "pid 77" in text and "[stale]" in text
    assert "WARNING" in text and "corrupt" in text

    accepted = unlock_cli(str(store), answer="y\n")
    assert accepted.exit_code == 0 and "removed 2 lock file(s)" in accepted.output
    assert not class_lock.exists() and not audit_lock_path(store).exists()
    assert unlock_cli("--store", str(store)).output.startswith(f"{store}: no locks")


def test_unlock_yes_removes_without_asking(tmp_path):
    store = tmp_path / "s.zarr"
    plant(audit_lock_path(store), foreign_record(heartbeat_age_s=1))
    result = unlock_cli("--store", str(store), "--yes")
    assert result.exit_code == 0 and not audit_lock_path(store).exists() and "WARNING" in result.output


def test_lock_files_live_beside_the_store_where_zarr_never_lists_them(tmp_path):
    store = open_store(tmp_path / "s.zarr", "a")
    with store.writer_lock(KEY) as lock:
        assert lock.path.parent == tmp_path / "s.zarr.locks"
    assert not list((tmp_path / "s.zarr.locks").glob("*.lock"))  # released: no lock file stays
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr", "s.zarr.locks"]
