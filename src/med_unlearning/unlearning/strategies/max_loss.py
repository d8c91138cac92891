"""Max Loss, the segmentation study's gradient ascent (docs/studies.md §2).

``L = J(retain) − α·J(forget)`` on paired forget/retain batches (the study: α ≈ 0.1–0.25);
each forget item's loss is capped at ``ascent_bound`` before it is maximised, since
cross-entropy ascent otherwise runs to infinity
(:func:`~med_unlearning.unlearning.common.ascent_term`).
"""

from __future__ import annotations

from pydantic import Field

from med_unlearning.unlearning.common import PairedParams, ascent_term, optimise_paired
from med_unlearning.unlearning.registry import StrategyResult, UnlearningRun, register_strategy

__all__ = ["MaxLossParams", "max_loss"]


class MaxLossParams(PairedParams):
    """Max Loss: ``J(retain) − alpha·J(forget)`` (the segmentation study: α ≈ 0.1–0.25)."""

    alpha: float = Field(default=0.1, ge=0)
    ascent_bound: float | None = Field(default=None, gt=0)


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
