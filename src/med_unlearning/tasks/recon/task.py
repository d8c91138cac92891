"""The reconstruction task: the study's loss, targets and model parts (no training loop).

:class:`ReconTask` implements :class:`~med_unlearning.tasks.base.Task` for batches made by
:class:`~med_unlearning.data.recon_dataset.ReconSliceTransform`. Everything stays at the
data's **raw scale** (fastMRI files: images ~1e-4): outputs, targets, ``batch.max_value``
(the volume's max, the SSIM data range and PSNR peak) and the noise of
:meth:`ReconTask.noisy_target`. The study's NL noise scale λ = 1e-5 is given on that scale;
a strategy wanting noise *relative* to the image multiplies by :meth:`ReconTask.data_range`.

The loss is the study's J = (1 − SSIM)(output, target; data range = volume max, 7×7, k1
.01, k2 .03) + 1e-5 · L1(output, target), per slice; see :meth:`ReconTask.criterion`.

Training is in :mod:`.training`, the data in :mod:`.data`, inference in :mod:`.inference`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from med_unlearning.device import full_precision
from med_unlearning.io.checkpoint import ModelCheckpoint
from med_unlearning.metrics.image_quality import slice_ssim
from med_unlearning.models import build_model
from med_unlearning.models.recon import center_crop
from med_unlearning.tasks.base import Batch, Features, ModelParts, rebuild_model

__all__ = ["ReconLoss", "ReconTask"]

#: The k-space input field (VarNet) and the image input field (U-Net) of a ReconSample.
_INPUT_FIELDS = {"kspace": "masked_kspace", "image": "zero_filled"}


@dataclass(frozen=True)
class ReconLoss:
    """Settings of the study's loss J = (1 − SSIM) + ``l1_weight`` · L1."""

    l1_weight: float = 1e-5
    win_size: int = 7
    k1: float = 0.01
    k2: float = 0.03


class ReconTask:
    """MRI reconstruction as a :class:`~med_unlearning.tasks.base.Task`.

    Args:
        architecture: ``varnet`` (k-space in) or ``unet2d`` (zero-filled image in).
        architecture_params: the architecture factory's arguments.
        loss: the loss settings.
        encoder_cascades: VarNet cascades in the "encoder" part (``None`` = half).

    Batches are collated :class:`~med_unlearning.data.samples.ReconSample` s (batched:
    ``target`` ``[B, h, w]``, ``max_value`` ``[B]``, ...).
    """

    name = "recon"

    def __init__(
        self,
        architecture: str = "varnet",
        architecture_params: Mapping[str, Any] | None = None,
        loss: ReconLoss | None = None,
        encoder_cascades: int | None = None,
    ) -> None:
        self.architecture = architecture
        self.architecture_params: dict[str, Any] = dict(architecture_params or {})
        self.loss_settings = loss or ReconLoss()
        self.encoder_cascades = encoder_cascades

    @classmethod
    def from_params(cls, params: Any) -> ReconTask:
        """Build from the ``recon`` parameters (``ReconParams``)."""
        return cls(
            architecture=params.model.architecture,
            architecture_params=params.model.architecture_params(),
            loss=ReconLoss(**params.loss.model_dump()),
            encoder_cascades=params.model.encoder_cascades,
        )

    @classmethod
    def from_checkpoint(cls, checkpoint: ModelCheckpoint, defaults: Any | None = None) -> ReconTask:
        """The task a recon checkpoint was trained with: architecture and parameters from its
        metadata, loss and encoder split from its ``extra`` (``loss``, ``encoder_cascades``),
        else from ``defaults`` (``ReconParams``), else the class defaults.

        Raises:
            ValueError: the checkpoint is not a reconstruction model.
        """
        meta = checkpoint.metadata
        if meta.task != cls.name:
            raise ValueError(
                f"checkpoint {checkpoint.content_hash[:12]} is a {meta.task!r} model, not 'recon'"
            )
        loss = meta.extra.get("loss") or (defaults.loss.model_dump() if defaults else None)
        fallback_cascades = defaults.model.encoder_cascades if defaults else None
        return cls(
            architecture=meta.architecture,
            architecture_params=meta.architecture_params,
            loss=ReconLoss(**loss) if loss else None,
            encoder_cascades=meta.extra.get("encoder_cascades", fallback_cascades),
        )

    def __repr__(self) -> str:
        return (
            f"ReconTask(architecture={self.architecture!r}, params={self.architecture_params}, "
            f"loss={self.loss_settings})"
        )

    # -- model ------------------------------------------------------------------------------

    def build_model(self) -> nn.Module:
        """A freshly initialised network (seed torch first for reproducible weights)."""
        return build_model(self.architecture, self.architecture_params)

    def load_checkpoint(self, checkpoint: ModelCheckpoint) -> nn.Module:
        """The network of ``checkpoint`` (see :func:`~med_unlearning.tasks.base.rebuild_model`)."""
        return rebuild_model(self, checkpoint)

    def _input_field(self, model: nn.Module | None = None) -> str:
        kind = getattr(model, "input_kind", None) if model is not None else None
        if kind is None:
            kind = "kspace" if self.architecture == "varnet" else "image"
        return _INPUT_FIELDS[kind]

    def forward(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """The reconstruction ``[B, h, w]`` at raw scale, cropped to the target's size."""
        return self.decode(model, self.encode(model, batch), batch)

    # -- targets and loss -------------------------------------------------------------------

    def target(self, batch: Batch) -> torch.Tensor:
        """The fully sampled image ``[B, h, w]`` (raw scale)."""
        return batch.target

    def data_range(self, batch: Batch) -> torch.Tensor:
        """Each slice's volume max ``[B]`` (raw scale): SSIM data range, PSNR peak."""
        return batch.max_value

    def output_as_target(self, output: torch.Tensor, batch: Batch) -> torch.Tensor:
        """A reconstruction is already an image target: ``output`` detached."""
        return output.detach()

    @full_precision
    def criterion(
        self,
        output: torch.Tensor,
        target: torch.Tensor,
        batch: Batch,
        reduction: Literal["mean", "none"] = "mean",
    ) -> torch.Tensor:
        """J = (1 − SSIM) + l1_weight · mean |output − target|, per slice.

        The SSIM's data range is the slice's volume max (``batch.max_value``).
        Computed in float32 with autocast off (:func:`~med_unlearning.device.full_precision`),
        so a bf16/fp16 forward pass still gets the float32 objective.
        """
        settings = self.loss_settings
        ssim = slice_ssim(
            output, target, self.data_range(batch),
            win_size=settings.win_size, k1=settings.k1, k2=settings.k2,
        )
        l1 = (output - target).abs().flatten(1).mean(dim=1)
        per_slice = (1.0 - ssim) + settings.l1_weight * l1
        if reduction == "none":
            return per_slice
        if reduction == "mean":
            return per_slice.mean()
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """The training objective J on the batch's own targets."""
        return self.criterion(self.forward(model, batch), self.target(batch), batch)

    def noisy_target(
        self, batch: Batch, scale: float, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``target + scale · N(0, 1)``, with ``scale`` in the data's raw units.

        The study's NL uses λ = 1e-5 on raw fastMRI scale (images ~1e-4), i.e. noise of
        ~10% of the image; pass ``λ_rel · data_range(batch)[:, None, None]`` for noise
        relative to each volume's max.
        """
        target = self.target(batch)
        noise_device = generator.device if generator is not None else target.device
        noise = torch.randn(
            target.shape, generator=generator, dtype=target.dtype, device=noise_device
        ).to(target.device)
        return target + torch.as_tensor(scale, dtype=target.dtype, device=target.device) * noise

    # -- parts ------------------------------------------------------------------------------

    def parts(self, model: nn.Module) -> ModelParts:
        """VarNet: encoder = sensitivity model + first cascades; U-Net: contracting path."""
        if getattr(model, "input_kind", None) == "kspace":
            return ModelParts(
                encoder=model.encoder_modules(self.encoder_cascades),
                decoder=model.decoder_modules(self.encoder_cascades),
            )
        return ModelParts(encoder=model.encoder_modules(), decoder=model.decoder_modules())

    def encode(self, model: nn.Module, batch: Batch) -> Features:
        """VarNet: (intermediate k-space, sensitivity maps); U-Net: the five skip tensors."""
        if getattr(model, "input_kind", None) == "kspace":
            return tuple(model.encode(batch.masked_kspace, batch.mask, self.encoder_cascades))
        return tuple(model.encode(batch.zero_filled))

    def decode(self, model: nn.Module, features: Features, batch: Batch) -> torch.Tensor:
        """The decoder part, cropped to the target's size."""
        if getattr(model, "input_kind", None) == "kspace":
            image = model.decode(
                features, batch.masked_kspace, batch.mask, self.encoder_cascades
            )
        else:
            image = model.decode(features, batch.zero_filled)
        return center_crop(image, tuple(batch.target.shape[-2:]))

    # -- inputs -----------------------------------------------------------------------------

    def inputs(self, batch: Batch) -> torch.Tensor:
        """VarNet: the masked k-space ``[B, coils, H, W, 2]``; U-Net: the zero-filled image."""
        return getattr(batch, self._input_field())

    def with_inputs(self, batch: Batch, inputs: torch.Tensor) -> Batch:
        """A shallow copy of ``batch`` with its network input replaced.

        For VarNet the new k-space is re-masked, so unsampled columns stay zero.
        """
        field = self._input_field()
        if field == "masked_kspace":
            inputs = inputs * batch.mask.to(inputs.dtype)
        return batch._replace(**{field: inputs})
