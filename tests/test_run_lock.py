"""One run per data root: a second run is refused naming the lock; stale locks are replaced."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from med_unlearning.run_lock import (
    LOCK_NAME,
    UNREADABLE_GRACE_S,
    RunLock,
    RunLockedError,
    process_alive,
)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _write_lock(root: Path, pid: int) -> Path:
    path = root / LOCK_NAME
    root.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": pid, "started_at": "t"}))
    return path


def test_second_lock_is_refused_naming_the_file_and_owner(tmp_path: Path) -> None:
    first = RunLock(tmp_path, "kedro run --pipelines recon")
    first.acquire()
    assert (tmp_path / LOCK_NAME).is_file()
    with pytest.raises(RunLockedError, match=rf"{LOCK_NAME}.*process {os.getpid()}.*recon"):
        RunLock(tmp_path).acquire()
    first.release()
    assert not (tmp_path / LOCK_NAME).exists()
    with RunLock(tmp_path) as again:
        assert again.held
    assert not (tmp_path / LOCK_NAME).exists()


def test_stale_lock_of_a_dead_process_is_replaced(tmp_path: Path, caplog) -> None:
    pid = _dead_pid()
    assert not process_alive(pid)
    _write_lock(tmp_path, pid)
    with caplog.at_level(logging.WARNING), RunLock(tmp_path) as lock:
        assert lock.held
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert "stale run lock" in caplog.text


def test_a_run_is_refused_while_another_live_process_holds_the_data_root(
    kedro_session, tmp_path: Path
) -> None:
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock_file = _write_lock(tmp_path, holder.pid)
        with kedro_session() as session:
            with pytest.raises(RunLockedError, match=str(lock_file)):
                session.run(pipeline_names=["sample_data"])
        assert not (tmp_path / "01_raw").exists()  # nothing ran
        assert json.loads(lock_file.read_text())["pid"] == holder.pid  # theirs, untouched
    finally:
        holder.kill()
        holder.wait()
    with kedro_session() as session:  # the holder is gone: its lock is stale
        session.run(pipeline_names=["sample_data"])
    assert any((tmp_path / "01_raw" / "fastmri").rglob("*.h5"))
    assert not lock_file.exists()  # released at the end


def test_the_lock_is_released_when_a_node_fails(
    kedro_session, tmp_path: Path, monkeypatch
) -> None:
    from med_unlearning.pipelines.sample_data import nodes

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        assert (tmp_path / LOCK_NAME).is_file()  # held while nodes run
        raise RuntimeError("generator failed")

    monkeypatch.setattr(nodes, "lazy_fastmri_sample", broken)
    with kedro_session() as session:
        with pytest.raises(RuntimeError, match="generator failed"):
            session.run(pipeline_names=["sample_data"])
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_lock_from_another_host_is_respected_never_taken_as_stale(tmp_path: Path) -> None:
    """Two hosts on a shared mount: the other host's process cannot be checked from here, so
    its lock stands even when a process with its pid does not exist on this host."""
    pid = _dead_pid()
    other = {"host": f"not-{socket.gethostname()}", "pid": pid, "started_at": "t"}
    lock_file = tmp_path / LOCK_NAME
    lock_file.write_text(json.dumps(other))
    with pytest.raises(RunLockedError, match=rf"process {pid} on {other['host']}"):
        RunLock(tmp_path).acquire()
    assert json.loads(lock_file.read_text()) == other


def test_release_leaves_a_lock_that_another_host_now_holds(tmp_path: Path) -> None:
    lock = RunLock(tmp_path)
    lock.acquire()
    other = {"host": f"not-{socket.gethostname()}", "pid": os.getpid(), "started_at": "t"}
    (tmp_path / LOCK_NAME).write_text(json.dumps(other))  # removed by hand, retaken there
    lock.release()
    assert json.loads((tmp_path / LOCK_NAME).read_text()) == other


def test_an_unreadable_lock_is_stale_only_once_it_is_old(tmp_path: Path, caplog) -> None:
    """A run killed between creating the lock file and writing its record leaves it empty."""
    lock_file = tmp_path / LOCK_NAME
    lock_file.write_text("")
    with pytest.raises(RunLockedError, match=LOCK_NAME):
        RunLock(tmp_path).acquire()  # may be a live run still writing it
    old = lock_file.stat().st_mtime - UNREADABLE_GRACE_S - 5
    os.utime(lock_file, (old, old))
    with caplog.at_level(logging.WARNING), RunLock(tmp_path) as lock:
        assert lock.held
        assert json.loads(lock_file.read_text())["pid"] == os.getpid()
    assert "no readable owner record" in caplog.text
