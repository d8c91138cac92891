"""Tests for med_unlearning.unlearning.pairing."""

from __future__ import annotations

import pytest
import torch

from med_unlearning.training import make_loader
from med_unlearning.unlearning.pairing import PairedBatches, PairingError


def test_longest_drive_restarts_the_shorter_loader() -> None:
    pairs = list(PairedBatches(["f0", "f1"], ["r0", "r1", "r2", "r3", "r4"]))
    assert pairs == [("f0", "r0"), ("f1", "r1"), ("f0", "r2"), ("f1", "r3"), ("f0", "r4")]


@pytest.mark.parametrize(("drive", "expected"), [("forget", 2), ("retain", 3), ("longest", 3)])
def test_drive_sets_the_number_of_pairs(drive: str, expected: int) -> None:
    paired = PairedBatches(["f0", "f1"], ["r0", "r1", "r2"], drive=drive)  # type: ignore[arg-type]
    assert len(paired) == expected
    assert len(list(paired)) == expected


def test_every_pass_starts_both_loaders_afresh() -> None:
    paired = PairedBatches(["f0", "f1", "f2"], ["r0", "r1"], drive="forget")
    assert list(paired) == list(paired) == [("f0", "r0"), ("f1", "r1"), ("f2", "r0")]


def test_seeded_loaders_give_the_same_pairs_for_the_same_seed() -> None:
    data = list(range(7))

    def pairs(seed: int) -> list[tuple[list[int], list[int]]]:
        forget = make_loader(data[:3], 1, shuffle=True, seed=seed, device="cpu")
        retain = make_loader(data[3:], 2, shuffle=True, seed=seed, device="cpu")
        return [(f.tolist(), r.tolist()) for f, r in PairedBatches(forget, retain)]

    assert pairs(3) == pairs(3)
    assert all(isinstance(item, tuple) for item in pairs(3))
    assert len(pairs(3)) == 3


def test_empty_or_lengthless_loaders_are_rejected() -> None:
    with pytest.raises(PairingError, match="forget loader is empty"):
        PairedBatches([], ["r0"])
    with pytest.raises(PairingError, match="retain loader has no length"):
        PairedBatches(["f0"], iter(["r0"]))
    with pytest.raises(PairingError, match="drive"):
        PairedBatches(["f0"], ["r0"], drive="both")  # type: ignore[arg-type]


def test_pairs_are_tensors_of_both_sets_and_repr_names_counts() -> None:
    forget = [{"x": torch.zeros(1), "ids": ["f"]}]
    retain = [{"x": torch.ones(1), "ids": ["r"]}]
    paired = PairedBatches(forget, retain)
    (pair,) = list(paired)
    assert pair[0]["ids"] == ["f"] and pair[1]["ids"] == ["r"]
    assert "pairs=1" in repr(paired)
