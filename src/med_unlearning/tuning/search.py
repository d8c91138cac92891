"""A seeded Optuna search over one strategy's hyper-parameters.

The caller supplies ``evaluate(params) -> TrialResult``: run the strategy with ``params``
and score it on validation data (see :mod:`med_unlearning.tuning.objectives`). The search
is Optuna's TPE sampler with a fixed seed; the first trial is the strategy's current
setting (so a search can only select something at least as good on validation data), and
with deterministic trials the same seed selects the same setting on every run.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
import pandas as pd

from med_unlearning.tuning.objectives import ObjectiveValue
from med_unlearning.tuning.space import SearchSpace, suggest

__all__ = ["SearchOutcome", "TrialResult", "run_search"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrialResult:
    """What one trial measured: its objective and its cost (optimisation wall time, s)."""

    objective: ObjectiveValue
    cost_s: float


@dataclass(frozen=True)
class SearchOutcome:
    """The selected setting and the record of every trial.

    Attributes:
        best_params: the tuned parameters of the trial with the lowest objective (ties: the
            earliest trial).
        best_value: its objective.
        best_trial: its trial number.
        trials: one row per trial: ``trial``, ``param_<name>`` per tuned parameter,
            ``objective``, one column per objective term, ``cost_s``, ``state``.
    """

    best_params: dict[str, Any]
    best_value: float
    best_trial: int
    trials: pd.DataFrame = field(repr=False)


def _start_values(space: SearchSpace, current: Mapping[str, Any]) -> dict[str, Any] | None:
    """The current setting as a first trial, if every tuned parameter has an in-range value."""
    values = {}
    for name, dimension in space.items():
        if name not in current or current[name] is None:
            return None
        value = current[name]
        if dimension.type == "categorical":
            if value not in dimension.choices:
                return None
        elif not (dimension.low <= value <= dimension.high):  # type: ignore[operator]
            return None
        values[name] = value
    return values


def run_search(
    evaluate: Callable[[dict[str, Any]], TrialResult],
    space: SearchSpace,
    *,
    n_trials: int,
    seed: int,
    current: Mapping[str, Any] | None = None,
    name: str = "search",
) -> SearchOutcome:
    """Minimise ``evaluate`` over ``space`` with seeded TPE; ``n_trials`` trials in all.

    Args:
        evaluate: runs and scores one setting (the tuned parameters only).
        space: the search space.
        n_trials: trials, the current setting (when inside the space) included.
        seed: the sampler's seed.
        current: the strategy's current parameters (its first trial).
        name: shown in progress lines (e.g. ``recon/nl_ft``).

    Raises:
        ValueError: ``n_trials < 1`` or an empty space.
        Exception: whatever ``evaluate`` raises (a broken trial is not silently skipped).
    """
    if n_trials < 1:
        raise ValueError(f"{name}: n_trials must be >= 1, got {n_trials}")
    if not space:
        raise ValueError(f"{name}: empty search space")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(5, n_trials))
    study = optuna.create_study(direction="minimize", sampler=sampler, study_name=name)
    start = _start_values(space, current or {})
    if start is not None:
        study.enqueue_trial(start)
    records: list[dict[str, Any]] = []
    began = time.perf_counter()

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, space)
        result = evaluate(params)
        value = float(result.objective.value)
        records.append(
            {
                "trial": trial.number,
                **{f"param_{key}": value_ for key, value_ in params.items()},
                "objective": value,
                **{key: float(term) for key, term in result.objective.terms.items()},
                "cost_s": float(result.cost_s),
                "state": "complete" if math.isfinite(value) else "non-finite",
            }
        )
        done = trial.number + 1
        elapsed = time.perf_counter() - began
        best = min(record["objective"] for record in records)
        logger.info(
            "tuning %s: trial %d/%d objective %.4g (best %.4g) %s [%.1f s, ETA %.0f s]",
            name, done, n_trials, value, best, params, result.cost_s,
            elapsed / done * (n_trials - done),
        )  # fmt: skip
        return value if math.isfinite(value) else float("inf")

    study.optimize(objective, n_trials=n_trials)
    trials = pd.DataFrame(records)
    finite = trials.loc[trials["state"] == "complete"]
    if finite.empty:
        raise RuntimeError(f"{name}: no trial gave a finite objective; see the trials table")
    best_row = finite.sort_values(["objective", "trial"]).iloc[0]
    best_params = {
        key.removeprefix("param_"): _plain(best_row[key])
        for key in trials.columns
        if key.startswith("param_")
    }
    return SearchOutcome(
        best_params=best_params,
        best_value=float(best_row["objective"]),
        best_trial=int(best_row["trial"]),
        trials=trials,
    )


def _plain(value: Any) -> Any:
    """numpy scalars -> Python scalars (so selections serialise as plain YAML/JSON)."""
    return value.item() if hasattr(value, "item") else value
