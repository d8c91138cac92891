"""Interrupt training and unlearning at seeded-random points: a rerun ends consistent and clean.

Each probe interrupts a conf/test run of one pipeline, then reruns it and checks that

- the rerun completes;
- every checkpoint file under ``06_models`` loads (its content hash checks out), so no
  half-written file is ever taken for a checkpoint;
- the latest original and oracle belong together (:func:`check_pair_with_split`);
- each unlearned checkpoint's parent hash is the current original's, and its erasure
  record names the same parent and the checkpoint's own hash;
- unlearning never wrote into the original's folder;
- no temporary file, staging folder, empty version folder or lock is left under the root.

Interruptions: an exception from a seeded-random training step (recon training, the
unlearning strategy loop), an exception between a checkpoint's write and its rename, an
exception while an erasure record is saved, and ``SIGKILL`` between a checkpoint's write and
its rename (no cleanup can run; the next save removes what it left).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from kedro.io.core import Version
from tests.test_fault_injection import _stray

from med_unlearning.datasets import ModelCheckpointDataset
from med_unlearning.io import checkpoint as checkpoint_module
from med_unlearning.io.checkpoint import load_checkpoint
from med_unlearning.io.lineage import check_pair_with_split
from med_unlearning.training import loop as training_loop

pytestmark = pytest.mark.e2e

PROJECT = Path(__file__).resolve().parents[1]
#: A few cheap recon unlearning runs (each a namespace of the unlearning pipeline).
RUNS = ("ft", "ga_l1", "nl_ft")
NAMESPACES = [f"unlearning.recon.{run}" for run in RUNS]


class Interrupted(Exception):
    """Stands for the run being stopped at the injection point."""


@contextmanager
def _session(root: Path) -> Iterator[Any]:
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(PROJECT)
    with KedroSession.create(
        project_path=PROJECT, env="test", runtime_params={"data_root": str(root)}
    ) as session:
        yield session


def _run(root: Path, pipeline: str) -> None:
    namespaces = NAMESPACES if pipeline == "unlearning" else None
    with _session(root) as session:
        session.run(pipeline_names=[pipeline], namespaces=namespaces)


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class _StepCounter:
    """Wraps the loop's ``move_to_device`` (called once per training/unlearning step):
    counts the steps and raises :class:`Interrupted` at step ``fail_at``."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.steps = 0
        self._real = training_loop.move_to_device

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.steps += 1
        if self.steps == self.fail_at:
            raise Interrupted(f"interrupted at training step {self.steps}")
        return self._real(*args, **kwargs)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """sample_data, recon and a few recon unlearning runs under conf/test, once; with the
    number of training steps the recon and unlearning pipelines take."""
    root = tmp_path_factory.mktemp("fault_study")
    steps = {}
    with pytest.MonkeyPatch.context() as patch:
        _run(root, "sample_data")
        for pipeline in ("recon", "unlearning"):
            counter = _StepCounter()
            patch.setattr(training_loop, "move_to_device", counter)
            _run(root, pipeline)
            steps[pipeline] = counter.steps
    assert steps["recon"] > 3 and steps["unlearning"] > len(RUNS)
    assert _stray(root) == []
    return {"root": root, "steps": steps}


@pytest.fixture
def root(study: dict[str, Any], tmp_path: Path) -> Path:
    """A private copy of the module's study to interrupt and rerun."""
    copy = tmp_path / "data"
    shutil.copytree(study["root"], copy)
    return copy


def _leftovers(root: Path) -> list[str]:
    """_stray plus empty folders under 06_models (e.g. a version folder of a failed save)."""
    empty = [
        str(path.relative_to(root)) for path in (root / "06_models").rglob("*")
        if path.is_dir() and not any(path.iterdir())
    ]
    return sorted([*_stray(root), *empty])


def _latest(root: Path, relative: str) -> Any:
    dataset = ModelCheckpointDataset(
        filepath=str(root / "06_models" / relative), version=Version(None, None)
    )
    return dataset.load()


def _folder_state(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _latest_version(path: Path) -> Path:
    """The newest version's file of a versioned dataset (erasure records and histories are
    versioned like the checkpoints), or ``path`` itself when it is a plain file."""
    if path.is_file():
        return path
    versions = sorted(folder for folder in path.iterdir() if folder.is_dir())
    assert versions, f"{path}: no version written"
    return versions[-1] / path.name


def _assert_consistent(root: Path, *, unlearning: bool) -> None:
    for file in (root / "06_models").rglob("*.safetensors"):
        if file.is_file():
            load_checkpoint(file)  # raises on a damaged or partial file
    original = _latest(root, "recon/original.safetensors")
    oracle = _latest(root, "recon/oracle.safetensors")
    splits = pd.read_csv(root / "05_model_input" / "recon_splits.csv", dtype={"volume_id": str})
    check_pair_with_split("recon", original, oracle, splits, "volume_id")
    if unlearning:
        for run in RUNS:
            unlearned = _latest(root, f"unlearning/recon/{run}.safetensors")
            record_file = _latest_version(
                root / "08_reporting" / "erasure_requests" / "recon" / f"{run}.json"
            )
            record = json.loads(record_file.read_text())
            assert unlearned.metadata.parent_hash == original.content_hash, run
            assert record["parent"]["hash"] == original.content_hash, run
            assert record["unlearned"]["hash"] == unlearned.content_hash, run
            history = root / "08_reporting" / "unlearning" / "recon" / f"{run}_history.csv"
            assert _latest_version(history).is_file(), run
    assert _leftovers(root) == []


# Training ------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0])
def test_recon_training_interrupted_at_a_random_step_reruns_consistently(
    study: dict[str, Any], root: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_at = random.Random(seed).randint(1, study["steps"]["recon"])
    counter = _StepCounter(fail_at)
    monkeypatch.setattr(training_loop, "move_to_device", counter)
    with pytest.raises(Exception) as error:
        _run(root, "recon")
    assert _caused_by(error.value, Interrupted) and counter.steps == fail_at
    monkeypatch.undo()
    assert _leftovers(root) == []  # an exception leaves nothing behind, the lock included

    _run(root, "recon")
    _assert_consistent(root, unlearning=False)


@pytest.mark.parametrize("seed", [0])
def test_recon_checkpoint_save_interrupted_between_write_and_rename_reruns_consistently(
    root: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """original, oracle and reference are saved by the recon pipeline: fail one at random."""
    fail_at = random.Random(seed).randint(1, 3)
    real_replace, renames = os.replace, []

    def replace(source: Any, target: Any) -> None:
        if Path(source).name.endswith(".tmp") and ".safetensors." in Path(source).name:
            renames.append(Path(source))
            if len(renames) == fail_at:
                assert Path(source).is_file()  # written, not yet in place
                raise Interrupted(f"interrupted before renaming {source}")
        real_replace(source, target)

    monkeypatch.setattr(checkpoint_module.os, "replace", replace)
    with pytest.raises(Exception) as error:
        _run(root, "recon")
    assert _caused_by(error.value, Interrupted) and len(renames) == fail_at
    monkeypatch.undo()
    assert not renames[-1].exists() and not renames[-1].parent.exists()  # temp and its folder
    assert _leftovers(root) == []

    _run(root, "recon")
    _assert_consistent(root, unlearning=False)


# Unlearning ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_unlearning_interrupted_in_the_strategy_loop_reruns_consistently(
    study: dict[str, Any], root: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    original_folder = root / "06_models" / "recon" / "original.safetensors"
    before = _folder_state(original_folder)
    fail_at = random.Random(seed).randint(1, study["steps"]["unlearning"])
    counter = _StepCounter(fail_at)
    monkeypatch.setattr(training_loop, "move_to_device", counter)
    with pytest.raises(Exception) as error:
        _run(root, "unlearning")
    assert _caused_by(error.value, Interrupted) and counter.steps == fail_at
    monkeypatch.undo()
    assert _leftovers(root) == []

    _run(root, "unlearning")
    _assert_consistent(root, unlearning=True)
    assert _folder_state(original_folder) == before  # the original is only ever read


def test_unlearning_interrupted_while_saving_an_erasure_record_reruns_consistently(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from med_unlearning.datasets import OptionalJSONDataset as JSONDataset

    fail_at = random.Random(2).randint(1, len(RUNS))
    real_save, records = JSONDataset.save, []

    def save(self: JSONDataset, data: Any) -> None:
        if "erasure_requests" in str(self._filepath):
            records.append(self._filepath)
            if len(records) == fail_at:
                raise Interrupted(f"interrupted while saving {self._filepath}")
        real_save(self, data)

    monkeypatch.setattr(JSONDataset, "save", save)
    with pytest.raises(Exception) as error:
        _run(root, "unlearning")
    assert _caused_by(error.value, Interrupted) and len(records) == fail_at
    monkeypatch.undo()

    _run(root, "unlearning")
    _assert_consistent(root, unlearning=True)


_KILLER = """
import os, signal, sys
from pathlib import Path

project, root, pipeline, kill_at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
real_replace, renames = os.replace, []


def replace(source, target, *args, **kwargs):
    name = Path(source).name
    if name.endswith(".tmp") and ".safetensors." in name:
        renames.append(name)
        if len(renames) == kill_at:  # the checkpoint is written, not yet renamed: die now
            os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(source, target, *args, **kwargs)


os.replace = replace
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

bootstrap_project(Path(project))
with KedroSession.create(
    project_path=Path(project), env="test", runtime_params={"data_root": root}
) as session:
    session.run(pipeline_names=[pipeline], namespaces=%s)
"""


def test_unlearning_killed_between_checkpoint_write_and_rename_reruns_cleanly(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kill_at = random.Random(3).randint(1, len(RUNS))
    path = os.pathsep.join(filter(None, [str(PROJECT / "src"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "KEDRO_DISABLE_TELEMETRY": "1"}
    script = _KILLER % repr(NAMESPACES)
    process = subprocess.run(
        [sys.executable, "-c", script, str(PROJECT), str(root), "unlearning", str(kill_at)],
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert process.returncode == -signal.SIGKILL, process.stderr[-2000:]
    left = _leftovers(root)
    # The kill left what no cleanup could remove: the half-saved checkpoint's temporary file
    # (in its version folder) and the run lock.
    assert any(name.endswith(".tmp") and "unlearning" in name for name in left), left
    assert any(name.endswith(".med_unlearning.lock") for name in left), left

    with caplog.at_level("WARNING"):
        _run(root, "unlearning")
    assert "an interrupted save" in caplog.text and "stale run lock" in caplog.text
    _assert_consistent(root, unlearning=True)
