"""Checkpoints: safetensors round trip, content hash, lineage record, bad files, atomic save."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import med_unlearning.io.checkpoint as checkpoint_io
from med_unlearning.io.checkpoint import (
    CheckpointError,
    CheckpointMetadata,
    ModelCheckpoint,
    checkpoint_from_bytes,
    checkpoint_to_bytes,
    load_checkpoint,
    read_checkpoint_metadata,
    save_checkpoint,
    state_dict_hash,
)


@pytest.fixture(autouse=True)
def _forbid_torch_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Checkpoints must never go through pickle-based torch.load."""

    def refuse(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("torch.load must not be used for checkpoints")

    monkeypatch.setattr(torch, "load", refuse)


def _state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {
        "encoder.weight": torch.randn(4, 3, generator=generator),
        "encoder.bias": torch.randn(4, generator=generator, dtype=torch.float64),
        "norm.num_batches_tracked": torch.tensor(17, dtype=torch.int64),
        "head.weight": torch.randn(2, 4, generator=generator).to(torch.bfloat16),
        "mask": torch.tensor([True, False, True]),
    }


def _metadata(**changes) -> CheckpointMetadata:
    fields = {
        "task": "recon",
        "architecture": "varnet",
        "architecture_params": {"num_cascades": 2, "chans": 8},
        "data_manifest": ["brain/file_001", "knee/file_002"],
        "epochs": 3,
        "seed": 42,
        "wall_time_s": 12.5,
    }
    return CheckpointMetadata(**{**fields, **changes})


def test_round_trip_is_bit_identical_and_keeps_metadata(tmp_path: Path) -> None:
    checkpoint = ModelCheckpoint(_state_dict(), _metadata(strategy="finetune",
                                                         strategy_params={"lr": 1e-4},
                                                         forget_ids=["knee/file_002"],
                                                         parent_hash="ab" * 32))
    path = tmp_path / "models" / "varnet.safetensors"

    save_checkpoint(path, checkpoint)
    loaded = load_checkpoint(path)

    assert loaded.metadata == checkpoint.metadata
    assert set(loaded.state_dict) == set(checkpoint.state_dict)
    for name, tensor in checkpoint.state_dict.items():
        assert loaded.state_dict[name].dtype == tensor.dtype
        assert torch.equal(loaded.state_dict[name], tensor)
    assert loaded.content_hash == checkpoint.content_hash
    assert read_checkpoint_metadata(path) == checkpoint.metadata


def test_bytes_round_trip(tmp_path: Path) -> None:
    checkpoint = ModelCheckpoint(_state_dict(), _metadata())
    loaded = checkpoint_from_bytes(checkpoint_to_bytes(checkpoint))
    assert loaded.metadata == checkpoint.metadata
    assert loaded.content_hash == checkpoint.content_hash


def test_content_hash_depends_on_weights_only() -> None:
    weights = _state_dict()
    base = ModelCheckpoint(weights, _metadata()).content_hash

    other_metadata = _metadata(task="segmentation", epochs=9)
    assert ModelCheckpoint(_state_dict(), other_metadata).content_hash == base
    transposed = {**weights, "encoder.weight": weights["encoder.weight"].t().contiguous().t()}
    assert state_dict_hash(transposed) == base  # memory layout does not matter

    changed = _state_dict()
    changed["encoder.weight"][0, 0] += 1e-3
    assert state_dict_hash(changed) != base
    assert state_dict_hash({**weights, "encoder.bias": weights["encoder.bias"].float()}) != base
    renamed = {("decoder.bias" if k == "encoder.bias" else k): v for k, v in weights.items()}
    assert state_dict_hash(renamed) != base
    assert len(base) == 64 and int(base, 16) >= 0


def test_shared_tensors_are_saved(tmp_path: Path) -> None:
    shared = torch.randn(3, 3)
    weights = {"embedding.weight": shared, "output.weight": shared, "view": shared[0]}
    checkpoint = ModelCheckpoint(weights, _metadata())

    save_checkpoint(tmp_path / "tied.safetensors", checkpoint)
    loaded = load_checkpoint(tmp_path / "tied.safetensors")

    assert torch.equal(loaded.state_dict["output.weight"], shared)
    assert torch.equal(loaded.state_dict["view"], shared[0])


def test_failed_save_keeps_the_previous_file_and_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, ModelCheckpoint(_state_dict(0), _metadata()))
    before = path.read_bytes()

    def failing_replace(source, target):  # type: ignore[no-untyped-def]
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_io.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, ModelCheckpoint(_state_dict(1), _metadata()))

    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]


def test_text_file_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "notes.safetensors"
    path.write_text("hello")
    with pytest.raises(CheckpointError, match="not a readable safetensors checkpoint") as error:
        load_checkpoint(path)
    assert str(path) in str(error.value)


def test_truncated_checkpoint_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, ModelCheckpoint(_state_dict(), _metadata()))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_checkpoint(path)


def test_safetensors_without_a_record_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(CheckpointError, match=r"foreign\.safetensors.*med_unlearning\.checkpoint"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="foreign.safetensors"):
        read_checkpoint_metadata(path)


def test_damaged_weights_fail_the_hash_check(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, ModelCheckpoint({"w": torch.zeros(64)}, _metadata()))
    data = bytearray(path.read_bytes())
    data[-8] ^= 0xFF  # flip bits inside the last tensor's bytes
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="do not match the content hash"):
        load_checkpoint(path)


def test_metadata_json_round_trip_and_defaults() -> None:
    metadata = _metadata(extra={"note": "baseline"})

    again = CheckpointMetadata.from_json(metadata.to_json())

    assert again == metadata
    assert {"python", "torch", "numpy", "med_unlearning"} <= set(metadata.library_versions)
    assert datetime.fromisoformat(metadata.created_at).utcoffset().total_seconds() == 0
    assert json.loads(metadata.to_json())["architecture_params"] == {"num_cascades": 2, "chans": 8}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"task": "classification"}, "task"),
        ({"architecture": ""}, "architecture"),
        ({"data_manifest": "brain/file_001"}, "data_manifest"),
        ({"architecture_params": {"act": object()}}, "JSON"),
        ({"wall_time_s": float("nan")}, "JSON"),
    ],
)
def test_invalid_metadata_is_rejected(changes, expected: str) -> None:
    with pytest.raises(CheckpointError, match=expected):
        _metadata(**changes)


def test_from_json_rejects_unknown_and_missing_fields() -> None:
    record = json.loads(_metadata().to_json())
    with pytest.raises(CheckpointError, match="unknown fields.*'colour'"):
        CheckpointMetadata.from_json(json.dumps({**record, "colour": "red"}))
    del record["architecture"]
    with pytest.raises(CheckpointError, match="lacks required fields.*'architecture'"):
        CheckpointMetadata.from_json(json.dumps(record))


def test_non_tensor_entries_are_rejected() -> None:
    with pytest.raises(CheckpointError, match="_extra_state"):
        ModelCheckpoint({"w": torch.zeros(1), "_extra_state": {"a": 1}}, _metadata())


def test_repr_summarises_without_tensors() -> None:
    text = repr(ModelCheckpoint(_state_dict(), _metadata()))
    assert "varnet" in text and "tensors=5" in text and "tensor(" not in text
