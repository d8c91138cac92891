"""``OptionalTorchWeightsDataset``: None when unset, safe loading, clear errors, read-only."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from kedro.io.core import DatasetError

from med_unlearning.datasets import OptionalTorchWeightsDataset


class _Payload:
    """A custom class: unpickling it would need code, which ``weights_only`` refuses."""

    def __init__(self) -> None:
        self.weight = torch.ones(2)


@pytest.mark.parametrize("filepath", [None, "", "  "])
def test_unset_path_loads_none(filepath) -> None:
    dataset = OptionalTorchWeightsDataset(filepath=filepath, parameter="medicalnet_weights")
    assert dataset.load() is None
    assert not dataset.exists()
    assert dataset._describe() == {"filepath": None, "parameter": "medicalnet_weights"}


def test_loads_a_saved_state_dict_on_cpu(tmp_path: Path) -> None:
    path = tmp_path / "weights.pth"
    state = {"state_dict": {"module.conv1.weight": torch.randn(4, 1, 3, 3, 3)}}
    torch.save(state, path)
    dataset = OptionalTorchWeightsDataset(filepath=str(path))
    assert dataset.exists()
    loaded = dataset.load()
    assert set(loaded) == {"state_dict"}
    torch.testing.assert_close(
        loaded["state_dict"]["module.conv1.weight"], state["state_dict"]["module.conv1.weight"]
    )
    assert loaded["state_dict"]["module.conv1.weight"].device.type == "cpu"
    assert str(path) in str(dataset)


def test_refuses_a_file_that_needs_code_to_unpickle(tmp_path: Path) -> None:
    path = tmp_path / "code.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "extra": _Payload()}, path)
    # the same file loads without weights_only: the refusal is the safety rule, not corruption
    assert isinstance(torch.load(path, weights_only=False)["extra"], _Payload)
    dataset = OptionalTorchWeightsDataset(filepath=str(path), parameter="medicalnet_weights")
    with pytest.raises(DatasetError, match=r"code\.pth.*medicalnet_weights.*weights_only=True"):
        dataset.load()


def test_missing_or_unreadable_file_is_an_error_naming_it(tmp_path: Path) -> None:
    missing = OptionalTorchWeightsDataset(
        filepath=str(tmp_path / "resnet_50.pth"), parameter="medicalnet_weights"
    )
    with pytest.raises(DatasetError, match=r"resnet_50\.pth.*medicalnet_weights.*does not exist"):
        missing.load()
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(DatasetError, match=r"garbage\.pth"):
        OptionalTorchWeightsDataset(filepath=str(garbage)).load()


def test_is_read_only_and_local_only(tmp_path: Path) -> None:
    dataset = OptionalTorchWeightsDataset(filepath=str(tmp_path / "w.pth"))
    with pytest.raises(DatasetError, match="read-only"):
        dataset.save({"w": torch.zeros(1)})
    assert not (tmp_path / "w.pth").exists()
    with pytest.raises(DatasetError, match="local files only"):
        OptionalTorchWeightsDataset(filepath="s3://bucket/w.pth")
