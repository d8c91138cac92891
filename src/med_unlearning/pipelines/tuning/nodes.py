"""Nodes of the ``tuning`` pipeline: one seeded search per task over its tuned strategies.

Each trial runs the strategy exactly as the unlearning pipeline would (same request, retain
subset, loaders and seed; :func:`~med_unlearning.pipelines.unlearning.nodes.unlearn`) with
the trial's settings, keeps the model in memory, and scores it on the selection sets only:
the validation sets and training items — never a test set (the parameters schema
refuses test sets). The oracle and the original are scored once on the same sets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from med_unlearning.data.splits import ROLE_COLUMN, UNUSED
from med_unlearning.io.checkpoint import ModelCheckpoint
from med_unlearning.metrics.scoring import (
    ModelScores,
    score_recon_checkpoint,
    score_segmentation_checkpoint,
)
from med_unlearning.params.base import typed_params
from med_unlearning.params.evaluation import EvaluationParams
from med_unlearning.params.recon import ReconParams
from med_unlearning.params.runtime import RuntimeParams
from med_unlearning.params.segmentation import SegmentationParams
from med_unlearning.params.tuning import TaskTuningParams, TuningParams
from med_unlearning.params.unlearning import UnlearningParams
from med_unlearning.pipelines.unlearning.nodes import unlearn
from med_unlearning.tuning.objectives import (
    Criterion,
    ObjectiveValue,
    oracle_free_objective,
    oracle_objective,
)
from med_unlearning.tuning.search import TrialResult, run_search
from med_unlearning.tuning.selection import apply_selection
from med_unlearning.unlearning.grid import UnlearningRunSpec

__all__ = ["SELECTION_SET_ROLES", "TRIAL_METHOD", "combine_selections", "make_tuning_node"]

logger = logging.getLogger(__name__)

#: Selection set -> the split roles it is made of (validation and training roles only).
SELECTION_SET_ROLES: Mapping[str, tuple[str, ...]] = {
    "retain_val": ("retain_val",),
    "forget_val": ("forget_val",),
    "forget_train": ("forget_train",),
    "forget": ("forget_train",),
    "val": ("retain_val",),
    "retain_train": ("retain_train",),
    "retain": ("retain_train",),
}

#: The ``method`` a trial's scores carry.
TRIAL_METHOD = "trial"



def _selection_sets(search: TaskTuningParams, objective: str) -> dict[str, tuple[str, ...]]:
    names = {search.retain.set}
    if objective == "oracle":
        names.add(search.forget.set)
    else:
        names |= {search.attack.member_set, search.attack.nonmember_set}
    return {name: SELECTION_SET_ROLES[name] for name in sorted(names)}


def _selection_view(splits: pd.DataFrame, sets: Mapping[str, tuple[str, ...]]) -> pd.DataFrame:
    """The splits table with every role outside the selection sets marked unused."""
    wanted = {role for roles in sets.values() for role in roles}
    view = splits.copy()
    view.loc[~view[ROLE_COLUMN].isin(sorted(wanted)), ROLE_COLUMN] = UNUSED
    return view


def _objective(
    tables: tuple[pd.DataFrame, pd.DataFrame],
    search: TaskTuningParams,
    objective: str,
    tolerances: Mapping[str, float],
) -> ObjectiveValue:
    results, slices = tables
    retain = Criterion(search.retain.set, search.retain.metric)
    if objective == "oracle":
        forget = Criterion(search.forget.set, search.forget.metric)
        return oracle_objective(results, TRIAL_METHOD, retain, forget, tolerances)
    attack = search.attack
    return oracle_free_objective(
        results,
        slices,
        TRIAL_METHOD,
        retain,
        attack.member_set,
        attack.nonmember_set,
        attack.metric,
        tolerances,
        attack.auc_tolerance,
        calibrate_by=attack.calibrate_by,
    )


def _concat(scores: list[ModelScores]) -> tuple[pd.DataFrame, pd.DataFrame]:
    results = pd.concat([score.results for score in scores], ignore_index=True)
    slices = pd.concat([score.slices for score in scores], ignore_index=True)
    return results, slices


def make_tuning_node(task: str) -> Callable[..., tuple[pd.DataFrame, dict[str, Any]]]:
    """The node searching every tuned strategy of ``task`` (``tuning.<task>.search``)."""

    def tune_strategies(
        raw_data: Mapping[str, Any],
        scoring_data: Mapping[str, Any],
        metadata: pd.DataFrame,
        splits: pd.DataFrame,
        original: ModelCheckpoint,
        oracle: ModelCheckpoint,
        unlearning: Mapping[str, Any],
        task_section: Mapping[str, Any],
        runtime: Mapping[str, Any],
        tuning: Mapping[str, Any],
        evaluation: Mapping[str, Any],
    ) -> tuple[pd.DataFrame, dict[str, Any]]:
        settings = typed_params(TuningParams, tuning)
        search = settings.for_task(task)
        if search is None or not search.searches():
            logger.info("tuning: no strategy of %s is tuned (tuning.tasks.%s)", task, task)
            return pd.DataFrame(), {}
        typed_runtime = typed_params(RuntimeParams, runtime)
        seed = typed_runtime.seed if settings.seed is None else settings.seed
        tolerances = typed_params(EvaluationParams, evaluation).verdicts.tolerances
        sets = _selection_sets(search, settings.objective)
        view = _selection_view(splits, sets)
        score = _scorer(task, scoring_data, view, sets, task_section, typed_runtime)
        zero_filled = task == "recon" and search.attack.calibrate_by == "zero_filled"
        baselines = [
            score(original, "original", zero_filled=zero_filled),
            score(oracle, "oracle"),
        ]
        base_params = typed_params(UnlearningParams, unlearning)
        trials, selected = [], {}
        for strategy, space in search.searches().items():
            spec = UnlearningRunSpec(task, strategy)
            current = base_params.for_task(task).raw_strategy_params(spec)

            def evaluate(params: dict[str, Any], spec: UnlearningRunSpec = spec) -> TrialResult:
                trial_params = apply_selection(
                    base_params.model_dump(),
                    {"tasks": {task: {spec.strategy: {"params": params}}}},
                )
                checkpoint, _, _ = unlearn(
                    spec, raw_data, metadata, splits, original, oracle, trial_params,
                    task_section, runtime,
                )  # fmt: skip
                tables = _concat([*baselines, score(checkpoint, TRIAL_METHOD)])
                return TrialResult(
                    objective=_objective(tables, search, settings.objective, tolerances),
                    cost_s=float(checkpoint.metadata.wall_time_s or float("nan")),
                )

            outcome = run_search(
                evaluate,
                space.space,
                n_trials=space.n_trials or search.n_trials,
                seed=seed,
                current=current,
                name=f"{task}/{strategy}",
            )
            trials.append(outcome.trials.assign(task=task, strategy=strategy))
            selected[strategy] = {
                "params": outcome.best_params,
                "objective_value": outcome.best_value,
                "trial": outcome.best_trial,
                "n_trials": len(outcome.trials),
                "selected_on": _selected_on(search, settings.objective),
            }
            logger.info(
                "tuning %s/%s: selected %s (objective %.4g, trial %d of %d)", task, strategy,
                outcome.best_params, outcome.best_value, outcome.best_trial, len(outcome.trials),
            )  # fmt: skip
        table = pd.concat(trials, ignore_index=True)
        leading = ["task", "strategy", "trial"]
        return table[leading + [c for c in table.columns if c not in leading]], selected

    tune_strategies.__name__ = f"tune_{task}_strategies"
    tune_strategies.__qualname__ = tune_strategies.__name__
    return tune_strategies


def _selected_on(search: TaskTuningParams, objective: str) -> str:
    if objective == "oracle":
        return (
            f"distance to the oracle on {search.retain.metric}@{search.retain.set} and "
            f"{search.forget.metric}@{search.forget.set}"
        )
    attack = search.attack
    calibration = f", calibrated by {attack.calibrate_by}" if attack.calibrate_by else ""
    return (
        f"{search.retain.metric}@{search.retain.set} kept vs the original; loss attack "
        f"{attack.member_set} vs {attack.nonmember_set} ({attack.metric}{calibration}) at chance"
    )


def _scorer(
    task: str,
    data: Mapping[str, Any],
    splits: pd.DataFrame,
    sets: Mapping[str, tuple[str, ...]],
    task_section: Mapping[str, Any],
    runtime: RuntimeParams,
) -> Callable[..., ModelScores]:
    """``score(checkpoint, method, zero_filled=False)`` on the selection sets of ``task``."""
    if task == "recon":
        recon = typed_params(ReconParams, task_section)

        def score_recon(
            checkpoint: ModelCheckpoint, method: str, zero_filled: bool = False
        ) -> ModelScores:
            return score_recon_checkpoint(
                checkpoint, method, data, splits,
                batch_size=recon.inference_batch_size(), device=runtime.device,
                include_zero_filled=zero_filled, sets=sets,
            )  # fmt: skip

        return score_recon
    segmentation = typed_params(SegmentationParams, task_section)

    def score_segmentation(
        checkpoint: ModelCheckpoint, method: str, zero_filled: bool = False
    ) -> ModelScores:
        return score_segmentation_checkpoint(
            checkpoint, method, data, splits, segmentation, runtime, sets=sets
        )

    return score_segmentation


def combine_selections(
    tuning: Mapping[str, Any], runtime: Mapping[str, Any], **per_task: dict[str, Any]
) -> dict[str, Any]:
    """The selection document (``tuning.selected``): every task's selected settings."""
    settings = typed_params(TuningParams, tuning)
    seed = typed_params(RuntimeParams, runtime).seed if settings.seed is None else settings.seed
    return {
        "objective": settings.objective,
        "seed": seed,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "tasks": {task: selected for task, selected in per_task.items() if selected},
    }
