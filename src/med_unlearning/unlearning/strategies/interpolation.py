"""Weight interpolation between two finished runs, from the bilevel study (docs/studies.md §3).

θ = (1 − t)·θ_a + t·θ_b, a straight line in weight space between two runs (no training).
Which runs is explicit in the parameters (``start_run`` / ``end_run``; ``original`` means
the original model); the runs it may combine are every other strategy's main run
(``combines=combinable_runs``; see :mod:`~med_unlearning.unlearning.strategies._combining`).
"""

from __future__ import annotations

import copy
import logging

import torch
from pydantic import Field, field_validator
from torch import nn

from med_unlearning.unlearning.common import StrategyParams, model_device
from med_unlearning.unlearning.registry import (
    StrategyResult,
    UnlearningRun,
    combinable_runs,
    register_strategy,
)
from med_unlearning.unlearning.strategies._combining import (
    ORIGINAL,
    check_run_name,
    check_same_architecture,
    resolve_run_model,
    trainable_copy,
)

__all__ = ["InterpolationParams", "interpolate_weights", "interpolation"]

logger = logging.getLogger(__name__)


class InterpolationParams(StrategyParams):
    """Linear interpolation between two runs' weights (no training).

    Attributes:
        start_run: θ_a (strategy name, or ``original``, the default).
        end_run: θ_b (default ``noisy_label``).
        t: position on the line, in [0, 1] (0 = ``start_run``, 1 = ``end_run``).
    """

    start_run: str = Field(default=ORIGINAL, min_length=1)
    end_run: str = Field(default="noisy_label", min_length=1)
    t: float = Field(default=0.5, ge=0, le=1)

    _known_runs = field_validator("start_run", "end_run")(check_run_name)

    def required_runs(self) -> tuple[str, ...]:
        """The finished runs this strategy needs (``original`` excluded)."""
        return tuple(dict.fromkeys(n for n in (self.start_run, self.end_run) if n != ORIGINAL))


@torch.no_grad()
def interpolate_weights(start: nn.Module, end: nn.Module, t: float) -> nn.Module:
    """A copy of ``start`` with weights ``(1 − t)·θ_start + t·θ_end``.

    Floating-point parameters and buffers (e.g. BatchNorm statistics) are interpolated;
    integer buffers (e.g. ``num_batches_tracked``) come from the nearer end. ``t = 0`` and
    ``t = 1`` give the end points exactly.
    """
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"interpolation t must be in [0, 1], got {t}")
    check_same_architecture(start, end, "the interpolation's end points")
    mixed = copy.deepcopy(start)
    end_state = end.state_dict()
    state = {}
    for key, value in start.state_dict().items():
        other = end_state[key].to(value.device)
        if value.is_floating_point() and 0.0 < t < 1.0:
            state[key] = (1.0 - t) * value + t * other
        else:  # end points exactly, and integer buffers from the nearer end
            state[key] = (value if t < 0.5 else other).clone()
    mixed.load_state_dict(state)
    return mixed


@register_strategy(
    "interpolation",
    InterpolationParams,
    needs_retain=False,
    family="bilevel_study",
    combines=combinable_runs,
    description="linear weight interpolation (1 - t) * theta_a + t * theta_b between two runs",
)
def interpolation(run: UnlearningRun, params: InterpolationParams) -> StrategyResult:
    """Interpolate two finished runs' weights (see the module docstring)."""
    start = resolve_run_model(run, params.start_run)
    end = resolve_run_model(run, params.end_run)
    model = trainable_copy(interpolate_weights(start, end, params.t), model_device(run.model))
    logger.info("interpolation: %r -> %r at t = %.3g", params.start_run, params.end_run, params.t)
    return StrategyResult(
        model=model,
        extras={"start_run": params.start_run, "end_run": params.end_run, "t": params.t},
    )
