"""FT, the reconstruction study's fine-tuning baseline (docs/studies.md §1).

Keep training the original model on a seeded retain *subset* (``retain_fraction``, the
study's 10 %) with the task's own loss, and rely on catastrophic forgetting to wash out the
forget set, at a small fraction of the retraining cost. The forget data is never touched.
:mod:`~med_unlearning.unlearning.strategies.full_ft` is the same on all the retain data.
"""

from __future__ import annotations

from med_unlearning.unlearning.common import StrategyParams, optimise_retain
from med_unlearning.unlearning.registry import StrategyResult, UnlearningRun, register_strategy

__all__ = ["FineTuneParams", "fine_tune"]


class FineTuneParams(StrategyParams):
    """FT: the common settings (the retain subset is ``retain_fraction`` of the retain items)."""


@register_strategy(
    "ft",
    FineTuneParams,
    family="recon_study",
    description="fine-tune the original on a seeded retain subset (task loss)",
)
def fine_tune(run: UnlearningRun, params: FineTuneParams) -> StrategyResult:
    """FT: minimise the task loss on the retain subset for ``params.epochs`` epochs."""
    return optimise_retain(run, params, "ft")
