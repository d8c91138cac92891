"""The recommended method of each task, chosen on validation data only.

Test data never enter the choice: among the unlearning runs whose validation verdicts do not
fail, the one with the smallest validation distance to the oracle wins, and its test figures
are what the report shows.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from med_unlearning.metrics.statistics import is_seed_repeat
from med_unlearning.metrics.verdicts import FAILING
from med_unlearning.params.evaluation import EvaluationParams
from med_unlearning.reporting.formatting import NOT_AVAILABLE

__all__ = ["RECOMMENDATION_COLUMNS", "recommendations"]

#: Columns of the recommendation table.
RECOMMENDATION_COLUMNS = (
    "task", "method", "validation_distance", "validation_distance_ci_low",
    "validation_distance_ci_high", "candidates", "reason",
)  # fmt: skip


def recommendations(
    verdict_table: pd.DataFrame,
    distances: pd.DataFrame,
    params: EvaluationParams,
    results: pd.DataFrame,
) -> pd.DataFrame:
    """Per task, the recommended method, selected on validation data only.

    Candidates are the unlearning runs (not the original, the oracle, the
    ``baseline_methods`` or per-seed repeats) whose validation verdicts do not fail
    (``val_forgot`` not ``not enough`` / ``too much``, ``val_kept`` not ``lost``); the one
    with the smallest validation distance to the oracle (first validation pair) wins. No
    validation sets in the results (or no validation criteria): no recommendation, and the
    row says why. Test data never enter the choice.

    Returns:
        Columns :data:`RECOMMENDATION_COLUMNS`: ``task, method`` (empty when none),
        ``validation_distance``, ``validation_distance_ci_low``, ``validation_distance_ci_high``,
        ``candidates`` (how many were eligible), ``reason``.
    """
    rows = []
    excluded = {params.original_method, params.oracle_method, *params.baseline_methods}
    for task, spec in params.tasks.items():
        row: dict[str, Any] = {
            "task": task, "method": "", "validation_distance": math.nan,
            "validation_distance_ci_low": math.nan, "validation_distance_ci_high": math.nan,
            "candidates": 0,
        }  # fmt: skip
        if task not in set(results["task"]):
            continue
        if spec.validation is None:
            rows.append({**row, "reason": "no recommendation: no validation criteria configured"})
            continue
        val_sets = sorted({ref.set for ref in [*spec.validation.retain, *spec.validation.forget]})
        is_oracle = (results["task"] == task) & (results["method"] == params.oracle_method)
        oracle_sets = set(results.loc[is_oracle, "set"])
        absent = [name for name in val_sets if name not in oracle_sets]
        if absent:
            rows.append({**row, "reason": "no recommendation: no validation data "
                         f"(set(s) {', '.join(absent)} absent)"})  # fmt: skip
            continue
        table = verdict_table.loc[(verdict_table["task"] == task)
                                  & (verdict_table["status"] == "ran")]  # fmt: skip
        table = table.loc[[m not in excluded and not is_seed_repeat(m) for m in table["method"]]]
        eligible = table.loc[~table["val_forgot"].isin(FAILING) & ~table["val_kept"].isin(FAILING)
                             & ~table["val_forgot"].isin([NOT_AVAILABLE])
                             & ~table["val_kept"].isin([NOT_AVAILABLE])]  # fmt: skip
        first = spec.validation.retain[0], spec.validation.forget[0]
        name = f"{first[0].metric}@{first[0].set} vs {first[1].metric}@{first[1].set}"
        dist = distances.loc[(distances["task"] == task) & (distances["criteria"] == "validation")
                             & (distances["distance"] == name)].set_index("method")  # fmt: skip
        scored = [(float(dist.at[m, "distance_to_oracle"]), m) for m in eligible["method"]
                  if m in dist.index and np.isfinite(float(dist.at[m, "distance_to_oracle"]))]
        row["candidates"] = len(scored)
        if not scored:
            rows.append({**row, "reason": "no recommendation: no method passes the validation "
                         f"verdicts ({len(table)} evaluated)"})  # fmt: skip
            continue
        best = min(scored)[1]
        rows.append({
            **row, "method": best,
            "validation_distance": float(dist.at[best, "distance_to_oracle"]),
            "validation_distance_ci_low": float(dist.at[best, "distance_ci_low"]),
            "validation_distance_ci_high": float(dist.at[best, "distance_ci_high"]),
            "reason": f"smallest validation distance to the oracle ({name}) among {len(scored)} "
                      "method(s) whose validation verdicts do not fail",
        })  # fmt: skip
    return pd.DataFrame(rows, columns=list(RECOMMENDATION_COLUMNS))
