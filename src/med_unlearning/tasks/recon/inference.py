"""Reconstruction inference: run a trained model over volumes and score it.

:func:`reconstruct_volumes` runs a model over a loader's slices and stacks them per volume;
:func:`evaluate_reconstructions` scores them (fastMRI PSNR/SSIM/NMSE);
:func:`model_from_checkpoint` rebuilds a trained model with its task, and
:func:`reconstruct_volume` reconstructs one volume from a checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader

from med_unlearning.data.masks import KspaceUndersampler
from med_unlearning.data.recon_dataset import VolumeSource
from med_unlearning.device import resolve_device
from med_unlearning.io.checkpoint import ModelCheckpoint
from med_unlearning.metrics.image_quality import volume_metrics
from med_unlearning.tasks.base import Batch
from med_unlearning.tasks.recon.data import slice_dataset, undersampler_from_checkpoint
from med_unlearning.tasks.recon.task import ReconTask
from med_unlearning.training import move_to_device

__all__ = [
    "VolumeReconstruction",
    "evaluate_reconstructions",
    "model_from_checkpoint",
    "reconstruct_volume",
    "reconstruct_volumes",
]


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
            for row, volume_id in enumerate(batch.volume_id):
                record = parts.setdefault(
                    volume_id,
                    {"slices": {}, "max_value": float(batch.max_value[row]), "has_target": True},
                )
                record["slices"][int(batch.slice_index[row])] = (
                    output[row].float().cpu().numpy(),
                    batch.target[row].float().cpu().numpy(),
                    batch.zero_filled[row].float().cpu().numpy(),
                    float(losses[row]),
                )
                record["has_target"] &= bool(batch.has_target[row])
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


def model_from_checkpoint(
    checkpoint: ModelCheckpoint, device: torch.device | str = "cpu"
) -> tuple[ReconTask, nn.Module]:
    """The task and the trained network (on ``device``, eval mode) of a recon checkpoint.

    The task comes from :meth:`ReconTask.from_checkpoint`, the network from
    :meth:`ReconTask.load_checkpoint` (the one way every caller rebuilds a model).

    Raises:
        ValueError: the checkpoint is not a reconstruction model.
    """
    task = ReconTask.from_checkpoint(checkpoint)
    model = task.load_checkpoint(checkpoint)
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
    dataset = slice_dataset({volume_id: volume}, None, undersampler, mask_seed="per_volume")
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    return reconstruct_volumes(model, task, loader, device)[volume_id]
