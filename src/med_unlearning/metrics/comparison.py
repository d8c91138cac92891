"""Compare unlearned models with the retrained oracle: summaries, gaps, distances, verdicts.

Everything here works on the **tidy results table**, one row per task × method × set × item ×
metric, with columns:

- ``task``: ``recon`` or ``segmentation``;
- ``method``: ``original``, ``oracle`` or a strategy, possibly with a suffix for a sweep
  point (``ft@10%``, ``noisy_label@e20``); the part before ``@`` is the strategy's *base*;
- ``set``: recon ``retain_test`` (BTA), ``forget_test`` (KTA), ``forget_train`` (UA);
  segmentation ``retain``, ``forget`` (others are allowed);
- ``item_id``, ``metric``, ``value``, ``higher_is_better`` (bool per metric);
- optional ``retain_fraction`` (fraction of the retain data in (0, 1], or NaN) and
  ``epochs`` (or NaN) for sweeps;

and on a **cost table** with ``task``, ``method``, ``wall_time_s``.

The oracle (a model retrained without the forget data) is the exact answer, so every method is
judged by its gap to the oracle, not only by how far it fell from the original: a forget set
the oracle still handles well should not be destroyed, because destruction is detectable too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from med_unlearning.metrics.statistics import (
    bootstrap_ci,
    bootstrap_statistic,
    equivalence,
    format_interval,
    is_seed_repeat,
    paired_differences,
    pool_seed_repeats,
)
from med_unlearning.params.evaluation import EvaluationParams, VerdictParams

__all__ = [
    "COST_COLUMNS",
    "DISTANCE_COLUMNS",
    "FAILING",
    "GAP_COLUMNS",
    "VERDICT_COLUMNS",
    "DEFAULT_HIGHER_IS_BETTER",
    "REQUIRED_COLUMNS",
    "SET_LABELS",
    "ResultsTableError",
    "cost_ratios",
    "distance_to_oracle",
    "evaluate_study",
    "format_ci",
    "format_mean_std",
    "format_value",
    "metric_label",
    "method_base",
    "method_display_order",
    "missing_methods",
    "oracle_gaps",
    "order_methods",
    "recorded_settings_sources",
    "settings_selected_on",
    "recommendations",
    "relative_to_original",
    "set_label",
    "study_table",
    "summarize",
    "tolerance_for",
    "validate_cost_table",
    "validate_summary",
    "validate_results_table",
    "verdict_sentence",
    "verdicts",
]

#: Columns every tidy results table must have.
REQUIRED_COLUMNS = ("task", "method", "set", "item_id", "metric", "value", "higher_is_better")
#: Optional sweep columns, filled with NaN when absent.
OPTIONAL_COLUMNS = ("retain_fraction", "epochs")
#: Columns of the cost table.
COST_COLUMNS = ("task", "method", "wall_time_s")

#: Direction of the known metrics, used only when a table lacks ``higher_is_better``.
DEFAULT_HIGHER_IS_BETTER = {
    "psnr": True,
    "ssim": True,
    "nmse": False,
    "mae": False,
    "hd95": False,
}

#: Human names of the sets (the studies' abbreviations in brackets).
SET_LABELS = {
    "retain_test": "retain test (BTA)",
    "forget_test": "forget test (KTA)",
    "forget_train": "forget train (UA)",
    "retain": "retain",
    "forget": "forget",
}

_METRIC_LABELS = {"psnr": "PSNR", "ssim": "SSIM", "nmse": "NMSE", "mae": "MAE", "hd95": "HD95"}
_METRIC_DECIMALS = {"psnr": 2, "ssim": 3, "nmse": 4, "mae": 4, "hd95": 2}
_SUMMARY_KEYS = ["task", "method", "set", "metric"]
_NOT_AVAILABLE = "n/a"
_MISSING = "missing"


class ResultsTableError(ValueError):
    """A results or cost table breaks its contract; the message names the table and column."""


# ---------------------------------------------------------------------------------------------
# Names, order, formatting


def method_base(method: str) -> str:
    """The strategy a method string names: the part before ``@`` (``ft@10%`` → ``ft``)."""
    return str(method).split("@", 1)[0]


def metric_label(metric: str) -> str:
    """Display name of a metric (``ssim`` → ``SSIM``, ``dice_mean`` → ``Dice``)."""
    if metric in _METRIC_LABELS:
        return _METRIC_LABELS[metric]
    if metric in ("dice_mean", "mean_dice"):
        return "Dice"
    if metric.startswith("dice_"):
        return f"Dice {metric[len('dice_') :]}"
    return metric


#: Display names that differ by task (segmentation's sets are subjects, not the KTA/BTA).
TASK_SET_LABELS = {
    "segmentation": {
        "test": "unseen subjects",
        "forget_test": "unseen subjects of the forget kind",
    },
}


def set_label(set_name: str, task: str | None = None) -> str:
    """Display name of a set (``forget_train`` → ``forget train (UA)``; with ``task`` its
    own name where it has one)."""
    own = TASK_SET_LABELS.get(task or "", {})
    return own.get(set_name, SET_LABELS.get(set_name, set_name))


def _decimals(metric: str) -> int:
    if metric in _METRIC_DECIMALS:
        return _METRIC_DECIMALS[metric]
    return 3 if "dice" in metric else 4


def format_value(value: float, metric: str) -> str:
    """A metric value with the precision the studies print it with (PSNR .2f, SSIM .3f…)."""
    if value is None or not np.isfinite(value):
        return _NOT_AVAILABLE
    return f"{value:.{_decimals(metric)}f}"


def format_ci(mean: float, low: float, high: float, metric: str, signed: bool = False) -> str:
    """``mean [low, high]`` with the metric's precision (``mean (no CI)`` without an
    interval, ``n/a`` without a mean)."""
    return format_interval(mean, low, high, _decimals(metric), signed=signed)


def format_mean_std(mean: float, std: float, metric: str) -> str:
    """``mean ± std`` (just the mean when the std is undefined, e.g. a single item)."""
    if mean is None or not np.isfinite(mean):
        return _NOT_AVAILABLE
    if std is None or not np.isfinite(std):
        return format_value(mean, metric)
    return f"{format_value(mean, metric)} ± {format_value(std, metric)}"


def order_methods(
    methods: Iterable[str],
    *,
    original: str = "original",
    oracle: str = "oracle",
    method_order: Sequence[str] = (),
    sweep_keys: Mapping[str, tuple[float, float]] | None = None,
) -> list[str]:
    """Sort methods for display: original, oracle, then strategies.

    Strategies follow ``method_order`` by base name (unknown bases after, by name); sweep
    points of one strategy follow their ``(retain_fraction, epochs)`` from ``sweep_keys``
    (the plain strategy first), then their name.
    """
    rank = {base: position for position, base in enumerate(method_order)}
    sweep_keys = sweep_keys or {}

    def key(method: str) -> tuple[Any, ...]:
        if method == original:
            return (0, 0, "", 0.0, 0.0, method)
        if method == oracle:
            return (1, 0, "", 0.0, 0.0, method)
        base = method_base(method)
        fraction, epochs = sweep_keys.get(method, (math.nan, math.nan))
        return (
            2,
            rank.get(base, len(rank)),
            base,
            -1.0 if "@" not in method else (fraction if np.isfinite(fraction) else math.inf),
            epochs if np.isfinite(epochs) else math.inf,
            method,
        )

    return sorted(dict.fromkeys(str(method) for method in methods), key=key)


def _sweep_keys(summary: pd.DataFrame) -> dict[str, tuple[float, float]]:
    if summary.empty:
        return {}
    keys = summary.groupby("method", sort=False)[["retain_fraction", "epochs"]].first()
    return {
        str(method): (float(row.retain_fraction), float(row.epochs))
        for method, row in keys.iterrows()
    }


def method_display_order(
    summary: pd.DataFrame,
    task: str,
    *,
    original: str = "original",
    oracle: str = "oracle",
    method_order: Sequence[str] = (),
    extra: Sequence[str] = (),
) -> list[str]:
    """The methods of ``task`` in the summary (plus ``extra``, e.g. missing ones), in display
    order: :func:`order_methods` with sweep points sorted by retain fraction and epochs."""
    summary = validate_summary(summary)
    task_summary = summary.loc[summary["task"] == task]
    return order_methods(
        [*task_summary["method"].unique(), *extra],
        original=original,
        oracle=oracle,
        method_order=method_order,
        sweep_keys=_sweep_keys(task_summary),
    )


# ---------------------------------------------------------------------------------------------
# Validation


def validate_results_table(table: pd.DataFrame, name: str = "results") -> pd.DataFrame:
    """Check a tidy results table and return a normalised copy.

    Normalises: string ``task``/``method``/``set``/``metric``/``item_id``, float ``value``,
    bool ``higher_is_better`` (filled from :data:`DEFAULT_HIGHER_IS_BETTER` and the ``dice``
    prefix when the column is absent), optional sweep columns as floats (NaN when absent).

    Raises:
        ResultsTableError: naming ``name`` and the column: not a DataFrame, empty, a missing
            column, non-numeric values, a metric with both directions, ``retain_fraction``
            outside (0, 1], or duplicated rows (same task, method, set, item, metric).
    """
    if not isinstance(table, pd.DataFrame):
        raise ResultsTableError(f"{name}: expected a pandas DataFrame, got {type(table).__name__}")
    if table.empty:
        raise ResultsTableError(f"{name}: the results table is empty (no evaluated items)")
    table = table.copy()
    if "higher_is_better" not in table.columns and "metric" in table.columns:
        table["higher_is_better"] = [_default_direction(str(m), name) for m in table["metric"]]
    missing = [column for column in REQUIRED_COLUMNS if column not in table.columns]
    if missing:
        raise ResultsTableError(
            f"{name}: missing column(s) {missing}; expected columns {list(REQUIRED_COLUMNS)} "
            f"(+ optional {list(OPTIONAL_COLUMNS)}), got {list(table.columns)}"
        )
    for column in ("task", "method", "set", "metric", "item_id"):
        table[column] = table[column].astype(str)
    table["value"] = _numeric(table, "value", name)
    table["higher_is_better"] = _booleans(table["higher_is_better"], name)
    for column in OPTIONAL_COLUMNS:
        table[column] = _numeric(table, column, name) if column in table.columns else np.nan
    fractions = table["retain_fraction"].dropna()
    if ((fractions <= 0) | (fractions > 1)).any():
        bad = fractions[(fractions <= 0) | (fractions > 1)].iloc[0]
        raise ResultsTableError(
            f"{name}: column 'retain_fraction' must be a fraction in (0, 1] or NaN, got {bad}"
        )
    directions = table.groupby("metric")["higher_is_better"].nunique()
    mixed = sorted(directions[directions > 1].index)
    if mixed:
        raise ResultsTableError(
            f"{name}: column 'higher_is_better' is both True and False for metric(s) {mixed}"
        )
    keys = ["task", "method", "set", "item_id", "metric"]
    duplicated = table.duplicated(keys)
    if duplicated.any():
        first = table.loc[duplicated, keys].iloc[0].to_dict()
        raise ResultsTableError(f"{name}: duplicated row for {first} (one row per item expected)")
    return table


def _default_direction(metric: str, name: str) -> bool:
    if metric in DEFAULT_HIGHER_IS_BETTER:
        return DEFAULT_HIGHER_IS_BETTER[metric]
    if "dice" in metric:
        return True
    raise ResultsTableError(
        f"{name}: no 'higher_is_better' column and metric {metric!r} has no known direction"
    )


def _numeric(table: pd.DataFrame, column: str, name: str) -> pd.Series:
    values = pd.to_numeric(table[column], errors="coerce").astype(float)
    bad = values.isna() & table[column].notna()
    if bad.any():
        raise ResultsTableError(
            f"{name}: column {column!r} must be numeric, got {table.loc[bad, column].iloc[0]!r}"
        )
    return values


def _booleans(column: pd.Series, name: str) -> pd.Series:
    mapping = {"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False}
    converted = column.map(lambda value: mapping.get(str(value).strip().lower()))
    if converted.isna().any():
        bad = column[converted.isna()].iloc[0]
        raise ResultsTableError(f"{name}: column 'higher_is_better' must be boolean, got {bad!r}")
    return converted.astype(bool)


def validate_cost_table(costs: pd.DataFrame, name: str = "costs") -> pd.DataFrame:
    """Check a cost table (``task``, ``method``, ``wall_time_s``) and return a normalised copy.

    Raises:
        ResultsTableError: naming ``name`` and the column: missing columns, non-numeric or
            negative times, or two rows for one task × method.
    """
    if not isinstance(costs, pd.DataFrame):
        raise ResultsTableError(f"{name}: expected a pandas DataFrame, got {type(costs).__name__}")
    missing = [column for column in COST_COLUMNS if column not in costs.columns]
    if missing:
        raise ResultsTableError(
            f"{name}: missing column(s) {missing}; expected {list(COST_COLUMNS)}, "
            f"got {list(costs.columns)}"
        )
    costs = costs.loc[:, list(COST_COLUMNS)].copy()
    costs["task"] = costs["task"].astype(str)
    costs["method"] = costs["method"].astype(str)
    costs["wall_time_s"] = _numeric(costs, "wall_time_s", name)
    if (costs["wall_time_s"] < 0).any():
        raise ResultsTableError(f"{name}: column 'wall_time_s' must be >= 0")
    duplicated = costs.duplicated(["task", "method"])
    if duplicated.any():
        first = costs.loc[duplicated, ["task", "method"]].iloc[0].to_dict()
        raise ResultsTableError(f"{name}: two rows for {first} (one wall time per run expected)")
    return costs


# ---------------------------------------------------------------------------------------------
# Summaries and gaps


_SUMMARY_COLUMNS = ("task", "method", "set", "metric", "higher_is_better", "mean", "std")


def validate_summary(summary: pd.DataFrame, name: str = "summary") -> pd.DataFrame:
    """Check a summary (from :func:`summarize`, possibly read back from CSV); normalised copy.

    Raises:
        ResultsTableError: naming ``name`` and the missing or malformed column.
    """
    if not isinstance(summary, pd.DataFrame):
        raise ResultsTableError(
            f"{name}: expected a pandas DataFrame, got {type(summary).__name__}"
        )
    missing = [column for column in _SUMMARY_COLUMNS if column not in summary.columns]
    if missing:
        raise ResultsTableError(
            f"{name}: missing column(s) {missing}; expected the output of summarize() "
            f"({list(_SUMMARY_COLUMNS)} …), got {list(summary.columns)}"
        )
    summary = summary.copy()
    for column in ("task", "method", "set", "metric"):
        summary[column] = summary[column].astype(str)
    for column in ("mean", "std"):
        summary[column] = _numeric(summary, column, name)
    summary["higher_is_better"] = _booleans(summary["higher_is_better"], name)
    for column in OPTIONAL_COLUMNS:
        summary[column] = _numeric(summary, column, name) if column in summary.columns else np.nan
    return summary




def summarize(
    results: pd.DataFrame,
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Mean over items with its bootstrap interval, per task × method × set × metric.

    Returns:
        Columns ``task, method, set, metric, higher_is_better, mean, std, ci_low, ci_high,
        n, n_seeds, retain_fraction, epochs``; ``std`` is the sample standard deviation over
        items (ddof 1), ``ci_low``/``ci_high`` the percentile-bootstrap interval of the mean
        over items (:func:`~med_unlearning.metrics.statistics.bootstrap_ci`; NaN for a
        single item), ``n`` counts finite values, ``n_seeds`` the seed repeats pooled per
        item (1 unless the table went through
        :func:`~med_unlearning.metrics.statistics.pool_seed_repeats`).
    """
    results = validate_results_table(results)
    if "n_seeds" not in results.columns:
        results["n_seeds"] = 1
    grouped = results.groupby(_SUMMARY_KEYS, sort=True, dropna=False)
    summary = grouped.agg(
        higher_is_better=("higher_is_better", "first"),
        mean=("value", "mean"),
        std=("value", "std"),
        n=("value", "count"),
        n_seeds=("n_seeds", "max"),
        retain_fraction=("retain_fraction", "first"),
        epochs=("epochs", "first"),
    ).reset_index()
    lows, highs = [], []
    for _, group in grouped:
        interval = bootstrap_ci(
            group["value"].to_numpy(dtype=float),
            confidence=confidence, n_resamples=n_resamples, seed=seed,
        )  # fmt: skip
        lows.append(interval.low)
        highs.append(interval.high)
    summary["ci_low"], summary["ci_high"] = lows, highs
    summary["n"] = summary["n"].astype(int)
    summary["n_seeds"] = summary["n_seeds"].astype(int)
    columns = [
        "task", "method", "set", "metric", "higher_is_better", "mean", "std", "ci_low",
        "ci_high", "n", "n_seeds", "retain_fraction", "epochs",
    ]  # fmt: skip
    return summary.loc[:, columns]


def _lookup(summary: pd.DataFrame) -> dict[tuple[str, str, str, str], tuple[float, float, bool]]:
    """``{(task, method, set, metric): (mean, std, higher_is_better)}``."""
    return {
        (str(row.task), str(row.method), str(row.set), str(row.metric)): (
            float(row.mean),
            float(row.std),
            bool(row.higher_is_better),
        )
        for row in summary.itertuples(index=False)
    }


def _intervals(summary: pd.DataFrame) -> dict[tuple[str, str, str, str], tuple[float, float]]:
    """``{(task, method, set, metric): (ci_low, ci_high)}`` (NaN when the summary has none)."""
    has = "ci_low" in summary.columns and "ci_high" in summary.columns
    return {
        (str(row.task), str(row.method), str(row.set), str(row.metric)): (
            (float(row.ci_low), float(row.ci_high)) if has else (math.nan, math.nan)
        )
        for row in summary.itertuples(index=False)
    }


def _item_series(results: pd.DataFrame) -> dict[tuple[str, str, str, str], pd.Series]:
    """``{(task, method, set, metric): values indexed by item_id}`` of a tidy table."""
    return {
        (str(task), str(method), str(set_name), str(metric)): group.set_index("item_id")["value"]
        for (task, method, set_name, metric), group in results.groupby(
            _SUMMARY_KEYS, sort=False
        )
    }


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
    series = _item_series(results)
    rows = []
    for (task, method, set_name, metric), values in series.items():
        if method == oracle:
            continue
        reference = series.get((task, oracle, set_name, metric))
        higher = bool(results.loc[results["metric"] == metric, "higher_is_better"].iloc[0])
        row = {"task": task, "method": method, "set": set_name, "metric": metric,
               "higher_is_better": higher, "mean": float(values.mean())}  # fmt: skip
        if reference is None:
            row.update(oracle_mean=math.nan, gap=math.nan, gap_ci_low=math.nan,
                       gap_ci_high=math.nan, n_paired=0)  # fmt: skip
        else:
            interval, _ = paired_differences(
                values, reference, confidence=confidence, n_resamples=n_resamples, seed=seed
            )
            row.update(oracle_mean=float(reference.mean()), gap=interval.estimate,
                       gap_ci_low=interval.low, gap_ci_high=interval.high,
                       n_paired=interval.n)  # fmt: skip
        rows.append(row)
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
    series = _item_series(results)
    empty = pd.Series(dtype=float)
    rows = []
    for task, task_pairs in pairs.items():
        methods = order_methods(results.loc[results["task"] == task, "method"], oracle=oracle)
        for (retain_set, retain_metric), (forget_set, forget_metric) in task_pairs:
            name = f"{retain_metric}@{retain_set} vs {forget_metric}@{forget_set}"
            oracle_retain = series.get((task, oracle, retain_set, retain_metric), empty)
            oracle_forget = series.get((task, oracle, forget_set, forget_metric), empty)
            for method in methods:
                retain = series.get((task, method, retain_set, retain_metric), empty)
                forget = series.get((task, method, forget_set, forget_metric), empty)
                d_retain = _paired(retain, oracle_retain)
                d_forget = _paired(forget, oracle_forget)
                interval = bootstrap_statistic(
                    [d_retain, d_forget], _hypot_of_means, confidence=confidence,
                    n_resamples=n_resamples, seed=seed,
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
                        "distance_to_oracle": interval.estimate,
                        "distance_ci_low": interval.low,
                        "distance_ci_high": interval.high,
                    }
                )
    return pd.DataFrame(rows, columns=list(DISTANCE_COLUMNS))


def _paired(values: pd.Series, reference: pd.Series) -> np.ndarray:
    """``values − reference`` on the items both have (finite only)."""
    joined = pd.concat([values.rename("a"), reference.rename("b")], axis=1, join="inner")
    differences = (joined["a"] - joined["b"]).to_numpy(dtype=float)
    return differences[np.isfinite(differences)]


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
        summary: output of :func:`summarize`.
        headline: per task, ``((retain_set, retain_metric), (forget_set, forget_metric))``.
        original: the original model's method name.

    Returns:
        Columns ``task, method, retain_metric, forget_metric, retain_original, retain,
        retain_kept, forget_original, forget, forget_relative_decrease`` (NaN where the
        original's value is missing or zero).
    """
    summary = validate_summary(summary)
    values = _lookup(summary)
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


def missing_methods(
    summary: pd.DataFrame, expected_methods: Mapping[str, Sequence[str]]
) -> dict[str, list[str]]:
    """Per task, the expected methods with no row in the results (empty lists left out)."""
    summary = validate_summary(summary)
    missing = {}
    for task, expected in expected_methods.items():
        present = set(summary.loc[summary["task"] == task, "method"])
        absent = [method for method in dict.fromkeys(expected) if method not in present]
        if absent:
            missing[task] = absent
    return missing


# ---------------------------------------------------------------------------------------------
# The studies' table layout


def _default_layout(task: str, summary: pd.DataFrame) -> list[tuple[str, str, tuple[str, ...]]]:
    """Column layout ``(header, set, metrics)`` of the study table of ``task``."""
    present = summary.loc[summary["task"] == task]
    sets = list(dict.fromkeys(present["set"]))
    metrics_in = {s: set(present.loc[present["set"] == s, "metric"]) for s in sets}
    if task == "recon":
        order = ["retain_test", "forget_test", "forget_train"]
        sets = [s for s in order if s in sets] + [s for s in sets if s not in order]
        return [
            (f"{set_label(s)} PSNR / SSIM", s, ("psnr", "ssim"))
            for s in sets
            if {"psnr", "ssim"} & metrics_in[s]
        ]
    if task == "segmentation":
        order = ["retain", "forget"]
        sets = [s for s in order if s in sets] + [s for s in sets if s not in order]
        layout = []
        for metric in ("dice_mean", "mean_dice", "mae"):
            layout += [
                (f"{set_label(s)} {metric_label(metric)}", s, (metric,))
                for s in sets
                if metric in metrics_in[s]
            ]
        return layout
    return [
        (f"{set_label(s)} {metric_label(m)}", s, (m,))
        for s in sets
        for m in sorted(metrics_in[s])
    ]


def study_table(
    summary: pd.DataFrame,
    task: str,
    *,
    original: str = "original",
    oracle: str = "oracle",
    method_order: Sequence[str] = (),
    relative: pd.DataFrame | None = None,
    expected_methods: Sequence[str] = (),
) -> pd.DataFrame:
    """The summary of one task in the studies' table layout, as display strings.

    Rows are methods (original, oracle, strategies; see :func:`order_methods`); recon
    columns are ``PSNR / SSIM`` per set as in Erase-to-Enhance Table 1 (retain test (BTA),
    forget test (KTA), forget train (UA)), segmentation columns retain/forget Dice and MAE;
    cells read ``mean [95 % CI]`` (bootstrap over items; ``mean ± std`` when the summary
    has no interval columns). With ``relative`` (from :func:`relative_to_original`) two
    more columns give the forget metric's decrease and the share of the retain metric kept,
    both against the original. Methods in ``expected_methods`` without results get a row
    whose cells read ``missing``.

    Returns:
        A DataFrame of strings with a ``method`` column first.
    """
    summary = validate_summary(summary)
    task_summary = summary.loc[summary["task"] == task]
    values = _lookup(task_summary)
    intervals = _intervals(task_summary) if "ci_low" in task_summary.columns else None
    methods = method_display_order(
        summary, task, original=original, oracle=oracle, method_order=method_order,
        extra=expected_methods,
    )
    present = set(task_summary["method"])
    layout = _default_layout(task, summary)
    relative_rows = {}
    if relative is not None and not relative.empty:
        relative_rows = {
            str(row.method): row for row in relative.loc[relative["task"] == task].itertuples()
        }
    rows = []
    for method in methods:
        row: dict[str, str] = {"method": method}
        for header, set_name, metrics in layout:
            if method not in present:
                row[header] = _MISSING
                continue
            cells = []
            for metric in metrics:
                key = (task, method, set_name, metric)
                mean, std, _ = values.get(key, (np.nan, np.nan, True))
                if intervals is None:
                    cells.append(format_mean_std(mean, std, metric))
                else:
                    low, high = intervals.get(key, (np.nan, np.nan))
                    cells.append(format_ci(mean, low, high, metric))
            row[header] = " / ".join(cells)
        if relative_rows:
            found = relative_rows.get(method)
            decrease = _percent(found.forget_relative_decrease) if found is not None else None
            kept = _percent(found.retain_kept) if found is not None else None
            missing_text = _MISSING if method not in present else _NOT_AVAILABLE
            row["forget decrease vs original"] = decrease or missing_text
            row["retain kept vs original"] = kept or missing_text
        rows.append(row)
    return pd.DataFrame(rows)


def _percent(value: float) -> str | None:
    return f"{100 * value:.1f}%" if value is not None and np.isfinite(value) else None


# ---------------------------------------------------------------------------------------------
# Verdicts


def tolerance_for(metric: str, oracle_value: float, thresholds: VerdictParams) -> float:
    """The verdict tolerance of ``metric``: its absolute entry, ``dice_mean``'s for other Dice
    metrics, else ``relative_tolerance × |oracle_value|``."""
    tolerances = thresholds.tolerances
    if metric in tolerances:
        return tolerances[metric]
    if "dice" in metric:
        for alias in ("dice_mean", "mean_dice"):
            if alias in tolerances:
                return tolerances[alias]
    return thresholds.relative_tolerance * abs(oracle_value)


#: Verdict values that fail a criterion (the recommendation skips methods with any).
FAILING = ("not enough", "too much", "lost")

_FORGET_WORDS = {"equivalent": "yes", "above": "not enough", "below": "too much",
                 "inconclusive": "inconclusive"}  # fmt: skip
_RETAIN_WORDS = {"equivalent": "yes", "above": "better", "below": "lost",
                 "inconclusive": "inconclusive"}  # fmt: skip


def _gap_lookup(gaps: pd.DataFrame | None) -> dict[tuple[str, str, str, str], Any]:
    if gaps is None or gaps.empty:
        return {}
    return {
        (str(row.task), str(row.method), str(row.set), str(row.metric)): row
        for row in gaps.itertuples(index=False)
    }


def _judge(
    gaps: Mapping[tuple[str, str, str, str], Any],
    task: str,
    method: str,
    refs: Sequence[tuple[str, str]],
    thresholds: VerdictParams,
    *,
    forgetting: bool,
) -> tuple[str, str]:
    """Verdict and detail text of ``kept`` (``forgetting=False``) or ``forgot``.

    Each criterion's paired gap interval is read in the metric's direction (``d > 0``:
    better than the oracle) and judged by :func:`~med_unlearning.metrics.statistics.
    equivalence` against the metric's tolerance. Forget side: equivalent → ``yes``, above →
    ``not enough`` (still better on the forget data than a model that never saw it), below →
    ``too much`` (worse than the oracle: over-forgetting is detectable too). Retain side:
    equivalent → ``yes``, above → ``better``, below → ``lost``. Anything else is
    ``inconclusive``. Several criteria: a failing one decides, then ``inconclusive``.
    """
    if not refs:
        return _NOT_AVAILABLE, "no criteria configured for this task"
    words = _FORGET_WORDS if forgetting else _RETAIN_WORDS
    details, outcomes, unknown = [], [], []
    for set_name, metric in refs:
        row = gaps.get((task, method, set_name, metric))
        if row is None or not np.isfinite(float(row.oracle_mean)):
            who = method if row is None else "oracle"
            unknown.append(f"no {who} result for {set_name} {metric_label(metric)}")
            continue
        gap, low, high = float(row.gap), float(row.gap_ci_low), float(row.gap_ci_high)
        sign = 1.0 if bool(row.higher_is_better) else -1.0
        directed = sorted((sign * low, sign * high))
        tol = tolerance_for(metric, float(row.oracle_mean), thresholds)
        outcome = words[equivalence(directed[0], directed[1], tol)]
        outcomes.append(outcome)
        details.append(
            f"{set_name} {metric_label(metric)} {format_ci(gap, low, high, metric, signed=True)}"
            f" vs ±{format_value(tol, metric)}: {outcome}"
        )
    if unknown:
        return _NOT_AVAILABLE, "; ".join([*details, *unknown])
    for word in ("not enough", "too much", "lost", "inconclusive"):
        if word in outcomes:
            return word, ", ".join(details)
    if "better" in outcomes:
        return "better", ", ".join(details)
    return "yes", ", ".join(details)


def _privacy(membership: pd.DataFrame | None, task: str, method: str) -> tuple[str, str]:
    """``private`` verdict from the membership table's paired AUC difference to the oracle.

    ``uninformative`` when the task's null check failed (the attack "detects" members on a
    model that never saw them), else the equivalence verdict of ``auc_minus_oracle``'s
    interval against ``privacy_tolerance``: equivalent → ``yes``; outside → ``exposed``;
    otherwise ``inconclusive``.
    """
    if membership is None or membership.empty:
        return _NOT_AVAILABLE, "no membership-inference results"
    rows = membership.loc[(membership["task"] == task) & (membership["method"] == method)]
    if rows.empty:
        return _NOT_AVAILABLE, f"no membership-inference result for {method}"
    row = rows.iloc[0]
    verdict = str(row.get("private", _NOT_AVAILABLE))
    detail = row.get("private_detail", "")
    detail = detail if isinstance(detail, str) else ""
    return verdict, detail


def _cost(
    costs: pd.DataFrame | None, task: str, method: str, max_ratio: float
) -> tuple[float, str, str]:
    if costs is None or costs.empty:
        return math.nan, _NOT_AVAILABLE, "no wall time recorded"
    rows = costs.loc[(costs["task"] == task) & (costs["method"] == method)]
    if rows.empty:
        return math.nan, _NOT_AVAILABLE, "no wall time recorded"
    row = rows.iloc[0]
    ratio = float(row["ratio_to_retraining"])
    if not np.isfinite(ratio):
        return ratio, _NOT_AVAILABLE, f"{row['wall_time_s']:.1f} s (no retraining time)"
    verdict = "cheap" if ratio <= max_ratio else "expensive"
    detail = (
        f"{100 * ratio:.1f}% of retraining "
        f"({row['wall_time_s']:.1f} s vs {row['oracle_wall_time_s']:.1f} s; one run, no CI)"
    )
    return ratio, verdict, detail


def settings_selected_on(
    method: str, tuning_record: Mapping[str, str] | None, task: str | None = None
) -> str:
    """How ``method``'s settings were chosen: its ``tuning_record`` entry (``<task>/<method>``,
    then the method, then the strategy before ``@``), else ``conf defaults (not tuned)``."""
    record = tuning_record or {}
    for key in (f"{task}/{method}", method, f"{task}/{method_base(method)}", method_base(method)):
        if key in record:
            return str(record[key])
    return "conf defaults (not tuned)"


def recorded_settings_sources(costs: pd.DataFrame | None) -> dict[str, str]:
    """``{"<task>/<method>": settings source}`` from a cost table's ``settings_source`` column
    (what each unlearning run recorded about the data that selected its settings)."""
    if costs is None or costs.empty or "settings_source" not in costs.columns:
        return {}
    rows = costs.dropna(subset=["settings_source"])
    return {
        f"{row.task}/{row.method}": str(row.settings_source)
        for row in rows.itertuples(index=False)
        if str(row.settings_source)
    }


VERDICT_COLUMNS = (
    "task", "method", "status", "forgot", "forgot_detail", "kept", "kept_detail", "private",
    "private_detail", "cost", "cost_ratio", "cost_detail", "val_forgot", "val_forgot_detail",
    "val_kept", "val_kept_detail", "selected_on", "sentence",
)  # fmt: skip


def verdicts(
    summary: pd.DataFrame,
    gaps: pd.DataFrame,
    criteria: Mapping[str, tuple[Sequence[tuple[str, str]], Sequence[tuple[str, str]]]],
    thresholds: VerdictParams,
    *,
    validation: Mapping[str, tuple[Sequence[tuple[str, str]], Sequence[tuple[str, str]]]]
    | None = None,
    membership: pd.DataFrame | None = None,
    costs: pd.DataFrame | None = None,
    expected_methods: Mapping[str, Sequence[str]] | None = None,
    original: str = "original",
    oracle: str = "oracle",
    method_order: Sequence[str] = (),
    tuning_record: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Per task and method (the oracle excepted), verdicts read off confidence intervals.

    - ``forgot`` / ``kept``: the paired gap to the oracle on every forget / retain criterion,
      judged by the equivalence rule (:data:`~med_unlearning.metrics.statistics.
      EQUIVALENCE_RULE`, see :func:`_judge`): ``yes``, ``not enough`` / ``too much``
      (forget), ``lost`` / ``better`` (retain), ``inconclusive``;
    - ``val_forgot`` / ``val_kept``: the same on the validation criteria (model selection);
    - ``private``: from the membership table (``yes``, ``exposed``, ``inconclusive``,
      ``uninformative`` when the attack's null check failed);
    - ``cost``: ``cheap`` when wall time / retraining time ≤ ``max_cost_ratio``.

    ``n/a`` (with a reason in the detail column) when an input is missing; expected methods
    with no results get a row reading ``missing`` — never an error.

    Args:
        summary: output of :func:`summarize` (lists each task's methods).
        gaps: output of :func:`oracle_gaps` (the paired intervals).
        criteria: per task ``(retain refs, forget refs)``, each ref ``(set, metric)``.
        thresholds: the tolerances.
        validation: per task, validation ``(retain refs, forget refs)``.
        membership: output of :func:`~med_unlearning.metrics.membership.membership_attacks`
            (``private``, ``private_detail`` used).
        costs: output of :func:`cost_ratios`.
        expected_methods: per task, the methods that should have run.
        original: the original model's name (it gets a verdict too, as a sanity row).
        oracle: the oracle's name.
        method_order: display order of strategies.
        tuning_record: per method, how its settings were selected.

    Returns:
        Columns :data:`VERDICT_COLUMNS`.
    """
    summary = validate_summary(summary)
    gap_rows = _gap_lookup(gaps)
    expected_methods = expected_methods or {}
    validation = validation or {}
    rows = []
    for task in dict.fromkeys([*summary["task"].unique(), *expected_methods]):
        retain_refs, forget_refs = criteria.get(task, ((), ()))
        val_retain, val_forget = validation.get(task, ((), ()))
        present = set(summary.loc[summary["task"] == task, "method"])
        methods = method_display_order(
            summary, task, original=original, oracle=oracle, method_order=method_order,
            extra=expected_methods.get(task, ()),
        )
        for method in methods:
            if method == oracle:
                continue
            if method not in present:
                row = {"task": task, "method": method, "status": _MISSING}
                for aspect in ("forgot", "kept", "private", "cost", "val_forgot", "val_kept"):
                    row[aspect] = _MISSING
                    row[f"{aspect}_detail"] = "the method has no results in this run"
                row["cost_ratio"] = math.nan
            else:
                forgot, forgot_detail = _judge(
                    gap_rows, task, method, forget_refs, thresholds, forgetting=True
                )
                kept, kept_detail = _judge(
                    gap_rows, task, method, retain_refs, thresholds, forgetting=False
                )
                val_forgot, val_forgot_detail = _judge(
                    gap_rows, task, method, val_forget, thresholds, forgetting=True
                )
                val_kept, val_kept_detail = _judge(
                    gap_rows, task, method, val_retain, thresholds, forgetting=False
                )
                private, private_detail = _privacy(membership, task, method)
                ratio, cost, cost_detail = _cost(costs, task, method, thresholds.max_cost_ratio)
                row = {
                    "task": task, "method": method, "status": "ran",
                    "forgot": forgot, "forgot_detail": forgot_detail,
                    "kept": kept, "kept_detail": kept_detail,
                    "private": private, "private_detail": private_detail,
                    "cost": cost, "cost_ratio": ratio, "cost_detail": cost_detail,
                    "val_forgot": val_forgot, "val_forgot_detail": val_forgot_detail,
                    "val_kept": val_kept, "val_kept_detail": val_kept_detail,
                }  # fmt: skip
            row["selected_on"] = settings_selected_on(method, tuning_record, task)
            row["sentence"] = verdict_sentence(row)
            rows.append(row)
    return pd.DataFrame(rows, columns=list(VERDICT_COLUMNS))


_VERDICT_PHRASES = {
    "forgot": {
        "yes": "forgot as much as the oracle (equivalent within tolerance)",
        "not enough": "did not forget enough (still better than the oracle on the forget data)",
        "too much": "forgot too much (worse than the oracle on the forget data: detectable)",
        "inconclusive": "forgetting inconclusive (interval too wide for the tolerance)",
    },
    "kept": {
        "yes": "kept the retain quality (equivalent to the oracle)",
        "better": "kept the retain quality (better than the oracle)",
        "lost": "lost retain quality",
        "inconclusive": "retain quality inconclusive",
    },
    "private": {
        "yes": "private (attack AUC equivalent to the oracle's)",
        "exposed": "exposed (attack AUC differs from the oracle's)",
        "inconclusive": "privacy inconclusive",
        "uninformative": "privacy uninformative (the attack fails its null check)",
    },
}


def verdict_sentence(row: Mapping[str, Any]) -> str:
    """One line in plain words, built only from the verdict values (and their details), e.g.
    ``nl_ft — forgot too much (…) — forget_train SSIM -0.020 [-0.030, -0.011] vs ±0.010:
    too much; …``."""
    if row.get("status") == _MISSING:
        return f"{row['method']} — missing: the method did not run (no results)."
    parts = []
    for aspect in ("forgot", "kept", "private", "cost"):
        value = str(row[aspect])
        phrase = _VERDICT_PHRASES.get(aspect, {}).get(value, f"{aspect}: {value}")
        parts.append(f"{phrase} — {row[f'{aspect}_detail']}")
    return f"{row['method']} — " + "; ".join(parts) + "."


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
        Columns ``task, method`` (empty when none), ``validation_distance``,
        ``validation_distance_ci_low``, ``validation_distance_ci_high``, ``candidates``
        (how many were eligible), ``reason``.
    """
    columns = ["task", "method", "validation_distance", "validation_distance_ci_low",
               "validation_distance_ci_high", "candidates", "reason"]  # fmt: skip
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
                             & ~table["val_forgot"].isin([_NOT_AVAILABLE])
                             & ~table["val_kept"].isin([_NOT_AVAILABLE])]  # fmt: skip
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
    return pd.DataFrame(rows, columns=columns)


# ---------------------------------------------------------------------------------------------
# Everything at once


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
