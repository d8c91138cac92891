"""Loading MedicalNet-format weights from a local file (no download): prefixes, head, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from med_unlearning.models import build_model
from med_unlearning.models.medicalnet import (
    WeightsMismatchError,
    load_medicalnet_weights,
    read_medicalnet_state_dict,
)

SMALL = {"base_width": 4, "head_channels": 4}


def _medicalnet_file(path: Path, architecture: str = "med3d_resnet10", **kwargs) -> dict:
    """A random state dict in MedicalNet's layout: {'state_dict': {'module.<key>': …}}."""
    torch.manual_seed(123)
    # a pre-training head with another class count, as MedicalNet's files carry
    source = build_model(architecture, {**SMALL, "num_classes": 2, **kwargs}).state_dict()
    state = {
        f"module.{key}": torch.randn_like(value.float()).to(value.dtype)
        for key, value in source.items()
    }
    torch.save({"state_dict": state}, path)
    return state


def test_backbone_loads_with_prefixes_stripped_and_head_left_fresh(tmp_path: Path) -> None:
    path = tmp_path / "resnet_10.pth"
    state = _medicalnet_file(path)
    model = build_model("med3d_resnet10", {**SMALL, "num_classes": 9})
    head_before = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("conv_seg.")}
    loaded = load_medicalnet_weights(model, path)
    after = model.state_dict()
    assert "conv1.weight" in loaded and not any(key.startswith("conv_seg.") for key in loaded)
    torch.testing.assert_close(after["conv1.weight"], state["module.conv1.weight"])
    torch.testing.assert_close(
        after["layer3.0.bn2.running_mean"], state["module.layer3.0.bn2.running_mean"]
    )
    for key, value in head_before.items():
        torch.testing.assert_close(after[key], value)


def test_files_without_batchnorm_counters_or_prefixes_still_load(tmp_path: Path) -> None:
    path = tmp_path / "old.pth"
    state = _medicalnet_file(path)
    bare = {
        key.removeprefix("module."): value
        for key, value in state.items()
        if not key.endswith("num_batches_tracked")
    }
    torch.save(bare, path)
    model = build_model("med3d_resnet10", SMALL)
    load_medicalnet_weights(model, path)
    torch.testing.assert_close(model.layer1[0].conv1.weight, bare["layer1.0.conv1.weight"])
    assert "conv_seg.0.weight" not in read_medicalnet_state_dict(path)


def test_single_channel_stem_is_spread_over_modalities(tmp_path: Path) -> None:
    path = tmp_path / "resnet_10.pth"
    state = _medicalnet_file(path)
    model = build_model("med3d_resnet10", {**SMALL, "in_channels": 3})
    load_medicalnet_weights(model, path)
    image = torch.randn(1, 1, 8, 8, 8)
    expected = torch.nn.functional.conv3d(image, state["module.conv1.weight"], stride=2, padding=3)
    actual = model.conv1(image.repeat(1, 3, 1, 1, 1))
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4)


def test_another_depth_lists_missing_and_unexpected_keys_and_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "resnet_18.pth"
    _medicalnet_file(path, "med3d_resnet18")  # shortcut A, two blocks per layer
    model = build_model("med3d_resnet10", SMALL)
    with pytest.raises(WeightsMismatchError) as error:
        load_medicalnet_weights(model, path)
    message = str(error.value)
    assert "resnet_18.pth" in message
    assert "missing keys" in message and "layer2.0.downsample.0.weight" in message
    assert "unexpected keys" in message and "layer1.1.conv1.weight" in message


def test_other_widths_are_shape_mismatches(tmp_path: Path) -> None:
    path = tmp_path / "wide.pth"
    _medicalnet_file(path, base_width=8)
    with pytest.raises(WeightsMismatchError, match=r"shape mismatches.*conv1\.weight"):
        load_medicalnet_weights(build_model("med3d_resnet10", SMALL), path)


class _NotWeights:
    pass


def test_files_that_are_not_weights_are_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        read_medicalnet_state_dict(tmp_path / "missing.pth")
    pickled = tmp_path / "code.pth"
    torch.save({"state_dict": {"conv1.weight": torch.zeros(1)}, "object": _NotWeights()}, pickled)
    with pytest.raises(WeightsMismatchError, match="weights_only"):
        read_medicalnet_state_dict(pickled)
    listed = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], listed)
    with pytest.raises(WeightsMismatchError, match="not a MedicalNet weights file"):
        read_medicalnet_state_dict(listed)
