"""ModelCheckpointDataset: versioned saves, latest-version loads, preview, no pickle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from kedro.io import DataCatalog
from kedro.io.core import DatasetError, Version

from med_unlearning.datasets import ModelCheckpointDataset
from med_unlearning.io.checkpoint import CheckpointError, CheckpointMetadata, ModelCheckpoint


@pytest.fixture(autouse=True)
def _forbid_torch_load(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("torch.load must not be used for checkpoints")

    monkeypatch.setattr(torch, "load", refuse)


def _checkpoint(seed: int, **changes) -> ModelCheckpoint:
    generator = torch.Generator().manual_seed(seed)
    metadata = CheckpointMetadata(
        **{
            "task": "segmentation",
            "architecture": "unet3d",
            "architecture_params": {"channels": [4, 8]},
            "data_manifest": ["070", "071"],
            **changes,
        }
    )
    return ModelCheckpoint({"conv.weight": torch.randn(8, 4, 3, generator=generator)}, metadata)


def test_unversioned_round_trip(tmp_path: Path) -> None:
    dataset = ModelCheckpointDataset(filepath=str(tmp_path / "unet.safetensors"))
    checkpoint = _checkpoint(0)

    assert not dataset.exists()
    dataset.save(checkpoint)
    loaded = dataset.load()

    assert dataset.exists()
    assert torch.equal(loaded.state_dict["conv.weight"], checkpoint.state_dict["conv.weight"])
    assert loaded.metadata == checkpoint.metadata


def test_versioned_saves_keep_every_version_and_load_the_latest(tmp_path: Path) -> None:
    path = tmp_path / "models" / "unet.safetensors"
    first, second = _checkpoint(1), _checkpoint(2, parent_hash=_checkpoint(1).content_hash)
    day_1, day_2 = "2025-01-01T00.00.00.000Z", "2025-01-02T00.00.00.000Z"
    ModelCheckpointDataset(filepath=str(path), version=Version(None, day_1)).save(first)
    ModelCheckpointDataset(filepath=str(path), version=Version(None, day_2)).save(second)

    latest = ModelCheckpointDataset(filepath=str(path), version=Version(None, None))
    pinned = ModelCheckpointDataset(filepath=str(path), version=Version(day_1, None))

    assert sorted(p.name for p in path.iterdir()) == [day_1, day_2]
    assert (path / day_2 / "unet.safetensors").is_file()
    assert latest.load().content_hash == second.content_hash
    assert latest.load().metadata.parent_hash == first.content_hash
    assert pinned.load().content_hash == first.content_hash
    assert day_1 in repr(pinned)


def test_versioned_entry_from_catalog_config(tmp_path: Path) -> None:
    catalog = DataCatalog.from_config(
        {
            "model": {
                "type": "med_unlearning.datasets.ModelCheckpointDataset",
                "filepath": str(tmp_path / "model.safetensors"),
                "versioned": True,
            }
        }
    )
    catalog.save("model", _checkpoint(3))

    assert catalog.load("model").content_hash == _checkpoint(3).content_hash
    assert len(list((tmp_path / "model.safetensors").iterdir())) == 1


def test_loading_a_missing_version_fails_clearly(tmp_path: Path) -> None:
    dataset = ModelCheckpointDataset(
        filepath=str(tmp_path / "none.safetensors"), version=Version(None, None)
    )
    assert not dataset.exists()
    with pytest.raises(DatasetError, match="none.safetensors"):
        dataset.load()


def test_a_foreign_file_fails_with_the_checkpoint_error(tmp_path: Path) -> None:
    path = tmp_path / "weights.safetensors"
    path.write_bytes(b"\x00" * 32)
    with pytest.raises(DatasetError, match="weights.safetensors") as error:
        ModelCheckpointDataset(filepath=str(path)).load()
    assert isinstance(error.value.__cause__, CheckpointError)


def test_save_rejects_other_objects(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="saves ModelCheckpoint objects"):
        ModelCheckpointDataset(filepath=str(tmp_path / "m.safetensors")).save({"w": torch.zeros(1)})


def test_preview_is_the_metadata_as_json(tmp_path: Path) -> None:
    dataset = ModelCheckpointDataset(filepath=str(tmp_path / "m.safetensors"))
    dataset.save(_checkpoint(4, strategy="retrain", forget_ids=["071"]))

    record = json.loads(dataset.preview())

    assert record["strategy"] == "retrain" and record["forget_ids"] == ["071"]
    assert record["architecture"] == "unet3d"


# Interrupted saves -------------------------------------------------------------------------

DAY_1, DAY_2, DAY_3 = (f"2025-01-0{day}T00.00.00.000Z" for day in (1, 2, 3))


def _versioned(path: Path, save: str | None = None, load: str | None = None):
    return ModelCheckpointDataset(filepath=str(path), version=Version(load, save))


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _temporary_of(target: Path, pid: int | None = None, host: str | None = None) -> Path:
    """The temporary name ``save_checkpoint`` uses for ``target``, as if written by process
    ``pid`` (default: this one) on a host with tag ``host`` (default: this host)."""
    from med_unlearning.io.checkpoint import temporary_path

    name = temporary_path(target).name  # .<name>.<host tag>-<pid>-<token>.tmp
    prefix, owner = name.removesuffix(".tmp").rsplit(".", 1)
    tag, own_pid, token = owner.split("-")
    assert int(own_pid) == os.getpid() and prefix == f".{target.name}"
    return target.with_name(f"{prefix}.{host or tag}-{pid or own_pid}-{token}.tmp")


def test_a_save_failing_between_write_and_rename_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from med_unlearning.io import checkpoint as checkpoint_module

    path = tmp_path / "unet.safetensors"
    _versioned(path, save=DAY_1).save(_checkpoint(1))
    written = []

    def interrupted(source, target):  # type: ignore[no-untyped-def]
        written.append(Path(source))
        assert Path(source).is_file()  # the bytes are on disk, not yet renamed
        raise KeyboardInterrupt  # what Ctrl-C does; not an Exception

    monkeypatch.setattr(checkpoint_module.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _versioned(path, save=DAY_2).save(_checkpoint(2))
    monkeypatch.undo()

    assert written and not written[0].exists()
    assert sorted(p.name for p in path.iterdir()) == [DAY_1]  # no empty DAY_2 folder
    assert _versioned(path).load().content_hash == _checkpoint(1).content_hash


def test_leftovers_of_a_killed_save_are_removed_by_the_next_save(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "unet.safetensors"
    _versioned(path, save=DAY_1).save(_checkpoint(1))
    # What `kill -9` between write and rename leaves: a version folder holding a temporary
    # file named for this checkpoint by a process that is gone; and an empty version folder.
    killed = _temporary_of(path / DAY_2 / path.name, pid=_dead_pid())
    killed.parent.mkdir(parents=True)
    killed.write_bytes(b"half a checkpoint")
    (path / "2025-01-02T12.00.00.000Z").mkdir()
    assert _versioned(path).load().content_hash == _checkpoint(1).content_hash  # never loaded
    # Files this dataset did not make stay: a live writer's temporary file, another
    # host's, another checkpoint's, a user's note, a folder not named like a version.
    others = [
        _temporary_of(path / DAY_1 / path.name),  # this (live) process
        _temporary_of(path / DAY_1 / path.name, pid=_dead_pid(), host="0badc0de"),
        _temporary_of(path / DAY_1 / "other.safetensors", pid=_dead_pid()),
        path / DAY_1 / "notes.tmp",
        path / "keep" / "readme.txt",
    ]
    for other in others:
        other.parent.mkdir(parents=True, exist_ok=True)
        other.write_bytes(b"not yours")

    with caplog.at_level("WARNING"):
        _versioned(path, save=DAY_3).save(_checkpoint(3))

    assert not killed.exists() and not killed.parent.exists()
    assert not (path / "2025-01-02T12.00.00.000Z").exists()
    assert all(other.read_bytes() == b"not yours" for other in others)
    assert sorted(p.name for p in path.iterdir()) == [DAY_1, DAY_3, "keep"]
    assert killed.name in caplog.text and "empty version folder" in caplog.text
    assert _versioned(path).load().content_hash == _checkpoint(3).content_hash


def test_unversioned_save_removes_only_its_own_stale_temporary(tmp_path: Path) -> None:
    path = tmp_path / "unet.safetensors"
    stale = _temporary_of(path, pid=_dead_pid())
    sibling = _temporary_of(tmp_path / "vnet.safetensors", pid=_dead_pid())
    for file in (stale, sibling):
        file.write_bytes(b"partial")
    ModelCheckpointDataset(filepath=str(path)).save(_checkpoint(0))
    assert not stale.exists() and sibling.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, sibling.name])
