"""Unlearning strategies, task-agnostic, registered by name.

A strategy is one function ``strategy(run: UnlearningRun, params) -> StrategyResult`` plus one
:func:`register_strategy` entry (with its typed parameters model) plus one parameters block.
It receives a *working copy* of the original model (never the original), a frozen copy of the
original for targets/distillation, the task object (loss, targets, encoder/decoder parts),
forget and retain loaders, and its typed parameters.
"""

from med_unlearning.unlearning.registry import (
    StrategyResult,
    StrategySpec,
    UnlearningRun,
    available_strategies,
    get_strategy,
    register_strategy,
)

__all__ = [
    "StrategyResult",
    "StrategySpec",
    "UnlearningRun",
    "available_strategies",
    "get_strategy",
    "register_strategy",
]
