"""ModelCheckpointDataset: versioned saves, latest-version loads, preview, no pickle."""

from __future__ import annotations

import json
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
