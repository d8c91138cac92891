"""Reconstruction networks: MONAI's E2E-VarNet and an image-domain U-Net baseline.

Both are registered by name (``varnet``, ``unet2d``) so that a checkpoint can rebuild its
network from the architecture name and parameters stored in its metadata.

Scale: both networks are *scale-equivariant* — they normalise their input internally
(MONAI's ``ComplexUnet`` standardises each complex image by its mean and standard
deviation; :class:`ImageUNet` does the same per slice) and undo the normalisation on the
output. They therefore take data at its raw scale (fastMRI: ~1e-4) and return images at that
same scale, while the convolutions only ever see O(1) values. Losses and metrics are computed
at raw scale too, as in the study.

U-Net sizes follow fastMRI's ``Unet(chans, num_pool_layers=4)``: ``chans`` features at full
resolution, doubled at each of the 4 poolings (``chans·16`` in the bottleneck). MONAI's
``BasicUNet`` has exactly 4 pooling levels, so ``pools``/``sens_pools`` only accept 4; the
keys exist so a configuration states the architecture completely.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from monai.apps.reconstruction.complex_utils import complex_abs_t
from monai.apps.reconstruction.mri_utils import root_sum_of_squares_t
from monai.apps.reconstruction.networks.nets.coil_sensitivity_model import CoilSensitivityModel
from monai.apps.reconstruction.networks.nets.complex_unet import ComplexUnet
from monai.apps.reconstruction.networks.nets.utils import (
    divisible_pad_t,
    inverse_divisible_pad_t,
    reshape_channel_complex_to_last_dim,
    reshape_complex_to_channel_dim,
)
from monai.apps.reconstruction.networks.nets.varnet import VariationalNetworkModel
from monai.networks.blocks.fft_utils_t import ifftn_centered_t
from monai.networks.nets import BasicUNet
from torch import nn

from med_unlearning.models.registry import register_architecture

__all__ = [
    "BASIC_UNET_POOLS",
    "BatchedCoilSensitivityModel",
    "ImageUNet",
    "ReconVarNet",
    "StableComplexUnet",
    "build_unet2d",
    "build_varnet",
    "center_crop",
    "unet_features",
]

#: Pooling levels of MONAI's BasicUNet (fixed by its design).
BASIC_UNET_POOLS = 4

_LEAKY_RELU = ("LeakyReLU", {"negative_slope": 0.1, "inplace": True})
_INSTANCE_NORM = ("instance", {"affine": True})


def unet_features(chans: int) -> tuple[int, int, int, int, int, int]:
    """BasicUNet features matching fastMRI's ``Unet(chans, num_pool_layers=4)``."""
    if chans < 1:
        raise ValueError(f"U-Net chans must be >= 1, got {chans}")
    return (chans, 2 * chans, 4 * chans, 8 * chans, 16 * chans, chans)


def _check_pools(name: str, pools: int) -> None:
    if pools != BASIC_UNET_POOLS:
        raise ValueError(
            f"{name}={pools} is not supported: MONAI's BasicUNet always has "
            f"{BASIC_UNET_POOLS} pooling levels (as in the study); set {name}: {BASIC_UNET_POOLS}"
        )


def center_crop(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Crop the last two dimensions of ``images`` to ``size`` around the centre.

    Uses fastMRI's convention (start = (H − h) // 2). Dimensions already smaller than the
    requested size are left as they are.
    """
    height, width = images.shape[-2:]
    crop_h, crop_w = min(int(size[0]), height), min(int(size[1]), width)
    top = (height - crop_h) // 2
    left = (width - crop_w) // 2
    return images[..., top : top + crop_h, left : left + crop_w]


def _standardise_complex(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Standardise ``[B, 2·C, H, W]`` (real parts, then imaginary parts) per item and part.

    Like MONAI's ``complex_normalize`` but safe for a part with no variation (e.g. a real
    image's imaginary part, or an empty slice): its standard deviation is floored at 1e-6
    times the other part's (or the smallest normal float), so nothing is divided by zero and
    the network stays scale-equivariant.
    """
    batch, channels, height, width = x.shape
    parts = x.reshape(batch, 2, -1)
    mean = parts.mean(dim=2)
    std = parts.std(dim=2, unbiased=False)
    floor = (1e-6 * std.amax(dim=1, keepdim=True)).clamp_min(torch.finfo(x.dtype).tiny)
    std = torch.maximum(std, floor)

    def per_channel(values: torch.Tensor) -> torch.Tensor:
        return values[:, :, None].expand(batch, 2, channels // 2).reshape(batch, channels, 1, 1)

    mean, std = per_channel(mean), per_channel(std)
    return (x - mean) / std, mean, std


class StableComplexUnet(ComplexUnet):
    """MONAI's ``ComplexUnet`` whose input standardisation cannot divide by zero.

    MONAI divides each complex part by its standard deviation, which is 0 (→ NaN) when a
    part does not vary, e.g. the imaginary part of a real-valued image. The computation is
    otherwise identical (see :func:`_standardise_complex`).

    Args:
        recentre_output: add the input's mean back to the output (MONAI's and fastMRI's
            behaviour). Without it the output is ``unet(normalised) · std``, a correction
            that is exactly 0 when the last convolution is 0 (see :meth:`zero_last_layer`).
        **kwargs: :class:`~monai.apps.reconstruction.networks.nets.complex_unet.ComplexUnet`'s.
    """

    def __init__(self, *args: Any, recentre_output: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recentre_output = recentre_output

    def zero_last_layer(self) -> None:
        """Set the last convolution's weights and bias to 0 (the output becomes 0 or the mean)."""
        final = self.unet.final_conv
        nn.init.zeros_(final.weight)
        if final.bias is not None:
            nn.init.zeros_(final.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels_first = reshape_complex_to_channel_dim(x)
        normalised, mean, std = _standardise_complex(channels_first)
        padded, pad_sizes = divisible_pad_t(normalised, k=self.pad_factor)
        output = inverse_divisible_pad_t(self.unet(padded), pad_sizes) * std
        if self.recentre_output:
            output = output + mean
        return reshape_channel_complex_to_last_dim(output)


class BatchedCoilSensitivityModel(CoilSensitivityModel):
    """MONAI's coil-sensitivity model, accepting one mask per batch item.

    MONAI's version finds the fully sampled centre from a single mask (``[1, 1, 1, W, 1]``)
    and would fail on a batch of per-item masks (``[B, 1, 1, W, 1]``, as training with
    random offsets produces). Here the centre block is the columns sampled around the middle
    in *every* item (the same for all items of a batch of equal-width k-space, because the
    centre fraction is fixed), and a mask with no sampled middle column is a clear error.
    """

    def get_fully_sampled_region(self, mask: torch.Tensor) -> tuple[int, int]:
        columns = mask.reshape(-1, mask.shape[-2]).to("cpu", torch.bool)
        sampled_everywhere = columns.all(dim=0)
        width = int(sampled_everywhere.shape[0])
        middle = width // 2
        if not bool(sampled_everywhere[middle]):
            raise ValueError(
                f"the undersampling mask does not sample the centre column {middle} of {width}; "
                "VarNet's coil-sensitivity model needs a fully sampled centre"
            )
        left = right = middle
        while right < width and bool(sampled_everywhere[right]):
            right += 1
        while left >= 0 and bool(sampled_everywhere[left]):
            left -= 1
        return left + 1, right


def _check_varnet_inputs(masked_kspace: torch.Tensor, mask: torch.Tensor) -> None:
    if masked_kspace.ndim != 5 or masked_kspace.shape[-1] != 2:
        raise ValueError(
            "VarNet expects masked k-space of shape [B, coils, H, W, 2] (real/imaginary last), "
            f"got {tuple(masked_kspace.shape)}"
        )
    if mask.ndim != 5 or mask.shape[-2] != masked_kspace.shape[-2] or mask.shape[0] not in (
        1,
        masked_kspace.shape[0],
    ):
        raise ValueError(
            f"VarNet expects a mask of shape [B or 1, 1, 1, W, 1] with W = "
            f"{masked_kspace.shape[-2]}, got {tuple(mask.shape)}"
        )


class ReconVarNet(VariationalNetworkModel):
    """E2E-VarNet (MONAI's ``VariationalNetworkModel``) with an encoder/decoder split.

    Input: masked multi-coil k-space ``[B, coils, H, W, 2]`` and its mask
    ``[B or 1, 1, 1, W, 1]``; output: the RSS image ``[B, H, W]`` (full k-space size; crop
    it to the target's size with :func:`center_crop`).

    For unlearning strategies that treat parts of the network separately, the *encoder* is
    the coil-sensitivity model and the first ``encoder_cascades`` cascades and the *decoder*
    the remaining cascades; the features passed between them are the intermediate k-space
    estimate and the sensitivity maps.

    Args:
        num_cascades: unrolled cascades (the study: 12).
        chans: features of each cascade's U-Net at full resolution (the study: 18).
        sens_chans: features of the sensitivity U-Net (the study: 8).
        identity_init: start as the zero-filled reconstruction: each cascade's refinement is
            a correction ``unet(normalised) · std`` whose last convolution starts at 0, so
            the untrained network returns the zero-filled RSS image and every training step
            improves on it. Off = MONAI's/fastMRI's refinement (``· std + mean``, random
            last layer), as in the study. It converges far faster on short CPU budgets.
    """

    input_kind: ClassVar[str] = "kspace"

    def __init__(
        self,
        num_cascades: int = 12,
        chans: int = 18,
        sens_chans: int = 8,
        identity_init: bool = False,
    ) -> None:
        if num_cascades < 1:
            raise ValueError(f"num_cascades must be >= 1, got {num_cascades}")
        sensitivity = BatchedCoilSensitivityModel(
            spatial_dims=2,
            conv_net=StableComplexUnet(
                spatial_dims=2, features=unet_features(sens_chans), act=_LEAKY_RELU,
                norm=_INSTANCE_NORM,
            ),
        )
        refinement = StableComplexUnet(
            spatial_dims=2, features=unet_features(chans), act=_LEAKY_RELU, norm=_INSTANCE_NORM,
            recentre_output=not identity_init,
        )
        super().__init__(sensitivity, refinement, num_cascades=num_cascades, spatial_dims=2)
        self.num_cascades = num_cascades
        self.chans = chans
        self.sens_chans = sens_chans
        self.identity_init = identity_init
        if identity_init:
            for cascade in self.cascades:
                cascade.model.zero_last_layer()

    def extra_repr(self) -> str:
        return (
            f"num_cascades={self.num_cascades}, chans={self.chans}, sens_chans={self.sens_chans}, "
            f"identity_init={self.identity_init}"
        )

    def default_encoder_cascades(self) -> int:
        """Cascades in the encoder part when not specified: the first half."""
        return self.num_cascades // 2

    def encode(
        self, masked_kspace: torch.Tensor, mask: torch.Tensor, encoder_cascades: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sensitivity maps and the k-space after the first ``encoder_cascades`` cascades."""
        _check_varnet_inputs(masked_kspace, mask)
        mask = mask.to(torch.bool)
        count = self.default_encoder_cascades() if encoder_cascades is None else encoder_cascades
        sensitivity_maps = self.coil_sensitivity_model(masked_kspace, mask)
        kspace_pred = masked_kspace.clone()
        for cascade in self.cascades[:count]:
            kspace_pred = cascade(kspace_pred, masked_kspace, mask, sensitivity_maps)
        return kspace_pred, sensitivity_maps

    def decode(
        self,
        features: tuple[torch.Tensor, ...],
        masked_kspace: torch.Tensor,
        mask: torch.Tensor,
        encoder_cascades: int | None = None,
    ) -> torch.Tensor:
        """Run the remaining cascades on :meth:`encode`'s features; the RSS image."""
        mask = mask.to(torch.bool)
        count = self.default_encoder_cascades() if encoder_cascades is None else encoder_cascades
        kspace_pred, sensitivity_maps = features
        for cascade in self.cascades[count:]:
            kspace_pred = cascade(kspace_pred, masked_kspace, mask, sensitivity_maps)
        coil_images = ifftn_centered_t(kspace_pred, spatial_dims=self.spatial_dims)
        return root_sum_of_squares_t(complex_abs_t(coil_images), spatial_dim=1)

    def encoder_modules(self, encoder_cascades: int | None = None) -> list[nn.Module]:
        """The modules of the encoder part (see the class docstring)."""
        count = self.default_encoder_cascades() if encoder_cascades is None else encoder_cascades
        return [self.coil_sensitivity_model, *self.cascades[:count]]

    def decoder_modules(self, encoder_cascades: int | None = None) -> list[nn.Module]:
        """The modules of the decoder part."""
        count = self.default_encoder_cascades() if encoder_cascades is None else encoder_cascades
        return list(self.cascades[count:])

    def forward(self, masked_kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``[B, H, W]`` RSS images from masked k-space (raw scale in and out)."""
        return self.decode(self.encode(masked_kspace, mask), masked_kspace, mask)


class ImageUNet(nn.Module):
    """Image-domain U-Net baseline: zero-filled RSS image in, reconstructed image out.

    Each slice is standardised by the mean and standard deviation of its zero-filled input
    (so the network sees O(1) values whatever the data's scale) and the output is mapped back
    with the same numbers, so the network is scale-equivariant like :class:`ReconVarNet`.
    The encoder is BasicUNet's contracting path (``conv_0``, ``down_1..4``), the decoder its
    expanding path (``upcat_4..1``, ``final_conv``); features are the five skip tensors.

    Args:
        chans: features at full resolution (doubled at each of the 4 poolings).
        dropout: dropout probability inside the convolution blocks.
    """

    input_kind: ClassVar[str] = "image"
    _PAD_FACTOR: ClassVar[int] = 2**BASIC_UNET_POOLS

    def __init__(self, chans: int = 32, dropout: float = 0.0) -> None:
        super().__init__()
        self.chans = chans
        self.unet = BasicUNet(
            spatial_dims=2,
            in_channels=1,
            out_channels=1,
            features=unet_features(chans),
            act=_LEAKY_RELU,
            norm=_INSTANCE_NORM,
            dropout=dropout,
        )

    def extra_repr(self) -> str:
        return f"chans={self.chans}"

    @staticmethod
    def _standardise(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if images.ndim != 3:
            raise ValueError(f"ImageUNet expects images [B, H, W], got {tuple(images.shape)}")
        mean = images.mean(dim=(-2, -1), keepdim=True)
        floor = (1e-6 * mean.abs()).clamp_min(torch.finfo(images.dtype).tiny)
        std = torch.maximum(images.std(dim=(-2, -1), keepdim=True), floor)
        return (images - mean) / std, mean, std

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The contracting path's five feature maps (full resolution to bottleneck)."""
        normalised, _, _ = self._standardise(images)
        padded, _ = divisible_pad_t(normalised.unsqueeze(1), k=self._PAD_FACTOR)
        x0 = self.unet.conv_0(padded)
        x1 = self.unet.down_1(x0)
        x2 = self.unet.down_2(x1)
        x3 = self.unet.down_3(x2)
        x4 = self.unet.down_4(x3)
        return x0, x1, x2, x3, x4

    def decode(self, features: tuple[torch.Tensor, ...], images: torch.Tensor) -> torch.Tensor:
        """The expanding path on :meth:`encode`'s features, mapped back to ``images``' scale."""
        _, mean, std = self._standardise(images)
        _, pad_sizes = divisible_pad_t(images.unsqueeze(1), k=self._PAD_FACTOR)
        x0, x1, x2, x3, x4 = features
        u4 = self.unet.upcat_4(x4, x3)
        u3 = self.unet.upcat_3(u4, x2)
        u2 = self.unet.upcat_2(u3, x1)
        u1 = self.unet.upcat_1(u2, x0)
        output = inverse_divisible_pad_t(self.unet.final_conv(u1), pad_sizes).squeeze(1)
        return output * std + mean

    def encoder_modules(self) -> list[nn.Module]:
        """The contracting path's modules."""
        unet = self.unet
        return [unet.conv_0, unet.down_1, unet.down_2, unet.down_3, unet.down_4]

    def decoder_modules(self) -> list[nn.Module]:
        """The expanding path's modules."""
        unet = self.unet
        return [unet.upcat_4, unet.upcat_3, unet.upcat_2, unet.upcat_1, unet.final_conv]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``[B, H, W]`` images from zero-filled ``[B, H, W]`` images."""
        return self.decode(self.encode(images), images)


@register_architecture("varnet")
def build_varnet(
    num_cascades: int = 12,
    chans: int = 18,
    pools: int = BASIC_UNET_POOLS,
    sens_chans: int = 8,
    sens_pools: int = BASIC_UNET_POOLS,
    identity_init: bool = False,
) -> ReconVarNet:
    """E2E-VarNet; defaults are the study's sizes (12 cascades, 18/8 chans, 4/4 pools)."""
    _check_pools("pools", pools)
    _check_pools("sens_pools", sens_pools)
    return ReconVarNet(
        num_cascades=num_cascades, chans=chans, sens_chans=sens_chans, identity_init=identity_init
    )


@register_architecture("unet2d")
def build_unet2d(chans: int = 32, pools: int = BASIC_UNET_POOLS, dropout: float = 0.0) -> ImageUNet:
    """Image-domain U-Net baseline on the zero-filled RSS image (fastMRI's: 32 chans, 4 pools)."""
    _check_pools("pools", pools)
    return ImageUNet(chans=chans, dropout=dropout)
