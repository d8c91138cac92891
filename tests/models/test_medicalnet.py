"""Loading MedicalNet-format weights (a loaded ``{'state_dict': …}``; no download): prefixes,
head, stem adaptation, base width and key errors, fingerprint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from med_unlearning.datasets import OptionalTorchWeightsDataset
from med_unlearning.models import build_model
from med_unlearning.models.medicalnet import (
    WeightsMismatchError,
    load_medicalnet_weights,
    medicalnet_backbone,
    weights_fingerprint,
)

SMALL = {"base_width": 4, "head_channels": 4}


def _medicalnet_state(architecture: str = "med3d_resnet10", **kwargs) -> dict:
    """A random state dict in MedicalNet's layout: {'module.<key>': …}."""
    torch.manual_seed(123)
    # a pre-training head with another class count, as MedicalNet's files carry
    source = build_model(architecture, {**SMALL, "num_classes": 2, **kwargs}).state_dict()
    state = {
        f"module.{key}": torch.randn_like(value.float()).to(value.dtype)
        for key, value in source.items()
    }
    return state


def test_backbone_loads_with_prefixes_stripped_and_head_left_fresh(tmp_path: Path) -> None:
    path = tmp_path / "resnet_10.pth"
    state = _medicalnet_state()
    torch.save({"state_dict": state}, path)  # MedicalNet's file, read as the catalog does
    weights = OptionalTorchWeightsDataset(filepath=str(path)).load()
    model = build_model("med3d_resnet10", {**SMALL, "num_classes": 9})
    head_before = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("conv_seg.")}
    loaded = load_medicalnet_weights(model, weights)
    after = model.state_dict()
    assert "conv1.weight" in loaded and not any(key.startswith("conv_seg.") for key in loaded)
    torch.testing.assert_close(after["conv1.weight"], state["module.conv1.weight"])
    torch.testing.assert_close(
        after["layer3.0.bn2.running_mean"], state["module.layer3.0.bn2.running_mean"]
    )
    for key, value in head_before.items():
        torch.testing.assert_close(after[key], value)


def test_files_without_batchnorm_counters_or_prefixes_still_load() -> None:
    state = _medicalnet_state()
    bare = {
        key.removeprefix("module."): value
        for key, value in state.items()
        if not key.endswith("num_batches_tracked")
    }
    model = build_model("med3d_resnet10", SMALL)
    load_medicalnet_weights(model, bare)
    torch.testing.assert_close(model.layer1[0].conv1.weight, bare["layer1.0.conv1.weight"])
    assert "conv_seg.0.weight" in bare and "conv_seg.0.weight" not in medicalnet_backbone(bare)


def test_single_channel_stem_is_spread_over_modalities() -> None:
    state = _medicalnet_state()
    model = build_model("med3d_resnet10", {**SMALL, "in_channels": 3})
    load_medicalnet_weights(model, {"state_dict": state})
    image = torch.randn(1, 1, 8, 8, 8)
    expected = torch.nn.functional.conv3d(image, state["module.conv1.weight"], stride=2, padding=3)
    actual = model.conv1(image.repeat(1, 3, 1, 1, 1))
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4)


def test_another_depth_lists_missing_and_unexpected_keys_and_names_the_source() -> None:
    state = _medicalnet_state("med3d_resnet18")  # shortcut A, two blocks per layer
    model = build_model("med3d_resnet10", SMALL)
    with pytest.raises(WeightsMismatchError) as error:
        load_medicalnet_weights(model, {"state_dict": state}, source="weights resnet_18.pth")
    message = str(error.value)
    assert "weights resnet_18.pth" in message
    assert "missing keys" in message and "layer2.0.downsample.0.weight" in message
    assert "unexpected keys" in message and "layer1.1.conv1.weight" in message


def test_another_base_width_names_the_width_the_weights_need() -> None:
    model = build_model("med3d_resnet10", SMALL)
    before = model.conv1.weight.clone()
    with pytest.raises(
        WeightsMismatchError, match=r"base width 8 .*has 4: set segmentation\.model\.base_width: 8"
    ):
        load_medicalnet_weights(model, {"state_dict": _medicalnet_state(base_width=8)})
    torch.testing.assert_close(model.conv1.weight, before)  # nothing half-loaded


def test_other_shapes_are_listed() -> None:
    state = _medicalnet_state(head_channels=4)
    state["module.layer2.0.conv1.weight"] = torch.zeros(3, 3, 3, 3, 3)
    with pytest.raises(WeightsMismatchError, match=r"shape mismatches.*layer2\.0\.conv1\.weight"):
        load_medicalnet_weights(build_model("med3d_resnet10", SMALL), state)


def test_objects_that_are_not_weights_are_refused() -> None:
    model = build_model("med3d_resnet10", SMALL)
    for weights in ([torch.zeros(1)], {"state_dict": {"conv1.weight": "text"}}):
        with pytest.raises(WeightsMismatchError, match="not a MedicalNet weights file"):
            load_medicalnet_weights(model, weights)


def test_fingerprint_follows_the_backbone_values_not_the_layout() -> None:
    state = _medicalnet_state()
    bare = {key.removeprefix("module."): value for key, value in state.items()}
    assert weights_fingerprint(None) is None
    fingerprint = weights_fingerprint({"state_dict": state})
    assert fingerprint.startswith("sha256:") and fingerprint == weights_fingerprint(bare)
    changed = dict(bare, **{"layer1.0.conv1.weight": bare["layer1.0.conv1.weight"] + 1})
    assert weights_fingerprint(changed) != fingerprint
    head_only = dict(bare, **{"conv_seg.0.weight": bare["conv_seg.0.weight"] + 1})
    assert weights_fingerprint(head_only) == fingerprint
