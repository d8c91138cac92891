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

from med_unlearning.run_lock import LOCK_NAME, RunLock, RunLockedError, process_alive


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
