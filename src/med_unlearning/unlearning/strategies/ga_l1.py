"""GA-ℓ1, the reconstruction study's gradient ascent (docs/studies.md §1).

``L = −J(forget) + γ‖θ‖₁`` on forget batches only: maximise the task loss on the forget
data, with an ℓ1 penalty on the trainable weights. Each forget item's loss is capped at
``ascent_bound`` before it is maximised (:func:`~med_unlearning.unlearning.common.ascent_term`
says why, and why the study's destruction of the model is still reproduced).
:mod:`~med_unlearning.unlearning.strategies.ga_l1_ft` adds a retain term in the same steps.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from med_unlearning.tasks.base import Batch
from med_unlearning.unlearning.common import (
    StrategyParams,
    TermTracker,
    ascent_term,
    l1_norm,
    optimise,
)
from med_unlearning.unlearning.registry import StrategyResult, UnlearningRun, register_strategy

__all__ = ["GAL1Params", "ga_l1"]


class GAL1Params(StrategyParams):
    """GA-ℓ1.

    Attributes:
        l1_weight: γ, weight of ‖θ‖₁ (sum of |θ| over the trainable parameters).
        ascent_bound: cap of each forget item's loss before it is maximised (``null`` =
            no cap; see :func:`~med_unlearning.unlearning.common.ascent_term`).
    """

    l1_weight: float = Field(default=1e-6, ge=0)
    ascent_bound: float | None = Field(default=None, gt=0)


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
