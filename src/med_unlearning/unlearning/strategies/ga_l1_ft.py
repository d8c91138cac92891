"""GA-ℓ1-FT, the reconstruction study's gradient ascent with fine-tuning (docs/studies.md §1).

``L = w_r·J(retain) − w_f·J(forget) + γ‖θ‖₁`` on paired forget/retain batches: GA-ℓ1
(:mod:`~med_unlearning.unlearning.strategies.ga_l1`) and fine-tuning on the retain subset
in the same steps. Each forget item's loss is capped at ``ascent_bound``
(:func:`~med_unlearning.unlearning.common.ascent_term`).
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from med_unlearning.tasks.base import Batch
from med_unlearning.unlearning.common import (
    PairedParams,
    TermTracker,
    ascent_term,
    l1_norm,
    optimise,
    paired_batches,
)
from med_unlearning.unlearning.registry import StrategyResult, UnlearningRun, register_strategy

__all__ = ["GAL1FTParams", "ga_l1_ft"]


class GAL1FTParams(PairedParams):
    """GA-ℓ1-FT: ``retain_weight·J(retain) − forget_weight·J(forget) + l1_weight·‖θ‖₁``.

    ``ascent_bound`` caps each forget item's loss (see
    :func:`~med_unlearning.unlearning.common.ascent_term`).
    """

    forget_weight: float = Field(default=1.0, ge=0)
    retain_weight: float = Field(default=1.0, ge=0)
    l1_weight: float = Field(default=1e-6, ge=0)
    ascent_bound: float | None = Field(default=None, gt=0)


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

    pairs = paired_batches(run, params, "ga_l1_ft")
    return optimise(run, params, pairs, loss_fn, "ga_l1_ft", tracker)
