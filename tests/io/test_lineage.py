"""Original and oracle must come from one run on one split; a mismatch names both versions."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from med_unlearning.io.checkpoint import (
    CheckpointMetadata,
    ModelCheckpoint,
    load_checkpoint,
    save_checkpoint,
)
from med_unlearning.io.lineage import (
    SPLITS_HASH_KEY,
    CheckpointRef,
    LineageMismatchError,
    check_original_oracle,
    check_pair_with_split,
    checkpoint_ref,
    splits_table_hash,
)

SPLITS = pd.DataFrame(
    {
        "volume_id": ["a", "b", "c", "d", "e", "f"],
        "anatomy": ["brain", "brain", "brain", "knee", "knee", "brain"],
        "role": ["retain_train", "retain_train", "retain_val", "forget_train", "forget_test",
                 "retain_test"],
    }
)
HASH = splits_table_hash(SPLITS, "volume_id")


def _meta(manifest: list[str], seed: int = 0, splits_hash: str | None = HASH) -> CheckpointMetadata:
    extra = {SPLITS_HASH_KEY: splits_hash} if splits_hash else {}
    return CheckpointMetadata(
        task="recon", architecture="unet2d", architecture_params={}, data_manifest=manifest,
        seed=seed, extra=extra,
    )


def _ref(
    name: str, meta: CheckpointMetadata, version: str = "2026-01-01T00.00.00.000Z"
) -> CheckpointRef:
    return CheckpointRef(name=f"recon.{name}.checkpoint", metadata=meta, version=version,
                         content_hash="0123456789abcdef")


def test_splits_hash_ignores_order_dtypes_and_extra_columns_but_not_roles() -> None:
    shuffled = SPLITS.sample(frac=1.0, random_state=3).drop(columns="anatomy")
    assert splits_table_hash(shuffled, "volume_id") == HASH
    moved = SPLITS.assign(role=SPLITS["role"].replace({"retain_val": "retain_train"}))
    assert splits_table_hash(moved, "volume_id") != HASH
    with pytest.raises(KeyError, match="no 'role' column"):
        splits_table_hash(SPLITS.drop(columns="role"), "volume_id")


def test_a_matching_pair_passes() -> None:
    check_original_oracle(
        _ref("original", _meta(["a", "b", "d"])), _ref("oracle", _meta(["a", "b"])),
        forget_ids=["d"], retain_ids=["a", "b"], splits_hash=HASH,
    )


@pytest.mark.parametrize(
    ("original", "oracle", "message"),
    [
        (_meta(["a", "b", "d"]), _meta(["a", "b"], splits_hash="f" * 64),
         "different splits tables"),
        (_meta(["a", "b", "d"]), _meta(["a", "b"], seed=1), r"training seeds differ \(0 vs 1\)"),
        (_meta(["a", "b", "d"]), _meta(["a"]),
         r"not the original's minus the forget ids: missing \['b'\]"),
        (_meta(["a", "b", "d"]), _meta(["a", "b", "d"]), "nothing was left out"),
        (_meta(["a", "b", "d"]), _meta(["a", "c"]), r"never saw: \['c'\]"),
        (_meta(["a", "b", "d"], splits_hash="e" * 64), _meta(["a", "b"], splits_hash="e" * 64),
         "another splits table"),
    ],
)
def test_mismatches_are_refused_naming_both_versions(
    original: CheckpointMetadata, oracle: CheckpointMetadata, message: str
) -> None:
    with pytest.raises(LineageMismatchError, match=message) as caught:
        check_original_oracle(
            _ref("original", original, "2026-01-01T00.00.00.000Z"),
            _ref("oracle", oracle, "2026-02-02T00.00.00.000Z"),
            forget_ids=["d"], retain_ids=["a", "b"], splits_hash=HASH,
        )
    text = str(caught.value)
    assert "recon.original.checkpoint version 2026-01-01T00.00.00.000Z" in text
    assert "recon.oracle.checkpoint version 2026-02-02T00.00.00.000Z" in text
    assert "--load-versions recon.original.checkpoint:<version>" in text


def test_version_is_read_from_the_versioned_path(tmp_path: Path) -> None:
    path = tmp_path / "oracle.safetensors" / "2026-03-04T05.06.07.890Z" / "oracle.safetensors"
    save_checkpoint(path, ModelCheckpoint({"w": torch.zeros(2)}, _meta(["a", "b"])))
    loaded = load_checkpoint(path)
    assert loaded.source == str(path)
    ref = checkpoint_ref("recon.oracle.checkpoint", loaded)
    assert ref.version == "2026-03-04T05.06.07.890Z"
    assert ref.content_hash == loaded.content_hash
    assert loaded == ModelCheckpoint(loaded.state_dict, loaded.metadata)  # source not compared


def test_check_with_split_uses_the_split_roles() -> None:
    original = ModelCheckpoint({"w": torch.zeros(1)}, _meta(["a", "b", "d"]))
    oracle = ModelCheckpoint({"w": torch.ones(1)}, _meta(["a", "b"]))
    record = check_pair_with_split("recon", original, oracle, SPLITS, "volume_id")
    assert record["splits_hash"] == HASH
    resplit = SPLITS.assign(role=SPLITS["role"].replace({"retain_val": "retain_train"}))
    with pytest.raises(LineageMismatchError, match="retain_train ids: missing \\['c'\\]"):
        check_pair_with_split("recon", original, oracle, resplit, "volume_id")
