"""Fine-tuning baselines of the reconstruction study (DESIGN.md §2.1): FT and Full FT.

Both simply keep training the original model on retain data with the task's own loss, and
rely on catastrophic forgetting to wash out the forget set:

- **FT** — on a seeded retain *subset* (``retain_fraction``, the study's 10%), a small
  fraction of the retraining cost;
- **Full FT** — on every retain training item (``retain_fraction`` is fixed to 1).

Neither touches the forget data.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from med_unlearning.unlearning.common import StrategyParams, optimise
from med_unlearning.unlearning.registry import StrategyResult, UnlearningRun, register_strategy

__all__ = ["FineTuneParams", "FullFineTuneParams", "fine_tune", "full_fine_tune"]


class FineTuneParams(StrategyParams):
    """FT: the common settings (the retain subset is ``retain_fraction`` of the retain items)."""


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


def _retain_only(run: UnlearningRun, params: StrategyParams, label: str) -> StrategyResult:
    if run.retain_loader is None:
        raise ValueError(f"{label} needs retain data but the run has no retain loader")
    return optimise(run, params, run.retain_loader, run.task.loss, label)


@register_strategy(
    "ft",
    FineTuneParams,
    family="recon_study",
    description="fine-tune the original on a seeded retain subset (task loss)",
)
def fine_tune(run: UnlearningRun, params: FineTuneParams) -> StrategyResult:
    """FT: minimise the task loss on the retain subset for ``params.epochs`` epochs."""
    return _retain_only(run, params, "ft")


@register_strategy(
    "full_ft",
    FullFineTuneParams,
    family="recon_study",
    description="fine-tune the original on all retain training data (task loss)",
)
def full_fine_tune(run: UnlearningRun, params: FullFineTuneParams) -> StrategyResult:
    """Full FT: minimise the task loss on every retain training item."""
    return _retain_only(run, params, "full_ft")
