"""NegGrad+, a general gradient-ascent baseline.

``L = β·J(retain) − (1 − β)·J(forget)`` on paired forget/retain batches; each forget item's
loss is capped at ``ascent_bound`` before it is maximised
(:func:`~med_unlearning.unlearning.common.ascent_term`).
"""

from __future__ import annotations

from pydantic import Field

from med_unlearning.unlearning.common import PairedParams, ascent_term, optimise_paired
from med_unlearning.unlearning.registry import StrategyResult, UnlearningRun, register_strategy

__all__ = ["NegGradPlusParams", "neggrad_plus"]


class NegGradPlusParams(PairedParams):
    """NegGrad+: ``beta·J(retain) − (1 − beta)·J(forget)``, ``beta`` in [0, 1]."""

    beta: float = Field(default=0.9, ge=0, le=1)
    ascent_bound: float | None = Field(default=None, gt=0)


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
