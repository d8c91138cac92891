"""Comparisons with the retrained oracle: paired gaps, distances, relative figures, costs.

The oracle (a model retrained without the forget data) is the exact answer, so every method is
judged by its gap to the oracle, not only by how far it fell from the original: a forget set
the oracle still handles well should not be destroyed, because destruction is detectable too.
Gaps are *paired* (method − oracle on the same items, so the items' difficulty cancels) and
carry bootstrap intervals over items (:mod:`med_unlearning.metrics.statistics`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from med_unlearning.metrics.methods import method_display_order, order_methods
from med_unlearning.metrics.results_table import (
    item_series,
    summary_means,
    validate_cost_table,
    validate_results_table,
    validate_summary,
)
from med_unlearning.metrics.statistics import (
    bootstrap_cis,
    bootstrap_statistics,
    matched_differences,
)

__all__ = [
    "DISTANCE_COLUMNS",
    "GAP_COLUMNS",
    "Pair",
    "cost_ratios",
    "distance_to_oracle",
    "oracle_gaps",
    "relative_to_original",
]


GAP_COLUMNS = (
    "task", "method", "set", "metric", "higher_is_better", "mean", "oracle_mean", "gap",
    "gap_ci_low", "gap_ci_high", "n_paired", "relative_gap", "better_than_oracle",
)  # fmt: skip


def oracle_gaps(
    results: pd.DataFrame,
    oracle: str = "oracle",
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Paired gap to the oracle of every method, set and metric, with its bootstrap interval.

    ``gap`` is the mean over the items both models were scored on of ``method − oracle``
    (paired: the items' shared difficulty cancels); ``gap_ci_low``/``gap_ci_high`` its
    percentile-bootstrap interval over those items. The oracle's own rows are left out;
    where the task has no oracle result for a set and metric the gaps are NaN.

    Args:
        results: the tidy results table (per item), possibly with pooled seed repeats.
        oracle: the oracle's method name.
        confidence: level of the intervals.
        n_resamples: bootstrap resamples.
        seed: resampling seed.

    Returns:
        Columns :data:`GAP_COLUMNS`: ``mean``/``oracle_mean`` over all items of each model,
        ``n_paired`` the shared items, ``relative_gap = gap / |oracle_mean|``,
        ``better_than_oracle`` the gap's sign read with the metric's direction.

    Raises:
        ResultsTableError: ``results`` is not a tidy per-item table.
    """
    results = validate_results_table(results, "oracle_gaps results")
    series = item_series(results)
    higher_of = results.groupby("metric", sort=False)["higher_is_better"].first().astype(bool)
    rows, paired_rows, differences = [], [], []
    for (task, method, set_name, metric), values in series.items():
        if method == oracle:
            continue
        reference = series.get((task, oracle, set_name, metric))
        row = {"task": task, "method": method, "set": set_name, "metric": metric,
               "higher_is_better": bool(higher_of[metric]),
               "mean": float(values.mean())}  # fmt: skip
        if reference is None:
            row.update(oracle_mean=math.nan, gap=math.nan, gap_ci_low=math.nan,
                       gap_ci_high=math.nan, n_paired=0)  # fmt: skip
        else:
            row["oracle_mean"] = float(reference.mean())
            paired_rows.append(row)
            differences.append(matched_differences(values, reference))
        rows.append(row)
    intervals = bootstrap_cis(
        differences, confidence=confidence, n_resamples=n_resamples, seed=seed
    )
    for row, interval in zip(paired_rows, intervals, strict=True):
        row.update(gap=interval.estimate, gap_ci_low=interval.low, gap_ci_high=interval.high,
                   n_paired=interval.n)  # fmt: skip
    gaps = pd.DataFrame(rows, columns=[c for c in GAP_COLUMNS if c not in
                                       ("relative_gap", "better_than_oracle")])  # fmt: skip
    with np.errstate(divide="ignore", invalid="ignore"):
        gaps["relative_gap"] = gaps["gap"].astype(float) / gaps["oracle_mean"].astype(float).abs()
    gap = gaps["gap"].astype(float)
    signed = np.where(gaps["higher_is_better"].astype(bool), gap, -gap)
    gaps["better_than_oracle"] = np.nan_to_num(signed.astype(float), nan=0.0) > 0
    gaps = gaps.sort_values(["task", "method", "set", "metric"]).reset_index(drop=True)
    return gaps.loc[:, list(GAP_COLUMNS)]


Pair = tuple[tuple[str, str], tuple[str, str]]


def _hypot_of_means(retain: np.ndarray, forget: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.hypot(np.mean(retain, axis=axis), np.mean(forget, axis=axis))


DISTANCE_COLUMNS = (
    "task", "criteria", "distance", "method", "retain", "forget", "oracle_retain",
    "oracle_forget", "distance_to_oracle", "distance_ci_low", "distance_ci_high",
)  # fmt: skip


def distance_to_oracle(
    results: pd.DataFrame,
    pairs: Mapping[str, Sequence[Pair]],
    oracle: str = "oracle",
    *,
    criteria: str = "test",
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """One number per method: ``sqrt(ΔR² + ΔF²)`` (bilevel study), with a bootstrap interval.

    ``ΔR``/``ΔF`` are the mean paired differences method − oracle on the retain / forget
    set's items; the interval resamples the two sets' items independently (they are
    different volumes). The distance is biased upward (a norm of noisy means is never
    below 0), so an interval that touches 0 is the most a perfect method can show.

    Args:
        results: the tidy results table (per item).
        pairs: per task ``((retain_set, retain_metric), (forget_set, forget_metric))``.
        oracle: the oracle's method name.
        criteria: label of the pairs (``test`` or ``validation``), kept in a column.
        confidence: level of the intervals.
        n_resamples: bootstrap resamples.
        seed: resampling seed.

    Returns:
        Columns :data:`DISTANCE_COLUMNS` (means of each model on all its items; NaN where
        an input is missing). The oracle itself is listed (distance 0).
    """
    results = validate_results_table(results, "distance_to_oracle results")
    series = item_series(results)
    empty = pd.Series(dtype=float)
    rows, samples = [], []
    for task, task_pairs in pairs.items():
        methods = order_methods(results.loc[results["task"] == task, "method"], oracle=oracle)
        for (retain_set, retain_metric), (forget_set, forget_metric) in task_pairs:
            name = f"{retain_metric}@{retain_set} vs {forget_metric}@{forget_set}"
            oracle_retain = series.get((task, oracle, retain_set, retain_metric), empty)
            oracle_forget = series.get((task, oracle, forget_set, forget_metric), empty)
            for method in methods:
                retain = series.get((task, method, retain_set, retain_metric), empty)
                forget = series.get((task, method, forget_set, forget_metric), empty)
                samples.append(
                    [matched_differences(retain, oracle_retain),
                     matched_differences(forget, oracle_forget)]
                )  # fmt: skip
                rows.append(
                    {
                        "task": task,
                        "criteria": criteria,
                        "distance": name,
                        "method": method,
                        "retain": _mean_of(retain),
                        "forget": _mean_of(forget),
                        "oracle_retain": _mean_of(oracle_retain),
                        "oracle_forget": _mean_of(oracle_forget),
                    }
                )
    intervals = bootstrap_statistics(
        samples, _hypot_of_means, confidence=confidence, n_resamples=n_resamples, seed=seed
    )
    for row, interval in zip(rows, intervals, strict=True):
        row.update(distance_to_oracle=interval.estimate, distance_ci_low=interval.low,
                   distance_ci_high=interval.high)  # fmt: skip
    return pd.DataFrame(rows, columns=list(DISTANCE_COLUMNS))


def _mean_of(values: pd.Series) -> float:
    return float(values.mean()) if len(values) else math.nan


def relative_to_original(
    summary: pd.DataFrame,
    headline: Mapping[str, Pair],
    original: str = "original",
) -> pd.DataFrame:
    """The segmentation study's headline form, against the original model.

    ``forget_relative_decrease = (original − method) / original`` on the forget metric and
    ``retain_kept = method / original`` on the retain metric (e.g. Noisy Label: forget Dice
    0.9226 → 0.0613 is a 93% decrease; retain Dice 0.7576 is ≈84% of the original's).

    Args:
        summary: output of :func:`~med_unlearning.metrics.results_table.summarize`.
        headline: per task, ``((retain_set, retain_metric), (forget_set, forget_metric))``.
        original: the original model's method name.

    Returns:
        Columns ``task, method, retain_metric, forget_metric, retain_original, retain,
        retain_kept, forget_original, forget, forget_relative_decrease`` (NaN where the
        original's value is missing or zero).
    """
    summary = validate_summary(summary)
    values = summary_means(summary)
    rows = []
    for task, ((retain_set, retain_metric), (forget_set, forget_metric)) in headline.items():
        retain_original = values.get((task, original, retain_set, retain_metric), (np.nan,))[0]
        forget_original = values.get((task, original, forget_set, forget_metric), (np.nan,))[0]
        for method in method_display_order(summary, task, original=original):
            retain = values.get((task, method, retain_set, retain_metric), (np.nan,))[0]
            forget = values.get((task, method, forget_set, forget_metric), (np.nan,))[0]
            rows.append(
                {
                    "task": task,
                    "method": method,
                    "retain_metric": f"{retain_metric}@{retain_set}",
                    "forget_metric": f"{forget_metric}@{forget_set}",
                    "retain_original": retain_original,
                    "retain": retain,
                    "retain_kept": _ratio(retain, retain_original),
                    "forget_original": forget_original,
                    "forget": forget,
                    "forget_relative_decrease": _ratio(forget_original - forget, forget_original),
                }
            )
    columns = [
        "task", "method", "retain_metric", "forget_metric", "retain_original", "retain",
        "retain_kept", "forget_original", "forget", "forget_relative_decrease",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _ratio(numerator: float, denominator: float) -> float:
    if not np.isfinite(denominator) or denominator == 0:
        return math.nan
    return numerator / denominator


def cost_ratios(costs: pd.DataFrame, oracle: str = "oracle") -> pd.DataFrame:
    """Each method's wall time as a fraction of the oracle's retraining time, per task.

    Returns:
        Columns ``task, method, wall_time_s, oracle_wall_time_s, ratio_to_retraining``
        (NaN when the task has no oracle time or it is zero).
    """
    costs = validate_cost_table(costs)
    reference = costs.loc[costs["method"] == oracle, ["task", "wall_time_s"]]
    reference = reference.rename(columns={"wall_time_s": "oracle_wall_time_s"})
    table = costs.merge(reference, on="task", how="left")
    table["ratio_to_retraining"] = [
        _ratio(time, oracle_time)
        for time, oracle_time in zip(table["wall_time_s"], table["oracle_wall_time_s"], strict=True)
    ]
    return table.reset_index(drop=True)
