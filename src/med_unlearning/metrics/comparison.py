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

from med_unlearning.params.evaluation import EvaluationParams, VerdictParams

__all__ = [
    "COST_COLUMNS",
    "DEFAULT_HIGHER_IS_BETTER",
    "REQUIRED_COLUMNS",
    "SET_LABELS",
    "ResultsTableError",
    "cost_ratios",
    "distance_to_oracle",
    "evaluate_study",
    "format_mean_std",
    "format_value",
    "metric_label",
    "method_base",
    "method_display_order",
    "missing_methods",
    "oracle_gaps",
    "order_methods",
    "relative_to_original",
    "set_label",
    "study_table",
    "summarize",
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


def set_label(set_name: str) -> str:
    """Display name of a set (``forget_train`` → ``forget train (UA)``)."""
    return SET_LABELS.get(set_name, set_name)


def _decimals(metric: str) -> int:
    if metric in _METRIC_DECIMALS:
        return _METRIC_DECIMALS[metric]
    return 3 if "dice" in metric else 4


def format_value(value: float, metric: str) -> str:
    """A metric value with the precision the studies print it with (PSNR .2f, SSIM .3f…)."""
    if value is None or not np.isfinite(value):
        return _NOT_AVAILABLE
    return f"{value:.{_decimals(metric)}f}"


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




def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std over items per task × method × set × metric.

    Returns:
        Columns ``task, method, set, metric, higher_is_better, mean, std, n,
        retain_fraction, epochs``; ``std`` is the sample standard deviation (ddof 1, NaN
        for a single item), ``n`` counts finite values (NaN values are left out).
    """
    results = validate_results_table(results)
    grouped = results.groupby(_SUMMARY_KEYS, sort=True, dropna=False)
    summary = grouped.agg(
        higher_is_better=("higher_is_better", "first"),
        mean=("value", "mean"),
        std=("value", "std"),
        n=("value", "count"),
        retain_fraction=("retain_fraction", "first"),
        epochs=("epochs", "first"),
    ).reset_index()
    summary["n"] = summary["n"].astype(int)
    return summary


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


def oracle_gaps(summary: pd.DataFrame, oracle: str = "oracle") -> pd.DataFrame:
    """Gap to the oracle of every method, set and metric: ``method mean − oracle mean``.

    The oracle's own rows are left out. Where the task has no oracle result for a set and
    metric, ``oracle_mean`` and the gaps are NaN.

    Returns:
        Columns ``task, method, set, metric, higher_is_better, mean, oracle_mean, gap,
        relative_gap`` (``gap / |oracle_mean|``) and ``better_than_oracle`` (the gap's sign
        read with the metric's direction; False when undefined).
    """
    summary = validate_summary(summary)
    reference = summary.loc[summary["method"] == oracle, ["task", "set", "metric", "mean"]]
    reference = reference.rename(columns={"mean": "oracle_mean"})
    gaps = summary.loc[summary["method"] != oracle].merge(
        reference, on=["task", "set", "metric"], how="left"
    )
    gaps["gap"] = gaps["mean"] - gaps["oracle_mean"]
    with np.errstate(divide="ignore", invalid="ignore"):
        gaps["relative_gap"] = gaps["gap"] / gaps["oracle_mean"].abs()
    signed = np.where(gaps["higher_is_better"], gaps["gap"], -gaps["gap"])
    gaps["better_than_oracle"] = np.nan_to_num(signed, nan=0.0) > 0
    columns = [
        "task", "method", "set", "metric", "higher_is_better",
        "mean", "oracle_mean", "gap", "relative_gap", "better_than_oracle",
    ]  # fmt: skip
    return gaps.loc[:, columns].reset_index(drop=True)


Pair = tuple[tuple[str, str], tuple[str, str]]


def distance_to_oracle(
    summary: pd.DataFrame,
    pairs: Mapping[str, Sequence[Pair]],
    oracle: str = "oracle",
) -> pd.DataFrame:
    """One number per method: ``sqrt((R − R*)² + (F − F*)²)`` as in the bilevel study.

    ``R``/``F`` are the method's mean retain/forget metric and ``R*``/``F*`` the oracle's.

    Args:
        summary: output of :func:`summarize`.
        pairs: per task, ``((retain_set, retain_metric), (forget_set, forget_metric))``
            pairs; e.g. recon ``(("retain_test", "ssim"), ("forget_train", "ssim"))`` —
            SSIM on the brain test volumes against SSIM on the forget (knee) *training*
            slices, the data the request names — and the same with PSNR; segmentation
            ``(("retain", "dice_mean"), ("forget", "dice_mean"))``.
        oracle: the oracle's method name.

    Returns:
        Columns ``task, distance`` (``"<retain metric>@<set> vs <forget metric>@<set>"``),
        ``method, retain, forget, oracle_retain, oracle_forget, distance_to_oracle``; NaN
        where an input is missing. The oracle itself is listed (distance 0).
    """
    summary = validate_summary(summary)
    values = _lookup(summary)
    rows = []
    for task, task_pairs in pairs.items():
        methods = method_display_order(summary, task, oracle=oracle)
        for (retain_set, retain_metric), (forget_set, forget_metric) in task_pairs:
            name = f"{retain_metric}@{retain_set} vs {forget_metric}@{forget_set}"
            oracle_retain = values.get((task, oracle, retain_set, retain_metric), (np.nan,))[0]
            oracle_forget = values.get((task, oracle, forget_set, forget_metric), (np.nan,))[0]
            for method in methods:
                retain = values.get((task, method, retain_set, retain_metric), (np.nan,))[0]
                forget = values.get((task, method, forget_set, forget_metric), (np.nan,))[0]
                rows.append(
                    {
                        "task": task,
                        "distance": name,
                        "method": method,
                        "retain": retain,
                        "forget": forget,
                        "oracle_retain": oracle_retain,
                        "oracle_forget": oracle_forget,
                        "distance_to_oracle": math.hypot(
                            retain - oracle_retain, forget - oracle_forget
                        ),
                    }
                )
    columns = [
        "task", "distance", "method", "retain", "forget",
        "oracle_retain", "oracle_forget", "distance_to_oracle",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


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
    cells read ``mean ± std``. With ``relative`` (from :func:`relative_to_original`) two
    more columns give the forget metric's decrease and the share of the retain metric kept,
    both against the original. Methods in ``expected_methods`` without results get a row
    whose cells read ``missing``.

    Returns:
        A DataFrame of strings with a ``method`` column first.
    """
    summary = validate_summary(summary)
    task_summary = summary.loc[summary["task"] == task]
    values = _lookup(task_summary)
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
                mean, std, _ = values.get((task, method, set_name, metric), (np.nan, np.nan, True))
                cells.append(format_mean_std(mean, std, metric))
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


def _tolerance(metric: str, oracle_value: float, thresholds: VerdictParams) -> float:
    tolerances = thresholds.tolerances
    if metric in tolerances:
        return tolerances[metric]
    if "dice" in metric:
        for alias in ("dice_mean", "mean_dice"):
            if alias in tolerances:
                return tolerances[alias]
    return thresholds.relative_tolerance * abs(oracle_value)


def _criterion_text(set_name: str, metric: str, value: float, oracle_value: float) -> str:
    return (
        f"{set_name} {metric_label(metric)} {format_value(value, metric)} "
        f"vs oracle {format_value(oracle_value, metric)}"
    )


def _judge(
    values: Mapping[tuple[str, str, str, str], tuple[float, float, bool]],
    task: str,
    method: str,
    oracle: str,
    refs: Sequence[tuple[str, str]],
    thresholds: VerdictParams,
    *,
    forgetting: bool,
) -> tuple[str, str]:
    """Verdict and detail text of ``kept`` (``forgetting=False``) or ``forgot``.

    With ``d = (method − oracle)`` read in the metric's direction (``d > 0``: better than the
    oracle): forgot when ``d <= tol`` for every ref ("too much" when some ``d < −overshoot ×
    tol``); kept when ``d >= −tol`` for every ref (better than the oracle counts as kept).
    """
    if not refs:
        return _NOT_AVAILABLE, "no criteria configured for this task"
    details, passes, overshoot, unknown = [], [], False, []
    for set_name, metric in refs:
        value = values.get((task, method, set_name, metric), (math.nan, math.nan, True))
        reference = values.get((task, oracle, set_name, metric), (math.nan, math.nan, True))
        if not np.isfinite(value[0]) or not np.isfinite(reference[0]):
            who = "oracle" if not np.isfinite(reference[0]) else method
            unknown.append(f"no {who} result for {set_name} {metric_label(metric)}")
            continue
        higher_is_better = value[2]
        difference = value[0] - reference[0]
        directed = difference if higher_is_better else -difference
        tol = _tolerance(metric, reference[0], thresholds)
        details.append(_criterion_text(set_name, metric, value[0], reference[0]))
        if forgetting:
            passes.append(directed <= tol)
            overshoot |= directed < -thresholds.overshoot_factor * tol
        else:
            passes.append(directed >= -tol)
    if unknown:
        return _NOT_AVAILABLE, "; ".join([*details, *unknown])
    if not all(passes):
        return "no", ", ".join(details)
    if forgetting and overshoot:
        return "too much", ", ".join(details) + " (far below the oracle: detectable)"
    return "yes", ", ".join(details)


def _privacy(
    membership: pd.DataFrame | None, task: str, method: str, oracle: str, tolerance: float
) -> tuple[str, str]:
    if membership is None or membership.empty:
        return _NOT_AVAILABLE, "no membership-inference results"
    rows = membership.loc[membership["task"] == task].set_index("method")
    if method not in rows.index or oracle not in rows.index:
        who = method if method not in rows.index else oracle
        return _NOT_AVAILABLE, f"no membership-inference result for {who}"
    accuracy = float(rows.at[method, "accuracy_mean"])
    reference = float(rows.at[oracle, "accuracy_mean"])
    if not np.isfinite([accuracy, reference]).all():
        note = rows.at[method, "note"] if "note" in rows.columns else ""
        note = note if isinstance(note, str) else ""  # NaN when read back from CSV
        reason = f" ({note})" if note else ""
        return _NOT_AVAILABLE, f"attack not computable{reason}"
    verdict = "yes" if abs(accuracy - reference) <= tolerance else "no"
    return verdict, f"attack accuracy {accuracy:.2f} vs oracle {reference:.2f}"


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
        f"({row['wall_time_s']:.1f} s vs {row['oracle_wall_time_s']:.1f} s)"
    )
    return ratio, verdict, detail


def verdicts(
    summary: pd.DataFrame,
    criteria: Mapping[str, tuple[Sequence[tuple[str, str]], Sequence[tuple[str, str]]]],
    thresholds: VerdictParams,
    *,
    membership: pd.DataFrame | None = None,
    costs: pd.DataFrame | None = None,
    expected_methods: Mapping[str, Sequence[str]] | None = None,
    original: str = "original",
    oracle: str = "oracle",
    method_order: Sequence[str] = (),
) -> pd.DataFrame:
    """Per task and method (the oracle excepted), plain verdicts against the oracle.

    - ``forgot``: every forget metric is at or below the oracle's within its tolerance
      (direction-aware); ``too much`` when far below (``overshoot_factor`` tolerances);
    - ``kept``: every retain metric is no worse than the oracle's by more than its tolerance;
    - ``private``: attack accuracy within ``privacy_tolerance`` of the oracle's;
    - ``cost``: ``cheap`` when wall time / retraining time ≤ ``max_cost_ratio``.

    Values are ``yes``/``no`` (``n/a`` with a reason in the detail column when an input is
    missing). Expected methods with no results get a row with status and verdicts
    ``missing`` — never an error.

    Args:
        summary: output of :func:`summarize`.
        criteria: per task ``(retain refs, forget refs)``, each ref ``(set, metric)``.
        thresholds: the tolerances.
        membership: output of :func:`~med_unlearning.metrics.membership.membership_attacks`
            (``task, method, accuracy_mean, note`` used).
        costs: output of :func:`cost_ratios`.
        expected_methods: per task, the methods that should have run.
        original: the original model's name (it gets a verdict too, as a sanity row).
        oracle: the oracle's name.
        method_order: display order of strategies.

    Returns:
        Columns ``task, method, status, forgot, forgot_detail, kept, kept_detail, private,
        private_detail, cost, cost_ratio, cost_detail, sentence``.
    """
    summary = validate_summary(summary)
    values = _lookup(summary)
    expected_methods = expected_methods or {}
    rows = []
    for task in dict.fromkeys([*summary["task"].unique(), *expected_methods]):
        retain_refs, forget_refs = criteria.get(task, ((), ()))
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
                for aspect in ("forgot", "kept", "private", "cost"):
                    row[aspect] = _MISSING
                    row[f"{aspect}_detail"] = "the method has no results in this run"
                row["cost_ratio"] = math.nan
            else:
                forgot, forgot_detail = _judge(
                    values, task, method, oracle, forget_refs, thresholds, forgetting=True
                )
                kept, kept_detail = _judge(
                    values, task, method, oracle, retain_refs, thresholds, forgetting=False
                )
                private, private_detail = _privacy(
                    membership, task, method, oracle, thresholds.privacy_tolerance
                )
                ratio, cost, cost_detail = _cost(costs, task, method, thresholds.max_cost_ratio)
                row = {
                    "task": task,
                    "method": method,
                    "status": "ran",
                    "forgot": forgot,
                    "forgot_detail": forgot_detail,
                    "kept": kept,
                    "kept_detail": kept_detail,
                    "private": private,
                    "private_detail": private_detail,
                    "cost": cost,
                    "cost_ratio": ratio,
                    "cost_detail": cost_detail,
                }
            row["sentence"] = verdict_sentence(row)
            rows.append(row)
    columns = [
        "task", "method", "status", "forgot", "forgot_detail", "kept", "kept_detail",
        "private", "private_detail", "cost", "cost_ratio", "cost_detail", "sentence",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def verdict_sentence(row: Mapping[str, Any]) -> str:
    """One line in plain words, e.g. ``nl_ft — forgot: yes — forget_train SSIM 0.875 vs
    oracle 0.892; kept: …; private: …; cost: cheap — 4.4% of retraining (…)``."""
    if row.get("status") == _MISSING:
        return f"{row['method']} — missing: the method did not run (no results)."
    parts = [
        f"{aspect}: {row[aspect]} — {row[f'{aspect}_detail']}"
        for aspect in ("forgot", "kept", "private", "cost")
    ]
    return f"{row['method']} — " + "; ".join(parts) + "."


# ---------------------------------------------------------------------------------------------
# Everything at once


def _criteria(params: EvaluationParams) -> dict[str, tuple[list[tuple[str, str]], ...]]:
    return {
        task: ([ref.as_tuple() for ref in spec.retain], [ref.as_tuple() for ref in spec.forget])
        for task, spec in params.tasks.items()
    }


def evaluate_study(
    results: pd.DataFrame,
    params: EvaluationParams,
    costs: pd.DataFrame | None = None,
    membership: pd.DataFrame | None = None,
    expected_methods: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, pd.DataFrame]:
    """Every comparison table of a study from the tidy results (one call per evaluation node).

    Args:
        results: the tidy results table (all tasks).
        params: the ``evaluation`` parameters.
        costs: the cost table (``task, method, wall_time_s``), if recorded.
        membership: the membership-inference table, if computed.
        expected_methods: per task, the methods that should be present (missing ones are
            reported as ``missing``).

    Returns:
        ``summary`` (:func:`summarize`), ``oracle_gaps``, ``distances``, ``relative``
        (headline figures for every task, from its first retain/forget pair), ``costs``
        (:func:`cost_ratios`; empty when no costs) and ``verdicts``.
    """
    summary = summarize(results)
    criteria = _criteria(params)
    pairs = {task: list(zip(*criteria[task], strict=True)) for task in criteria}
    cost_table = (
        cost_ratios(costs, params.oracle_method)
        if costs is not None and not costs.empty
        else pd.DataFrame(
            columns=[*COST_COLUMNS, "oracle_wall_time_s", "ratio_to_retraining"]
        )
    )
    return {
        "summary": summary,
        "oracle_gaps": oracle_gaps(summary, params.oracle_method),
        "distances": distance_to_oracle(summary, pairs, params.oracle_method),
        "relative": relative_to_original(
            summary, {task: task_pairs[0] for task, task_pairs in pairs.items()},
            params.original_method,
        ),
        "costs": cost_table,
        "verdicts": verdicts(
            summary,
            criteria,
            params.verdicts,
            membership=membership,
            costs=cost_table,
            expected_methods=expected_methods,
            original=params.original_method,
            oracle=params.oracle_method,
            method_order=params.method_order,
        ),
    }
