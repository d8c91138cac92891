"""Med3D (MedicalNet) 3D ResNet segmentation networks.

The network follows MedicalNet's ``models/resnet.py`` (Chen et al., "Med3D", 2019) closely
enough that its published weights (``resnet_10.pth``, ``resnet_50.pth``,
``resnet_50_23dataset.pth``…) load by key name (see :mod:`med_unlearning.models.medicalnet`):

- stem: ``conv1`` (7³, stride 2, padding 3, no bias), ``bn1``, ReLU, ``maxpool`` (3³, stride 2,
  padding 1);
- ``layer1``…``layer4`` of :class:`BasicBlock` (ResNet-10/18/34) or :class:`Bottleneck`
  (ResNet-50) blocks; layer2 has stride 2, layer3 and layer4 keep stride 1 and dilate their
  3³ convolutions by 2 and 4, so the encoder's output stride is 8;
- shortcut ``B`` (``downsample.0`` = 1³ convolution, ``downsample.1`` = BatchNorm) or ``A``
  (parameter-free: strided identity padded with zero channels; MedicalNet's ResNet-18/34);
- head ``conv_seg``: ConvTranspose3d(C→32, 2, stride 2) → BN → ReLU → Conv3d(32→32, 3³,
  no bias) → BN → ReLU → Conv3d(32→classes, 1³, no bias).

MedicalNet's head therefore predicts at **1/4 of the input resolution** (stride 8 encoder,
×2 transposed convolution). MedicalNet trained against labels shrunk to that size; here
:meth:`Med3DResNet.forward` instead upsamples the logits trilinearly to the input size (when
``upsample_logits`` is true, the default), so losses, metrics and sliding-window inference
all work on the full-resolution label grid.

Why not MONAI's ``monai.networks.nets.resnet``: its blocks have the same key names, but
neither the blocks nor ``ResNet`` support dilated convolutions, and its layer3/layer4 are
strided (output stride 32) — the Med3D segmentation layout cannot be built from them without
patching modules after construction. The blocks below are small and mirror MedicalNet's.

For the light CPU default, ``base_width`` scales every encoder width (64 = MedicalNet's
widths, required to load its weights; 16 makes a ResNet-10 ~16× cheaper).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from med_unlearning.models.registry import register_architecture

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "Med3DResNet",
    "ZeroPadShortcut",
    "med3d_resnet10",
    "med3d_resnet18",
    "med3d_resnet34",
    "med3d_resnet50",
]

#: Names of the modules that form the encoder, in forward order (the rest is the decoder).
ENCODER_MODULES = ("conv1", "bn1", "maxpool", "layer1", "layer2", "layer3", "layer4")
#: Name of the decoder/head module (MedicalNet's ``conv_seg``; left fresh when loading weights).
DECODER_MODULES = ("conv_seg",)

ShortcutType = Literal["A", "B"]


def _conv3(in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1) -> nn.Conv3d:
    """3³ convolution whose padding equals its dilation, so stride 1 keeps the size."""
    return nn.Conv3d(
        in_channels,
        out_channels,
        kernel_size=3,
        stride=stride,
        padding=dilation,
        dilation=dilation,
        bias=False,
    )


class ZeroPadShortcut(nn.Module):
    """MedicalNet's shortcut type ``A``: strided identity, extra channels filled with zeros.

    It has no parameters, so it adds no keys to a state dict.
    """

    def __init__(self, out_channels: int, stride: int) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x[:, :, :: self.stride, :: self.stride, :: self.stride]
        missing = self.out_channels - out.shape[1]
        if missing <= 0:
            return out
        zeros = out.new_zeros((out.shape[0], missing, *out.shape[2:]))
        return torch.cat([out, zeros], dim=1)

    def extra_repr(self) -> str:
        return f"out_channels={self.out_channels}, stride={self.stride}"


class BasicBlock(nn.Module):
    """Two 3³ convolutions with a residual connection (ResNet-10/18/34)."""

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        dilation: int = 1,
        downsample: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = _conv3(in_channels, planes, stride=stride, dilation=dilation)
        self.bn1 = nn.BatchNorm3d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3(planes, planes, dilation=dilation)
        self.bn2 = nn.BatchNorm3d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class Bottleneck(nn.Module):
    """1³ reduce, 3³ (strided/dilated), 1³ expand ×4, with a residual connection (ResNet-50)."""

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        dilation: int = 1,
        downsample: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(in_channels, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = _conv3(planes, planes, stride=stride, dilation=dilation)
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv3 = nn.Conv3d(planes, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm3d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


class Med3DResNet(nn.Module):
    """Med3D 3D ResNet with MedicalNet's ``conv_seg`` segmentation head.

    Args:
        block: ``"basic"`` (:class:`BasicBlock`) or ``"bottleneck"`` (:class:`Bottleneck`).
        layers: number of blocks in layer1..layer4.
        in_channels: input channels (MR modalities); MedicalNet's weights have 1.
        num_classes: output classes (background included).
        shortcut_type: ``"B"`` (1³ conv + BN) or ``"A"`` (zero padding, no parameters).
        base_width: channels of the stem and layer1; layers 2–4 use 2×, 4×, 8× (64 = Med3D).
        head_channels: channels inside ``conv_seg`` (32 in MedicalNet).
        upsample_logits: return logits at the input size (trilinear) instead of 1/4 of it.
        no_max_pool: skip the stem's max-pooling (as MONAI's ``no_max_pool``): output stride
            4 instead of 8, logits at 1/2 instead of 1/4 of the input. It has no parameters,
            so MedicalNet weights still load; it costs ~8× more compute after the stem. For
            small or thin-sliced volumes (the CPU sample study), off for the study's network.

    Shapes:
        input ``[B, in_channels, X, Y, Z]`` → logits ``[B, num_classes, X, Y, Z]`` (without
        upsampling: 1/4 of the size per axis for sizes divisible by 8, 1/2 with
        ``no_max_pool``).
    """

    def __init__(
        self,
        block: Literal["basic", "bottleneck"],
        layers: Sequence[int],
        *,
        in_channels: int = 1,
        num_classes: int = 9,
        shortcut_type: ShortcutType = "B",
        base_width: int = 64,
        head_channels: int = 32,
        upsample_logits: bool = True,
        no_max_pool: bool = False,
    ) -> None:
        super().__init__()
        if block not in ("basic", "bottleneck"):
            raise ValueError(f"block must be 'basic' or 'bottleneck', got {block!r}")
        if shortcut_type not in ("A", "B"):
            raise ValueError(f"shortcut_type must be 'A' or 'B', got {shortcut_type!r}")
        if len(layers) != 4 or min(layers) < 1:
            raise ValueError(f"layers must be 4 positive block counts, got {list(layers)}")
        if in_channels < 1 or num_classes < 2 or base_width < 1 or head_channels < 1:
            raise ValueError(
                "in_channels, base_width, head_channels must be >= 1 and num_classes >= 2; got "
                f"{in_channels=}, {num_classes=}, {base_width=}, {head_channels=}"
            )
        block_cls = BasicBlock if block == "basic" else Bottleneck
        self.block = block
        self.layers_config = tuple(int(n) for n in layers)
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.shortcut_type = shortcut_type
        self.base_width = base_width
        self.upsample_logits = upsample_logits
        self.no_max_pool = no_max_pool
        self._inplanes = base_width

        self.conv1 = nn.Conv3d(
            in_channels, base_width, kernel_size=7, stride=2, padding=3, bias=False
        )
        self.bn1 = nn.BatchNorm3d(base_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool: nn.Module = (
            nn.Identity() if no_max_pool else nn.MaxPool3d(kernel_size=3, stride=2, padding=1)
        )
        self.layer1 = self._make_layer(block_cls, base_width, layers[0])
        self.layer2 = self._make_layer(block_cls, base_width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block_cls, base_width * 4, layers[2], dilation=2)
        self.layer4 = self._make_layer(block_cls, base_width * 8, layers[3], dilation=4)
        self.feature_channels = base_width * 8 * block_cls.expansion
        self.conv_seg = nn.Sequential(
            nn.ConvTranspose3d(self.feature_channels, head_channels, kernel_size=2, stride=2),
            nn.BatchNorm3d(head_channels),
            nn.ReLU(inplace=True),
            nn.Conv3d(head_channels, head_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm3d(head_channels),
            nn.ReLU(inplace=True),
            nn.Conv3d(head_channels, num_classes, kernel_size=1, bias=False),
        )
        self._init_weights()

    def _make_layer(
        self,
        block_cls: type[BasicBlock] | type[Bottleneck],
        planes: int,
        blocks: int,
        stride: int = 1,
        dilation: int = 1,
    ) -> nn.Sequential:
        out_channels = planes * block_cls.expansion
        downsample: nn.Module | None = None
        if stride != 1 or self._inplanes != out_channels:
            if self.shortcut_type == "A":
                downsample = ZeroPadShortcut(out_channels, stride)
            else:
                downsample = nn.Sequential(
                    nn.Conv3d(
                        self._inplanes, out_channels, kernel_size=1, stride=stride, bias=False
                    ),
                    nn.BatchNorm3d(out_channels),
                )
        modules = [block_cls(self._inplanes, planes, stride, dilation, downsample)]
        self._inplanes = out_channels
        modules += [block_cls(out_channels, planes, dilation=dilation) for _ in range(1, blocks)]
        return nn.Sequential(*modules)

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv3d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm3d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder features (layer4 output) at 1/8 of the input size (1/4 with ``no_max_pool``)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def decode(
        self, features: torch.Tensor, output_size: Sequence[int] | None = None
    ) -> torch.Tensor:
        """Head logits from encoder features; resized trilinearly to ``output_size`` if given."""
        logits = self.conv_seg(features)
        if output_size is not None and tuple(logits.shape[2:]) != tuple(output_size):
            logits = F.interpolate(
                logits, size=tuple(output_size), mode="trilinear", align_corners=False
            )
        return logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = tuple(x.shape[2:]) if self.upsample_logits else None
        return self.decode(self.encode(x), size)

    def encoder_modules(self) -> list[nn.Module]:
        """The encoder's modules (stem and layer1..layer4)."""
        return [getattr(self, name) for name in ENCODER_MODULES]

    def decoder_modules(self) -> list[nn.Module]:
        """The decoder's modules (the ``conv_seg`` head)."""
        return [getattr(self, name) for name in DECODER_MODULES]

    def extra_repr(self) -> str:
        return (
            f"block={self.block!r}, layers={list(self.layers_config)}, "
            f"in_channels={self.in_channels}, num_classes={self.num_classes}, "
            f"shortcut_type={self.shortcut_type!r}, base_width={self.base_width}, "
            f"upsample_logits={self.upsample_logits}, no_max_pool={self.no_max_pool}"
        )


def _factory(
    name: str,
    block: Literal["basic", "bottleneck"],
    layers: tuple[int, ...],
    shortcut: ShortcutType,
):
    def build(
        in_channels: int = 1,
        num_classes: int = 9,
        shortcut_type: ShortcutType = shortcut,
        base_width: int = 64,
        head_channels: int = 32,
        upsample_logits: bool = True,
        no_max_pool: bool = False,
    ) -> Med3DResNet:
        return Med3DResNet(
            block,
            layers,
            in_channels=in_channels,
            num_classes=num_classes,
            shortcut_type=shortcut_type,
            base_width=base_width,
            head_channels=head_channels,
            upsample_logits=upsample_logits,
            no_max_pool=no_max_pool,
        )

    build.__name__ = build.__qualname__ = name
    build.__doc__ = (
        f"Med3D {name.removeprefix('med3d_')}: {block} blocks {list(layers)}, shortcut "
        f"{shortcut!r} by default (as MedicalNet's weights); see :class:`Med3DResNet`."
    )
    return build


# Default shortcut types are those of MedicalNet's published weights (its README's table).
med3d_resnet10 = register_architecture("med3d_resnet10")(
    _factory("med3d_resnet10", "basic", (1, 1, 1, 1), "B")
)
med3d_resnet18 = register_architecture("med3d_resnet18")(
    _factory("med3d_resnet18", "basic", (2, 2, 2, 2), "A")
)
med3d_resnet34 = register_architecture("med3d_resnet34")(
    _factory("med3d_resnet34", "basic", (3, 4, 6, 3), "A")
)
med3d_resnet50 = register_architecture("med3d_resnet50")(
    _factory("med3d_resnet50", "bottleneck", (3, 4, 6, 3), "B")
)
