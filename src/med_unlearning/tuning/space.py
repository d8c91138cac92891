"""Search spaces of unlearning hyper-parameters, declared in parameters and sampled by Optuna.

A search space maps a strategy parameter to one dimension::

    epochs: {type: int, low: 2, high: 10}
    lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
    noise_scale: {type: float, low: 0.1, high: 1.0}
    pairing: {type: categorical, choices: [forget, longest]}

Each dimension becomes one ``trial.suggest_*`` call, so Optuna's seeded TPE sampler sees the
same space in the same order on every run (a reproducible search). Continuous values are
rounded to :data:`SIGNIFICANT_DIGITS` significant digits before a trial uses them, so that a
selected setting reads as a conf value (``0.893``, not ``0.8927180304353626``) and is exactly
the value that was evaluated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import optuna
from pydantic import Field, model_validator

from med_unlearning.params.base import StrictModel

__all__ = ["SIGNIFICANT_DIGITS", "SearchDimension", "SearchSpace", "suggest"]

#: Significant digits kept of a continuous (``float`` without ``step``) draw.
SIGNIFICANT_DIGITS = 3

Choice = str | int | float | bool | None


class SearchDimension(StrictModel):
    """One tuned parameter.

    Attributes:
        type: ``int`` and ``float`` take ``low``/``high`` (inclusive) and optional ``log``
            (sample on a log scale) or ``step``; ``categorical`` takes ``choices``.
        low: smallest value.
        high: largest value.
        log: sample uniformly in log space (learning rates, noise scales).
        step: grid step (``int``: default 1; ``float``: default continuous).
        choices: the values of a categorical dimension.
    """

    type: Literal["int", "float", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = Field(default=None, gt=0)
    choices: list[Choice] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> SearchDimension:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical dimension needs a non-empty `choices` list")
            if self.low is not None or self.high is not None:
                raise ValueError("a categorical dimension takes `choices`, not `low`/`high`")
            return self
        if self.low is None or self.high is None:
            raise ValueError(f"an {self.type} dimension needs `low` and `high`")
        if self.low > self.high:
            raise ValueError(f"`low` ({self.low}) must not exceed `high` ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log-scale dimension needs `low` > 0, got {self.low}")
        if self.log and self.step is not None:
            raise ValueError("`log` and `step` cannot be combined (Optuna refuses it)")
        if self.type == "int" and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError(f"an int dimension needs whole bounds, got {self.low}..{self.high}")
        return self


#: Strategy parameter -> its dimension.
SearchSpace = Mapping[str, SearchDimension]


def suggest(trial: optuna.Trial, space: SearchSpace) -> dict[str, Any]:
    """Draw one value per dimension of ``space`` (in its order) for ``trial``.

    Returns:
        ``{parameter: value}``, ints as ``int`` and floats as ``float``.
    """
    values: dict[str, Any] = {}
    for name, dimension in space.items():
        if dimension.type == "categorical":
            values[name] = trial.suggest_categorical(name, dimension.choices)
        elif dimension.type == "int":
            values[name] = trial.suggest_int(
                name,
                int(dimension.low),  # type: ignore[arg-type]
                int(dimension.high),  # type: ignore[arg-type]
                step=int(dimension.step or 1),
                log=dimension.log,
            )
        else:
            low, high = float(dimension.low), float(dimension.high)  # type: ignore[arg-type]
            value = trial.suggest_float(name, low, high, step=dimension.step, log=dimension.log)
            if dimension.step is None:
                value = min(max(float(f"{value:.{SIGNIFICANT_DIGITS}g}"), low), high)
            values[name] = value
    return values
