"""Training a segmentation model: MedicalNet's recipe on random patches, with the shared loop.

:class:`SegmentationTrainingSettings` says how (epochs, patches, SGD with a faster head,
exponential decay, loader, validation; built from the ``segmentation`` and ``runtime``
parameters by :meth:`SegmentationTrainingSettings.from_params`), like
:class:`~med_unlearning.tasks.recon.training.ReconTrainingSettings` for reconstruction;
:func:`train_segmentation` trains a network in place with
:func:`~med_unlearning.training.train`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from med_unlearning.data.seg_dataset import SubjectVolume
from med_unlearning.tasks.segmentation.task import SegmentationTask
from med_unlearning.training import LoopSettings, ResumeSettings, TrainingResult, train

__all__ = ["SegmentationTrainingSettings", "train_segmentation"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmentationTrainingSettings:
    """How :func:`train_segmentation` trains (the ``segmentation.training`` defaults).

    Attributes:
        epochs: passes; each draws ``samples_per_subject`` patches per subject.
        batch_size: patches per step.
        patch_size: patch size in voxels (x, y, z).
        samples_per_subject: patches per subject per epoch.
        pos_fraction: share of patches centred on a labelled voxel.
        learning_rate: the backbone's SGD learning rate.
        head_lr_multiplier: the head's learning rate / the backbone's.
        momentum: SGD momentum.
        weight_decay: L2 penalty.
        lr_decay_gamma: ``ExponentialLR`` factor per epoch (1 = constant).
        grad_clip_norm: clip the gradient norm (``None`` = no clipping).
        seed: seeds the loader's order (patch positions follow torch's global generator,
            which the caller seeds with :func:`~med_unlearning.training.seed_everything`).
        num_workers: loader worker processes.
        pin_memory: pin host memory (``auto``: on CUDA).
        progress: show a progress bar.
        description: label of the progress bar and the log lines.
        validation_interval: score the validation subjects every this many epochs (0 = never).
        resume: epoch checkpoints and resuming (``None`` = neither).
    """

    epochs: int = 20
    batch_size: int = 2
    patch_size: tuple[int, ...] = (64, 64, 16)
    samples_per_subject: int = 4
    pos_fraction: float = 0.8
    learning_rate: float = 1e-3
    head_lr_multiplier: float = 100.0
    momentum: float = 0.9
    weight_decay: float = 1e-3
    lr_decay_gamma: float = 1.0
    grad_clip_norm: float | None = None
    seed: int = 0
    num_workers: int = 0
    pin_memory: bool | str = "auto"
    progress: bool = True
    description: str = "segmentation"
    validation_interval: int = 0
    resume: ResumeSettings | None = None

    @classmethod
    def from_params(
        cls,
        params: Any,
        runtime: Any,
        description: str,
        seed: int | None = None,
        resume: ResumeSettings | None = None,
    ) -> SegmentationTrainingSettings:
        """The settings of the ``segmentation`` (``SegmentationParams``) and ``runtime``
        (``RuntimeParams``) parameters; ``seed`` defaults to ``runtime.seed``."""
        training = params.training
        optimizer = training.optimizer
        return cls(
            epochs=training.epochs,
            batch_size=training.batch_size,
            patch_size=tuple(training.patch_size),
            samples_per_subject=training.samples_per_subject,
            pos_fraction=training.pos_fraction,
            learning_rate=optimizer.learning_rate,
            head_lr_multiplier=optimizer.head_lr_multiplier,
            momentum=optimizer.momentum,
            weight_decay=optimizer.weight_decay,
            lr_decay_gamma=optimizer.lr_decay_gamma,
            grad_clip_norm=training.grad_clip_norm,
            seed=runtime.seed if seed is None else seed,
            num_workers=runtime.num_workers,
            pin_memory=runtime.pin_memory,
            progress=runtime.progress,
            description=description,
            validation_interval=training.validation_interval,
            resume=resume,
        )


def _validation(
    task: SegmentationTask,
    subjects: Mapping[str, Sequence[SubjectVolume]] | None,
    interval: int,
) -> tuple[Any, Any]:
    """The loop's ``validate`` (mean Dice per group every ``interval`` epochs, else ``{}``)
    and ``on_resume`` (realign its epoch counter: validation counts from epoch 1)."""
    counter = {"epoch": 0}

    def validate(trained: nn.Module) -> dict[str, float]:
        counter["epoch"] += 1
        if not interval or counter["epoch"] % interval:
            return {}
        scores = {}
        for name, group in (subjects or {}).items():
            dice = [task.score_subject(trained, subject)["mean_dice"] for subject in group]
            scores[f"dice_{name}"] = float(np.nanmean(dice)) if dice else float("nan")
        return scores

    def realign(epochs_done: int) -> None:
        counter["epoch"] = epochs_done

    return (validate if subjects and interval else None), realign


def train_segmentation(
    task: SegmentationTask,
    model: nn.Module,
    subjects: Sequence[SubjectVolume],
    settings: SegmentationTrainingSettings,
    validation_subjects: Mapping[str, Sequence[SubjectVolume]] | None = None,
) -> TrainingResult:
    """Train ``model`` in place on random patches of ``subjects`` with the shared loop.

    Args:
        task: the segmentation task (loss, optimizer groups, prediction, device).
        model: the network (e.g. ``task.build_model()``).
        subjects: the training subjects.
        settings: how to train.
        validation_subjects: name -> subjects scored every ``settings.validation_interval``
            epochs; the history gets ``dice_<name>`` (mean Dice over those subjects).

    Returns:
        The loop's :class:`~med_unlearning.training.TrainingResult`.
    """
    loader = task.patch_loader(
        subjects,
        settings.patch_size,
        settings.samples_per_subject,
        settings.pos_fraction,
        batch_size=settings.batch_size,
        seed=settings.seed,
        num_workers=settings.num_workers,
        pin_memory=settings.pin_memory,
        device=task.device,
    )
    optimizer = task.optimizer(
        model,
        settings.learning_rate,
        settings.head_lr_multiplier,
        settings.momentum,
        settings.weight_decay,
    )
    scheduler = (
        torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=settings.lr_decay_gamma)
        if settings.lr_decay_gamma < 1.0
        else None
    )
    validate, realign = _validation(task, validation_subjects, settings.validation_interval)
    logger.info(
        "%s: training on %d subjects %s, %d patches of %s per epoch, %d epochs",
        settings.description,
        len(subjects),
        [subject.subject_id for subject in subjects],
        len(loader.dataset),  # type: ignore[arg-type]
        tuple(settings.patch_size),
        settings.epochs,
    )
    loop = LoopSettings(
        epochs=settings.epochs,
        device=task.device,
        precision=task.precision,
        grad_clip_norm=settings.grad_clip_norm,
        progress=settings.progress,
        description=settings.description,
        resume=settings.resume,
    )
    return train(
        model,
        loader,
        task.loss,
        optimizer,
        loop,
        scheduler=scheduler,
        validate=validate,
        on_resume=realign,
    )
