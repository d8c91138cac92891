"""Retain Label, the segmentation study's "learn others" (docs/studies.md §2).

``L = J(retain) + α·J(forget, f₀(x_r))`` on paired forget/retain batches: the forget
sample's target is the frozen original's output on the retain sample it is paired with
(soft class probabilities for segmentation, the image for reconstruction;
:func:`retain_label_target`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from med_unlearning.tasks.base import Batch, Task
from med_unlearning.unlearning.common import (
    PairedParams,
    TermTracker,
    optimise,
    paired_batches,
)
from med_unlearning.unlearning.registry import StrategyResult, UnlearningRun, register_strategy

__all__ = ["RetainLabelParams", "retain_label", "retain_label_target"]


class RetainLabelParams(PairedParams):
    """Retain Label: ``J(retain) + alpha·J(forget, frozen original's output on retain)``."""

    alpha: float = Field(default=0.25, ge=0)


def _match_items(values: torch.Tensor, count: int, size: tuple[int, ...]) -> torch.Tensor:
    """Repeat/truncate ``values``' items to ``count`` and resize its trailing spatial
    dimensions to ``size`` when they differ (linear interpolation)."""
    if values.shape[0] != count:
        index = torch.arange(count, device=values.device) % values.shape[0]
        values = values[index]
    if size and tuple(values.shape[-len(size) :]) != size:
        leading = values.shape[: values.dim() - len(size)]
        flat = values.reshape(-1, 1, *values.shape[-len(size) :]).float()
        mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[len(size)]
        flat = F.interpolate(flat, size=size, mode=mode, align_corners=False)
        values = flat.reshape(*leading, *size).to(values.dtype)
    return values


def retain_label_target(
    task: Task, frozen: nn.Module, forget_batch: Batch, retain_batch: Batch
) -> torch.Tensor:
    """The Retain Label target of a forget batch: the frozen original's output on the paired
    retain batch, as a target (:meth:`~med_unlearning.tasks.base.Task.output_as_target`:
    the image for reconstruction, class probabilities for segmentation).

    Items are paired in order (the retain batch is repeated or truncated to the forget
    batch's size); a retain output of another spatial size is resized to the forget
    target's; when the task's ``data_range`` is not ``None`` (reconstruction) the image is
    rescaled from the retain item's range to the forget item's, so the SSIM data range stays
    meaningful.
    """
    with torch.no_grad():
        target = task.output_as_target(task.forward(frozen, retain_batch), retain_batch)
    forget_target = task.target(forget_batch)
    count = forget_target.shape[0]
    size = tuple(forget_target.shape[1:])
    target = _match_items(target, count, size)
    if target.shape == forget_target.shape and target.is_floating_point():
        target = _rescaled(task, target, retain_batch, forget_batch)
    return target.detach()


def _rescaled(
    task: Task, target: torch.Tensor, retain_batch: Batch, forget_batch: Batch
) -> torch.Tensor:
    """``target`` rescaled item by item from the retain items' data range to the forget
    items'; unchanged when the task has no data range (``data_range`` is ``None``)."""
    retain_range = task.data_range(retain_batch)
    if retain_range is None:
        return target
    count = target.shape[0]
    retain_range = _match_items(retain_range.reshape(-1), count, ())
    forget_range = task.data_range(forget_batch)
    ratio = forget_range.reshape(-1) / retain_range.clamp_min(1e-30)
    return target * ratio.to(target.dtype).reshape(-1, *([1] * (target.dim() - 1)))


@register_strategy(
    "retain_label",
    RetainLabelParams,
    family="segmentation_study",
    description="learn others: forget targets = the frozen original's outputs on retain samples",
)
def retain_label(run: UnlearningRun, params: RetainLabelParams) -> StrategyResult:
    """Retain Label: ``L = J(retain) + α·J(forget, f₀(retain))`` on paired batches."""
    tracker = TermTracker()
    task = run.task

    def loss_fn(model: nn.Module, pair: tuple[Batch, Batch]) -> torch.Tensor:
        forget_batch, retain_batch = pair
        target = retain_label_target(task, run.frozen, forget_batch, retain_batch)
        forget = task.criterion(task.forward(model, forget_batch), target, forget_batch)
        retain = task.loss(model, retain_batch)
        tracker.add("forget_other_loss", forget)
        tracker.add("retain_loss", retain)
        return retain + params.alpha * forget

    return optimise(
        run, params, paired_batches(run, params, "retain_label"), loss_fn, "retain_label", tracker
    )
