"""Training a reconstruction model: the study's recipe on the shared loop.

:class:`ReconTrainingSettings` says how (epochs, Adam, plateau scheduler, device…; built
from the ``recon`` and ``runtime`` parameters by :meth:`ReconTrainingSettings.from_params`);
:func:`fit_recon_model` trains a fresh network with
:func:`~med_unlearning.training.train`, validating every epoch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from med_unlearning.data.masks import KspaceUndersampler
from med_unlearning.data.recon_dataset import VolumeSource
from med_unlearning.device import resolve_device
from med_unlearning.tasks.recon.data import recon_loader
from med_unlearning.tasks.recon.inference import evaluate_reconstructions, reconstruct_volumes
from med_unlearning.tasks.recon.task import ReconTask
from med_unlearning.training import (
    LoopSettings,
    ResumeSettings,
    TrainingResult,
    seed_everything,
    train,
)

__all__ = ["ReconTrainingSettings", "fit_recon_model", "recon_optimizer"]

logger = logging.getLogger(__name__)


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

    @classmethod
    def from_params(
        cls, params: Any, runtime: Any, description: str, seed: int | None = None
    ) -> ReconTrainingSettings:
        """The settings of the ``recon`` (``ReconParams``) and ``runtime``
        (``RuntimeParams``) parameters; ``seed`` defaults to ``runtime.seed``."""
        training = params.training
        return cls(
            epochs=training.epochs,
            batch_size=training.batch_size,
            lr=training.lr,
            weight_decay=training.weight_decay,
            grad_clip_norm=training.grad_clip_norm,
            plateau_metric=training.scheduler.metric,
            plateau_factor=training.scheduler.factor,
            plateau_patience=training.scheduler.patience,
            max_steps_per_epoch=training.max_steps_per_epoch,
            cache_volumes=training.cache_volumes,
            seed=runtime.seed if seed is None else seed,
            device=runtime.device,
            precision=runtime.precision,
            num_workers=runtime.num_workers,
            pin_memory=runtime.pin_memory,
            progress=runtime.progress,
            deterministic=runtime.deterministic,
            description=description,
        )


def _plateau_mode(metric: str) -> str:
    return "max" if metric.endswith(("psnr", "ssim")) else "min"


def recon_optimizer(model: nn.Module, settings: ReconTrainingSettings) -> torch.optim.Adam:
    """The study's Adam over every weight of ``model``, with batched (``foreach``) updates.

    On CPU PyTorch defaults to a Python loop over the tensors; the batched kernels do the same
    arithmetic (bitwise-equal weights) and make a VarNet training ~13 % faster on CPU.
    """
    return torch.optim.Adam(
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay, foreach=True
    )


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
    optimizer = recon_optimizer(model, settings)
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
