"""The reconstruction task: the study's loss, targets and model parts, and training/inference.

:class:`ReconTask` implements :class:`~med_unlearning.tasks.base.Task` for batches made by
:class:`~med_unlearning.data.recon_dataset.ReconSliceTransform`. Everything stays at the
data's **raw scale** (fastMRI files: images ~1e-4): outputs, targets, ``batch["max_value"]``
(the volume's max, the SSIM data range and PSNR peak) and the noise of
:meth:`ReconTask.noisy_target`. The study's NL noise scale λ = 1e-5 is given on that scale;
a strategy wanting noise *relative* to the image multiplies by :meth:`ReconTask.data_range`.

The loss is the study's J = (1 − SSIM)(output, target; data range = volume max, 7×7, k1
.01, k2 .03) + 1e-5 · L1(output, target), per slice; see :meth:`ReconTask.criterion`.

Functions below train a model (:func:`fit_recon_model`, using the shared loop), run it over
volumes (:func:`reconstruct_volumes`, :func:`reconstruct_volume`) and score it
(:func:`evaluate_reconstructions`); :func:`model_from_checkpoint` rebuilds a trained model.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader

from med_unlearning.data.masks import KspaceUndersampler
from med_unlearning.data.recon_dataset import (
    FastMRISliceDataset,
    ReconSliceTransform,
    VolumeSource,
)
from med_unlearning.device import full_precision, resolve_device
from med_unlearning.io.checkpoint import ModelCheckpoint
from med_unlearning.metrics.image_quality import slice_ssim, volume_metrics
from med_unlearning.models import build_model
from med_unlearning.models.recon import center_crop
from med_unlearning.tasks.base import Batch, Features, ModelParts
from med_unlearning.training import (
    LoopSettings,
    ResumeSettings,
    TrainingResult,
    make_loader,
    move_to_device,
    seed_everything,
    train,
)

__all__ = [
    "ReconLoss",
    "ReconTask",
    "ReconTrainingSettings",
    "VolumeReconstruction",
    "evaluate_reconstructions",
    "fit_recon_model",
    "model_from_checkpoint",
    "recon_loader",
    "reconstruct_volume",
    "reconstruct_volumes",
    "undersampler_from_checkpoint",
]

logger = logging.getLogger(__name__)

#: The k-space input key (VarNet) and the image input key (U-Net) of a batch.
_INPUT_KEYS = {"kspace": "masked_kspace", "image": "zero_filled"}


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

    Batches are dicts with the keys of :data:`med_unlearning.data.recon_dataset.SAMPLE_KEYS`
    (batched: ``target`` ``[B, h, w]``, ``max_value`` ``[B]``, ...).
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

    def __repr__(self) -> str:
        return (
            f"ReconTask(architecture={self.architecture!r}, params={self.architecture_params}, "
            f"loss={self.loss_settings})"
        )

    # -- model ------------------------------------------------------------------------------

    def build_model(self) -> nn.Module:
        """A freshly initialised network (seed torch first for reproducible weights)."""
        return build_model(self.architecture, self.architecture_params)

    def _input_key(self, model: nn.Module | None = None) -> str:
        kind = getattr(model, "input_kind", None) if model is not None else None
        if kind is None:
            kind = "kspace" if self.architecture == "varnet" else "image"
        return _INPUT_KEYS[kind]

    def forward(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """The reconstruction ``[B, h, w]`` at raw scale, cropped to the target's size."""
        return self.decode(model, self.encode(model, batch), batch)

    # -- targets and loss -------------------------------------------------------------------

    def target(self, batch: Batch) -> torch.Tensor:
        """The fully sampled image ``[B, h, w]`` (raw scale)."""
        return batch["target"]

    def data_range(self, batch: Batch) -> torch.Tensor:
        """Each slice's volume max ``[B]`` (raw scale): SSIM data range, PSNR peak."""
        return batch["max_value"]

    @full_precision
    def criterion(
        self,
        output: torch.Tensor,
        target: torch.Tensor,
        batch: Batch,
        reduction: Literal["mean", "none"] = "mean",
    ) -> torch.Tensor:
        """J = (1 − SSIM) + l1_weight · mean |output − target|, per slice.

        The SSIM's data range is the slice's volume max (``batch["max_value"]``).
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
            return tuple(model.encode(batch["masked_kspace"], batch["mask"], self.encoder_cascades))
        return tuple(model.encode(batch["zero_filled"]))

    def decode(self, model: nn.Module, features: Features, batch: Batch) -> torch.Tensor:
        """The decoder part, cropped to the target's size."""
        if getattr(model, "input_kind", None) == "kspace":
            image = model.decode(
                features, batch["masked_kspace"], batch["mask"], self.encoder_cascades
            )
        else:
            image = model.decode(features, batch["zero_filled"])
        return center_crop(image, tuple(batch["target"].shape[-2:]))

    # -- inputs -----------------------------------------------------------------------------

    def inputs(self, batch: Batch) -> torch.Tensor:
        """VarNet: the masked k-space ``[B, coils, H, W, 2]``; U-Net: the zero-filled image."""
        return batch[self._input_key()]

    def with_inputs(self, batch: Batch, inputs: torch.Tensor) -> Batch:
        """A shallow copy of ``batch`` with its network input replaced.

        For VarNet the new k-space is re-masked, so unsampled columns stay zero.
        """
        key = self._input_key()
        if key == "masked_kspace":
            inputs = inputs * batch["mask"].to(inputs.dtype)
        return {**batch, key: inputs}


# ------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReconTrainingSettings:
    """How :func:`fit_recon_model` trains (the study's recipe by default)."""

    epochs: int = 50
    batch_size: int = 1
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip_norm: float | None = 0.5
    plateau_metric: str = "val_loss"
    plateau_factor: float = 0.1
    plateau_patience: int = 10
    max_steps_per_epoch: int | None = None
    cache_volumes: bool = False
    seed: int = 42
    device: str = "auto"
    precision: str = "fp32"
    num_workers: int = 0
    pin_memory: bool | str = "auto"
    progress: bool = True
    deterministic: bool = True
    description: str = "recon"
    resume: ResumeSettings | None = None


def _plateau_mode(metric: str) -> str:
    return "max" if metric.endswith(("psnr", "ssim")) else "min"


@dataclass
class VolumeReconstruction:
    """One volume's reconstruction with what is needed to score it.

    Attributes:
        volume_id: the volume.
        output: the model's reconstruction ``[slices, h, w]`` (raw scale).
        target: the file's reconstruction (zeros when absent).
        zero_filled: the zero-filled RSS baseline.
        max_value: the volume's max.
        has_target: whether ``target`` is real.
        loss: the mean per-slice task loss.
    """

    volume_id: str
    output: np.ndarray
    target: np.ndarray
    zero_filled: np.ndarray
    max_value: float
    has_target: bool
    loss: float = float("nan")
    slice_losses: list[float] = field(default_factory=list, repr=False)


def reconstruct_volumes(
    model: nn.Module,
    task: ReconTask,
    loader: Iterable[Batch],
    device: torch.device | str = "cpu",
) -> dict[str, VolumeReconstruction]:
    """Run ``model`` over every slice of ``loader`` and stack the slices per volume.

    Slices are placed by their ``slice_index``, so the loader's order does not matter.
    The model is put in eval mode and gradients are off.
    """
    device = resolve_device(device)
    was_training = model.training
    model.eval()
    parts: dict[str, dict[str, Any]] = {}
    with torch.no_grad():
        for batch in loader:
            batch = move_to_device(batch, device)
            output = task.forward(model, batch)
            losses = task.criterion(output, task.target(batch), batch, reduction="none")
            for row, volume_id in enumerate(batch["volume_id"]):
                record = parts.setdefault(
                    volume_id,
                    {"slices": {}, "max_value": float(batch["max_value"][row]), "has_target": True},
                )
                record["slices"][int(batch["slice_index"][row])] = (
                    output[row].float().cpu().numpy(),
                    batch["target"][row].float().cpu().numpy(),
                    batch["zero_filled"][row].float().cpu().numpy(),
                    float(losses[row]),
                )
                record["has_target"] &= bool(batch["has_target"][row])
    model.train(was_training)
    results = {}
    for volume_id in sorted(parts):
        record = parts[volume_id]
        ordered = [record["slices"][index] for index in sorted(record["slices"])]
        slice_losses = [item[3] for item in ordered]
        results[volume_id] = VolumeReconstruction(
            volume_id=volume_id,
            output=np.stack([item[0] for item in ordered]),
            target=np.stack([item[1] for item in ordered]),
            zero_filled=np.stack([item[2] for item in ordered]),
            max_value=record["max_value"],
            has_target=record["has_target"],
            loss=float(np.mean(slice_losses)),
            slice_losses=slice_losses,
        )
    return results


def evaluate_reconstructions(
    reconstructions: Mapping[str, VolumeReconstruction], include_zero_filled: bool = True
) -> pd.DataFrame:
    """Per-volume PSNR/SSIM/NMSE (fastMRI definitions, peak = the volume's max).

    Returns:
        One row per volume with a target: ``volume_id``, ``loss``, ``psnr``, ``ssim``,
        ``nmse`` and, with ``include_zero_filled``, ``zero_filled_psnr/ssim/nmse``.
    """
    rows = []
    for volume_id, item in reconstructions.items():
        if not item.has_target:
            continue
        row: dict[str, Any] = {"volume_id": volume_id, "loss": item.loss}
        row.update(volume_metrics(item.target, item.output, item.max_value))
        if include_zero_filled:
            baseline = volume_metrics(item.target, item.zero_filled, item.max_value)
            row.update({f"zero_filled_{key}": value for key, value in baseline.items()})
        rows.append(row)
    columns = ["volume_id", "loss", "psnr", "ssim", "nmse"]
    if include_zero_filled:
        columns += ["zero_filled_psnr", "zero_filled_ssim", "zero_filled_nmse"]
    return pd.DataFrame(rows, columns=columns)


def recon_loader(
    volumes: Mapping[str, VolumeSource],
    volume_ids: Sequence[str],
    undersampler: KspaceUndersampler,
    *,
    batch_size: int = 1,
    training: bool = False,
    seed: int = 0,
    cache: bool = False,
    num_workers: int = 0,
    pin_memory: bool | str = "auto",
    device: torch.device | str = "auto",
) -> DataLoader:
    """A loader of reconstruction batches over the slices of ``volume_ids``.

    ``training=True`` shuffles (seeded) and draws a random mask offset per item;
    ``training=False`` keeps the order and seeds each volume's mask by its file name (the
    validation/test masks). Batches above 1 need volumes of one matrix size.
    Unlearning strategies use this for their forget and retain loaders.
    """
    dataset = FastMRISliceDataset(
        volumes,
        ReconSliceTransform(undersampler, mask_seed="random" if training else "per_volume"),
        volume_ids,
        uniform_shape=batch_size > 1,
        cache=cache,
    )
    return make_loader(
        dataset, batch_size, shuffle=training, seed=seed, num_workers=num_workers,
        pin_memory=pin_memory, device=device,
    )


def undersampler_from_checkpoint(checkpoint: ModelCheckpoint) -> KspaceUndersampler:
    """The mask a recon checkpoint was trained with (its ``extra["mask"]``).

    Raises:
        ValueError: the checkpoint records no mask settings.
    """
    mask = checkpoint.metadata.extra.get("mask")
    if not mask:
        raise ValueError(
            f"checkpoint {checkpoint.content_hash[:12]} records no mask settings "
            "(extra['mask']); pass an undersampler"
        )
    return KspaceUndersampler(**mask)


def fit_recon_model(
    task: ReconTask,
    volumes: Mapping[str, VolumeSource],
    train_ids: Sequence[str],
    val_ids: Sequence[str],
    undersampler: KspaceUndersampler,
    settings: ReconTrainingSettings,
) -> tuple[nn.Module, TrainingResult]:
    """Train a fresh network with the shared loop; validate on ``val_ids`` every epoch.

    Training masks get random offsets (seeded); validation masks are seeded by volume id.
    The history gains ``val_loss``, ``val_psnr``, ``val_ssim`` (means over validation
    volumes). Same ``settings.seed`` and inputs → same numbers on CPU.

    Returns:
        The trained model (on the settings' device) and the loop's result.
    """
    seed_everything(settings.seed, deterministic=settings.deterministic)
    loader_kwargs = {
        "batch_size": settings.batch_size,
        "seed": settings.seed,
        "cache": settings.cache_volumes,
        "num_workers": settings.num_workers,
        "pin_memory": settings.pin_memory,
        "device": settings.device,
    }
    train_loader = recon_loader(volumes, train_ids, undersampler, training=True, **loader_kwargs)
    val_loader = recon_loader(volumes, val_ids, undersampler, training=False, **loader_kwargs)
    logger.info(
        "%s: training %s on %d slices of %d volumes, validating on %d volumes",
        settings.description, task.architecture, len(train_loader.dataset), len(train_ids),
        len(val_ids),
    )
    model = task.build_model()
    device = resolve_device(settings.device)
    model.to(device)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer,
        mode=_plateau_mode(settings.plateau_metric),
        factor=settings.plateau_factor,
        patience=settings.plateau_patience,
    )

    def validate(current: nn.Module) -> dict[str, float]:
        scores = evaluate_reconstructions(
            reconstruct_volumes(current, task, val_loader, device), include_zero_filled=False
        )
        return {
            "val_loss": float(scores["loss"].mean()),
            "val_psnr": float(scores["psnr"].mean()),
            "val_ssim": float(scores["ssim"].mean()),
        }

    loop = LoopSettings(
        epochs=settings.epochs,
        device=device,
        precision=settings.precision,
        grad_clip_norm=settings.grad_clip_norm,
        progress=settings.progress,
        description=settings.description,
        plateau_metric=settings.plateau_metric,
        max_steps_per_epoch=settings.max_steps_per_epoch,
        resume=settings.resume,
    )
    result = train(
        model, train_loader, task.loss, optimizer, loop, scheduler=scheduler, validate=validate
    )
    return model, result


# ------------------------------------------------------------------------------------------
# Inference from a checkpoint
# ------------------------------------------------------------------------------------------


def model_from_checkpoint(
    checkpoint: ModelCheckpoint, device: torch.device | str = "cpu"
) -> tuple[ReconTask, nn.Module]:
    """Rebuild the task and the trained network recorded in a recon checkpoint.

    Raises:
        ValueError: the checkpoint is not a reconstruction model.
    """
    metadata = checkpoint.metadata
    if metadata.task != ReconTask.name:
        raise ValueError(
            f"checkpoint {checkpoint.content_hash[:12]} is a {metadata.task!r} model, not 'recon'"
        )
    loss = metadata.extra.get("loss")
    task = ReconTask(
        architecture=metadata.architecture,
        architecture_params=metadata.architecture_params,
        loss=ReconLoss(**loss) if loss else None,
        encoder_cascades=metadata.extra.get("encoder_cascades"),
    )
    model = task.build_model()
    model.load_state_dict(checkpoint.state_dict)
    model.to(resolve_device(device))
    model.eval()
    return task, model


def reconstruct_volume(
    checkpoint: ModelCheckpoint | tuple[ReconTask, nn.Module],
    volume: VolumeSource,
    undersampler: KspaceUndersampler | None = None,
    *,
    volume_id: str = "volume",
    batch_size: int = 1,
    device: torch.device | str = "cpu",
) -> VolumeReconstruction:
    """Reconstruct one fastMRI volume with a trained model (its validation/test mask).

    Args:
        checkpoint: a recon checkpoint, or an already rebuilt ``(task, model)`` pair.
        volume: the volume (or its loader); only k-space is needed.
        undersampler: the mask; ``None`` = the one recorded in the checkpoint's metadata
            (``extra["mask"]``).
        volume_id: the id the mask is seeded with (use the volume's partition id so the
            mask is the one evaluation uses).
        batch_size: slices per forward pass.
        device: where to compute.

    Returns:
        The reconstruction (``output``), with target, zero-filled baseline and max.
    """
    if isinstance(checkpoint, ModelCheckpoint):
        task, model = model_from_checkpoint(checkpoint, device)
        if undersampler is None:
            undersampler = undersampler_from_checkpoint(checkpoint)
    else:
        task, model = checkpoint
        if undersampler is None:
            raise ValueError("pass an undersampler when reconstructing with a (task, model) pair")
    dataset = FastMRISliceDataset(
        {volume_id: volume},
        ReconSliceTransform(undersampler, mask_seed="per_volume"),
        uniform_shape=False,
    )
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    return reconstruct_volumes(model, task, loader, device)[volume_id]
