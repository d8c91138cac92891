"""Gradient-ascent strategies: GA-ℓ1 and GA-ℓ1-FT (reconstruction study), NegGrad+ and Max
Loss (segmentation study and general baseline).

All *maximise* the task loss on the forget data, optionally while minimising it on retain
data (DESIGN.md §2.1–2.2):

- **GA-ℓ1**: ``L = −J(forget) + γ‖θ‖₁`` (forget data only);
- **GA-ℓ1-FT**: ``L = w_r·J(retain) − w_f·J(forget) + γ‖θ‖₁`` (same steps);
- **NegGrad+**: ``L = β·J(retain) − (1 − β)·J(forget)``;
- **Max Loss**: ``L = J(retain) − α·J(forget)``.

Guard against divergence: ascent on an unbounded loss (cross-entropy) runs to infinity, so
each forget item's loss is capped at ``ascent_bound`` before it is subtracted (an item past
the bound stops contributing gradient; see
:func:`~med_unlearning.unlearning.common.bounded_ascent`), and gradients are clipped
(``grad_clip_norm``). The guard does not prevent forgetting-by-destruction: for
reconstruction, J = (1 − SSIM) + ε·L1 has a bounded SSIM part (≤ 2) and an unbounded L1
part, so the default cap of 3 lets GA-ℓ1 drive SSIM to its floor — the study's finding that
GA-ℓ1 destroys the model (PSNR ≈ 16 dB everywhere) is reproduced — while the L1 term cannot
run the outputs to infinity. ``ascent_bound: null`` removes the cap.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from med_unlearning.tasks.base import Batch, Task
from med_unlearning.unlearning.common import (
    PairedParams,
    StrategyParams,
    TermTracker,
    bounded_ascent,
    l1_norm,
    optimise,
    optimise_paired,
    paired_batches,
)
from med_unlearning.unlearning.registry import StrategyResult, UnlearningRun, register_strategy

__all__ = [
    "GAL1FTParams",
    "GAL1Params",
    "MaxLossParams",
    "NegGradPlusParams",
    "ascent_term",
    "ga_l1",
    "ga_l1_ft",
    "max_loss",
    "neggrad_plus",
]


class GAL1Params(StrategyParams):
    """GA-ℓ1.

    Attributes:
        l1_weight: γ, weight of ‖θ‖₁ (sum of |θ| over the trainable parameters).
        ascent_bound: cap of each forget item's loss before it is maximised (``null`` =
            no cap; see the module docstring).
    """

    l1_weight: float = Field(default=1e-6, ge=0)
    ascent_bound: float | None = Field(default=None, gt=0)


class GAL1FTParams(PairedParams):
    """GA-ℓ1-FT: ``retain_weight·J(retain) − forget_weight·J(forget) + l1_weight·‖θ‖₁``.

    ``ascent_bound`` caps each forget item's loss (see :class:`GAL1Params`).
    """

    forget_weight: float = Field(default=1.0, ge=0)
    retain_weight: float = Field(default=1.0, ge=0)
    l1_weight: float = Field(default=1e-6, ge=0)
    ascent_bound: float | None = Field(default=None, gt=0)


class NegGradPlusParams(PairedParams):
    """NegGrad+: ``beta·J(retain) − (1 − beta)·J(forget)``, ``beta`` in [0, 1]."""

    beta: float = Field(default=0.9, ge=0, le=1)
    ascent_bound: float | None = Field(default=None, gt=0)


class MaxLossParams(PairedParams):
    """Max Loss: ``J(retain) − alpha·J(forget)`` (the segmentation study: α ≈ 0.1–0.25)."""

    alpha: float = Field(default=0.1, ge=0)
    ascent_bound: float | None = Field(default=None, gt=0)


def ascent_term(task: Task, model: nn.Module, batch: Batch, bound: float | None) -> torch.Tensor:
    """The forget loss to subtract: the batch's per-item task loss, capped at ``bound``."""
    per_item = task.criterion(
        task.forward(model, batch), task.target(batch), batch, reduction="none"
    )
    return bounded_ascent(per_item, bound)


@register_strategy(
    "ga_l1",
    GAL1Params,
    needs_retain=False,
    family="recon_study",
    description="gradient ascent on the forget loss with an l1 penalty on the weights",
)
def ga_l1(run: UnlearningRun, params: GAL1Params) -> StrategyResult:
    """GA-ℓ1: ``L = −J(forget) + γ‖θ‖₁`` on forget batches only."""
    tracker = TermTracker()
    task = run.task

    def loss_fn(model: nn.Module, batch: Batch) -> torch.Tensor:
        forget = ascent_term(task, model, batch, params.ascent_bound)
        l1 = l1_norm(model.parameters())
        tracker.add("forget_loss", forget)
        tracker.add("l1_norm", l1)
        return -forget + params.l1_weight * l1

    return optimise(run, params, run.forget_loader, loss_fn, "ga_l1", tracker)


@register_strategy(
    "ga_l1_ft",
    GAL1FTParams,
    family="recon_study",
    description="gradient ascent on forget + fine-tuning on retain in the same steps, l1 penalty",
)
def ga_l1_ft(run: UnlearningRun, params: GAL1FTParams) -> StrategyResult:
    """GA-ℓ1-FT: ``L = w_r·J(retain) − w_f·J(forget) + γ‖θ‖₁`` on paired batches."""
    tracker = TermTracker()
    task = run.task

    def loss_fn(model: nn.Module, pair: tuple[Batch, Batch]) -> torch.Tensor:
        forget_batch, retain_batch = pair
        forget = ascent_term(task, model, forget_batch, params.ascent_bound)
        retain = task.loss(model, retain_batch)
        l1 = l1_norm(model.parameters())
        tracker.add("forget_loss", forget)
        tracker.add("retain_loss", retain)
        tracker.add("l1_norm", l1)
        return params.retain_weight * retain - params.forget_weight * forget + params.l1_weight * l1

    return optimise(run, params, paired_batches(run, params, "ga_l1_ft"), loss_fn, "ga_l1_ft", tracker)


@register_strategy(
    "neggrad_plus",
    NegGradPlusParams,
    family="baseline",
    description="NegGrad+: beta * retain loss - (1 - beta) * forget loss",
)
def neggrad_plus(run: UnlearningRun, params: NegGradPlusParams) -> StrategyResult:
    """NegGrad+: ``L = β·J(retain) − (1 − β)·J(forget)`` on paired batches."""
    return optimise_paired(
        run,
        params,
        "neggrad_plus",
        lambda model, batch: ascent_term(run.task, model, batch, params.ascent_bound),
        lambda retain, forget: params.beta * retain - (1.0 - params.beta) * forget,
    )


@register_strategy(
    "max_loss",
    MaxLossParams,
    family="segmentation_study",
    description="maximise the forget loss, minimise the retain loss: retain - alpha * forget",
)
def max_loss(run: UnlearningRun, params: MaxLossParams) -> StrategyResult:
    """Max Loss: ``L = J(retain) − α·J(forget)`` on paired batches."""
    return optimise_paired(
        run,
        params,
        "max_loss",
        lambda model, batch: ascent_term(run.task, model, batch, params.ascent_bound),
        lambda retain, forget: retain - params.alpha * forget,
    )
