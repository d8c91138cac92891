"""Every comparison table of a study in one call: :func:`evaluate_study`.

The library's entry point for "how do the unlearned models compare with the retrained
oracle?" without Kedro: give it the tidy results table
(:mod:`med_unlearning.metrics.results_table`), the ``evaluation`` parameters and optionally
the cost and membership tables; it pools seed repeats, summarises, computes the paired gaps
and distances to the oracle (:mod:`med_unlearning.metrics.oracle`), the verdicts
(:mod:`med_unlearning.metrics.verdicts`) and the validation-only recommendation
(:mod:`med_unlearning.metrics.recommendation`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from med_unlearning.metrics.oracle import (
    cost_ratios,
    distance_to_oracle,
    oracle_gaps,
    relative_to_original,
)
from med_unlearning.metrics.recommendation import recommendations
from med_unlearning.metrics.results_table import COST_COLUMNS, summarize, validate_results_table
from med_unlearning.metrics.statistics import pool_seed_repeats
from med_unlearning.metrics.verdicts import recorded_settings_sources, verdicts
from med_unlearning.params.evaluation import EvaluationParams

__all__ = ["evaluate_study"]


def _criteria(params: EvaluationParams) -> dict[str, tuple[list[tuple[str, str]], ...]]:
    return {
        task: ([ref.as_tuple() for ref in spec.retain], [ref.as_tuple() for ref in spec.forget])
        for task, spec in params.tasks.items()
    }


def _validation_criteria(params: EvaluationParams) -> dict[str, tuple[list[tuple[str, str]], ...]]:
    return {
        task: (
            [ref.as_tuple() for ref in spec.validation.retain],
            [ref.as_tuple() for ref in spec.validation.forget],
        )
        for task, spec in params.tasks.items()
        if spec.validation is not None
    }


def evaluate_study(
    results: pd.DataFrame,
    params: EvaluationParams,
    costs: pd.DataFrame | None = None,
    membership: pd.DataFrame | None = None,
    expected_methods: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, pd.DataFrame]:
    """Every comparison table of a study from the tidy results (one call per evaluation node).

    Seed repeats are pooled first (:func:`~med_unlearning.metrics.statistics.
    pool_seed_repeats`); every interval uses ``params.statistics``.

    Args:
        results: the tidy results table (all tasks).
        params: the ``evaluation`` parameters.
        costs: the cost table (``task, method, wall_time_s``), if recorded.
        membership: the membership-inference table, if computed.
        expected_methods: per task, the methods that should be present (missing ones are
            reported as ``missing``).

    Returns:
        ``summary`` (:func:`summarize`), ``oracle_gaps`` (paired, with intervals),
        ``distances`` (test and validation pairs, with intervals), ``relative`` (headline
        figures against the original), ``costs`` (:func:`cost_ratios`; empty when no
        costs), ``verdicts`` and ``recommendations``.
    """
    pooled = pool_seed_repeats(validate_results_table(results))
    settings = params.statistics
    ci = {"confidence": settings.confidence, "n_resamples": settings.n_resamples,
          "seed": settings.seed}  # fmt: skip
    summary = summarize(pooled, **ci)
    criteria = _criteria(params)
    validation = _validation_criteria(params)
    pairs = {task: list(zip(*criteria[task], strict=True)) for task in criteria}
    val_pairs = {task: list(zip(*validation[task], strict=True)) for task in validation}
    cost_table = (
        cost_ratios(costs, params.oracle_method)
        if costs is not None and not costs.empty
        else pd.DataFrame(
            columns=[*COST_COLUMNS, "oracle_wall_time_s", "ratio_to_retraining"]
        )
    )
    gaps = oracle_gaps(pooled, params.oracle_method, **ci)
    distances = pd.concat(
        [
            distance_to_oracle(pooled, pairs, params.oracle_method, criteria="test", **ci),
            distance_to_oracle(pooled, val_pairs, params.oracle_method, criteria="validation",
                               **ci),
        ],
        ignore_index=True,
    )  # fmt: skip
    verdict_table = verdicts(
        summary,
        gaps,
        criteria,
        params.verdicts,
        validation=validation,
        membership=membership,
        costs=cost_table,
        expected_methods=expected_methods,
        original=params.original_method,
        oracle=params.oracle_method,
        method_order=params.method_order,
        tuning_record={**params.tuning_record, **recorded_settings_sources(costs)},
    )
    return {
        "summary": summary,
        "oracle_gaps": gaps,
        "distances": distances,
        "relative": relative_to_original(
            summary, {task: task_pairs[0] for task, task_pairs in pairs.items()},
            params.original_method,
        ),
        "costs": cost_table,
        "verdicts": verdict_table,
        "recommendations": recommendations(verdict_table, distances, params, pooled),
    }
