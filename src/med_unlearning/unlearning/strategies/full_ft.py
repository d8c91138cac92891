"""Full FT, the reconstruction study's fine-tuning baseline on all retain data (docs/studies.md §1).

:mod:`~med_unlearning.unlearning.strategies.ft` on every retain training item
(``retain_fraction`` is fixed to 1): the forget data is never touched, catastrophic
forgetting washes it out.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from med_unlearning.unlearning.common import StrategyParams, optimise_retain
from med_unlearning.unlearning.registry import StrategyResult, UnlearningRun, register_strategy

__all__ = ["FullFineTuneParams", "full_fine_tune"]


class FullFineTuneParams(StrategyParams):
    """Full FT: the common settings; ``retain_fraction`` must stay 1 (all retain data)."""

    retain_fraction: float = Field(default=1.0, gt=0, le=1)

    @field_validator("retain_fraction")
    @classmethod
    def _all_retain(cls, value: float) -> float:
        if value != 1.0:
            raise ValueError(
                f"full_ft fine-tunes on all retain data, so retain_fraction must be 1 (got "
                f"{value}); use the 'ft' strategy for a retain subset"
            )
        return value


@register_strategy(
    "full_ft",
    FullFineTuneParams,
    family="recon_study",
    description="fine-tune the original on all retain training data (task loss)",
    all_retain_of="ft",
)
def full_fine_tune(run: UnlearningRun, params: FullFineTuneParams) -> StrategyResult:
    """Full FT: minimise the task loss on every retain training item."""
    return optimise_retain(run, params, "full_ft")
