"""Kill `kedro run --pipelines sample_data` at a random point: a rerun completes cleanly."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from med_unlearning.datasets.write_once_folder_dataset import SAMPLE_MARKER, STAGING_INFIX
from med_unlearning.run_lock import LOCK_NAME

PROJECT = Path(__file__).resolve().parents[1]


def _stray(root: Path) -> list[str]:
    """Temporary files or folders a run may leave: staging folders, .tmp files, the lock."""
    return sorted(
        str(path.relative_to(root)) for path in root.rglob("*")
        if STAGING_INFIX in path.name or path.name.endswith(".tmp") or path.name == LOCK_NAME
    )


@pytest.mark.e2e
@pytest.mark.parametrize("seed", [0, 1])
def test_killed_sample_generation_reruns_cleanly(kedro_session, tmp_path: Path, seed: int) -> None:
    delay = random.Random(seed).uniform(0.0, 0.5)
    path = os.pathsep.join(filter(None, [str(PROJECT / "src"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "KEDRO_DISABLE_TELEMETRY": "1"}
    command = [sys.executable, "-m", "kedro", "run", "--env", "test", "--pipelines",
               "sample_data", "--params", f"data_root={tmp_path}"]
    process = subprocess.Popen(
        command, cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            raw = tmp_path / "01_raw"
            if raw.exists() and any(STAGING_INFIX in p.name for p in raw.iterdir()):
                break  # generation has started
            time.sleep(0.02)
        time.sleep(delay)
        os.killpg(process.pid, signal.SIGKILL)  # no cleanup can run
    finally:
        process.wait()
    fastmri = tmp_path / "01_raw" / "fastmri"
    # Readers never see a partial folder: either nothing or a complete one with its marker.
    assert not fastmri.exists() or (fastmri / SAMPLE_MARKER).is_file()

    with kedro_session() as session:
        session.run(pipeline_names=["sample_data"])
    for folder in ("fastmri", "mrbrains18"):
        assert (tmp_path / "01_raw" / folder / SAMPLE_MARKER).is_file()
    assert _stray(tmp_path) == []
    assert len(list(fastmri.rglob("*.h5"))) > 0
