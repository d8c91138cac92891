"""Med3D ResNet segmentation networks: MedicalNet's key layout, dilation, output stride."""

from __future__ import annotations

import pytest
import torch

from med_unlearning.models import available_architectures, build_model
from med_unlearning.models.segmentation import Med3DResNet, ZeroPadShortcut


@pytest.fixture(scope="module")
def resnet50() -> Med3DResNet:
    torch.manual_seed(0)
    return build_model("med3d_resnet50", {"num_classes": 9}).eval()


def test_all_depths_are_registered() -> None:
    names = set(available_architectures())
    assert {"med3d_resnet10", "med3d_resnet18", "med3d_resnet34", "med3d_resnet50"} <= names


def test_resnet50_has_medicalnet_layout(resnet50: Med3DResNet) -> None:
    state = resnet50.state_dict()
    assert state["conv1.weight"].shape == (64, 1, 7, 7, 7)
    assert resnet50.conv1.stride == (2, 2, 2) and resnet50.conv1.padding == (3, 3, 3)
    assert resnet50.conv1.bias is None
    assert [len(getattr(resnet50, f"layer{i}")) for i in range(1, 5)] == [3, 4, 6, 3]
    # shortcut B: 1x1x1 convolution + BatchNorm, once per layer
    assert state["layer1.0.downsample.0.weight"].shape == (256, 64, 1, 1, 1)
    assert "layer1.0.downsample.1.running_var" in state
    assert "layer1.1.downsample.0.weight" not in state
    assert state["layer4.2.conv3.weight"].shape == (2048, 512, 1, 1, 1)
    # layer3/4 keep stride 1 and dilate (output stride 8)
    assert resnet50.layer2[0].conv2.stride == (2, 2, 2)
    for layer, dilation in ((resnet50.layer3, 2), (resnet50.layer4, 4)):
        for block in layer:
            assert block.conv2.stride == (1, 1, 1)
            assert block.conv2.dilation == (dilation,) * 3 == block.conv2.padding
    # conv_seg head exactly as MedicalNet's
    assert state["conv_seg.0.weight"].shape == (2048, 32, 2, 2, 2) and "conv_seg.0.bias" in state
    assert state["conv_seg.1.running_mean"].shape == (32,)
    assert state["conv_seg.3.weight"].shape == (32, 32, 3, 3, 3) and "conv_seg.3.bias" not in state
    assert state["conv_seg.6.weight"].shape == (9, 32, 1, 1, 1) and "conv_seg.6.bias" not in state
    parameters = sum(p.numel() for p in resnet50.parameters())
    assert 46.0e6 < parameters < 47.5e6  # MedicalNet reports 46.2M for its ResNet-50


def test_resnet50_output_stride(resnet50: Med3DResNet) -> None:
    x = torch.randn(1, 1, 8, 16, 24)
    with torch.no_grad():
        features = resnet50.encode(x)
        native = resnet50.decode(features)
        upsampled = resnet50(x)
    assert features.shape == (1, 2048, 1, 2, 3)  # 1/8
    assert native.shape == (1, 9, 2, 4, 6)  # MedicalNet's head output: 1/4
    assert upsampled.shape == (1, 9, 8, 16, 24)  # trilinear back to the input size
    expected = torch.nn.functional.interpolate(native, size=(8, 16, 24), mode="trilinear")
    torch.testing.assert_close(upsampled, expected)


def test_resnet18_uses_parameter_free_shortcut_a() -> None:
    model = build_model("med3d_resnet18", {"base_width": 8})
    assert isinstance(model.layer2[0].downsample, ZeroPadShortcut)
    assert not any("downsample" in key for key in model.state_dict())
    x = torch.randn(2, 1, 16, 16, 8)
    assert model(x).shape == (2, 9, 16, 16, 8)


def test_zero_pad_shortcut_strides_and_pads_channels() -> None:
    x = torch.randn(1, 2, 4, 4, 4)
    out = ZeroPadShortcut(out_channels=5, stride=2)(x)
    assert out.shape == (1, 5, 2, 2, 2)
    torch.testing.assert_close(out[:, :2], x[:, :, ::2, ::2, ::2])
    assert not out[:, 2:].any()


def test_resnet10_light_options() -> None:
    model = build_model(
        "med3d_resnet10",
        {
            "in_channels": 3,
            "num_classes": 4,
            "base_width": 8,
            "head_channels": 8,
            "no_max_pool": True,
        },
    )
    x = torch.randn(2, 3, 16, 16, 8)
    assert model.encode(x).shape == (2, 64, 4, 4, 2)  # output stride 4 without the max-pool
    assert model.decode(model.encode(x)).shape == (2, 4, 8, 8, 4)  # 1/2
    assert model(x).shape == (2, 4, 16, 16, 8)
    assert "no_max_pool=True" in repr(model)


def test_encoder_and_decoder_partition_the_parameters() -> None:
    model = build_model("med3d_resnet10", {"base_width": 8})
    encoder = {id(p) for module in model.encoder_modules() for p in module.parameters()}
    decoder = {id(p) for module in model.decoder_modules() for p in module.parameters()}
    assert encoder and decoder and not encoder & decoder
    assert encoder | decoder == {id(p) for p in model.parameters()}
    assert decoder == {id(p) for p in model.conv_seg.parameters()}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"shortcut_type": "C"}, "shortcut_type"),
        ({"num_classes": 1}, "num_classes"),
        ({"base_width": 0}, "base_width"),
    ],
)
def test_bad_arguments_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_model("med3d_resnet10", kwargs)
