"""The tidy results table: its contract, its validation and its per-group summary.

Every comparison works on the **tidy results table**, one row per task × method × set × item ×
metric, with columns:

- ``task``: ``recon`` or ``segmentation``;
- ``method``: ``original``, ``oracle`` or a strategy, possibly with a suffix for a sweep
  point (``ft@10%``, ``noisy_label@e20``); the part before ``@`` is the strategy's *base*
  (:mod:`med_unlearning.metrics.methods`);
- ``set``: recon ``retain_test`` (BTA), ``forget_test`` (KTA), ``forget_train`` (UA);
  segmentation ``retain``, ``forget`` (others are allowed);
- ``item_id``, ``metric``, ``value``, ``higher_is_better`` (bool per metric, see
  :mod:`med_unlearning.metrics.directions`);
- optional ``retain_fraction`` (fraction of the retain data in (0, 1], or NaN) and
  ``epochs`` (or NaN) for sweeps;

and on a **cost table** with ``task``, ``method``, ``wall_time_s``. :func:`summarize` turns
the first into the **summary** (mean, spread and bootstrap interval per task × method × set
× metric) that the report's tables and figures read; the lookups at the end index both by
``(task, method, set, metric)`` for the modules that compare methods.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from med_unlearning.metrics.directions import UnknownMetricDirection, higher_is_better
from med_unlearning.metrics.statistics import bootstrap_cis

__all__ = [
    "COST_COLUMNS",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "SUMMARY_COLUMNS",
    "SUMMARY_KEYS",
    "ResultsTableError",
    "item_series",
    "summarize",
    "summary_intervals",
    "summary_means",
    "validate_cost_table",
    "validate_results_table",
    "validate_summary",
]

#: Columns every tidy results table must have.
REQUIRED_COLUMNS = ("task", "method", "set", "item_id", "metric", "value", "higher_is_better")
#: Optional sweep columns, filled with NaN when absent.
OPTIONAL_COLUMNS = ("retain_fraction", "epochs")
#: Columns of the cost table.
COST_COLUMNS = ("task", "method", "wall_time_s")
#: The columns a summary row is keyed by.
SUMMARY_KEYS = ["task", "method", "set", "metric"]
#: Columns every summary must have (:func:`validate_summary`).
SUMMARY_COLUMNS = ("task", "method", "set", "metric", "higher_is_better", "mean", "std")


class ResultsTableError(ValueError):
    """A results or cost table breaks its contract; the message names the table and column."""


def validate_results_table(table: pd.DataFrame, name: str = "results") -> pd.DataFrame:
    """Check a tidy results table and return a normalised copy.

    Normalises: string ``task``/``method``/``set``/``metric``/``item_id``, float ``value``,
    bool ``higher_is_better`` (filled from
    :func:`~med_unlearning.metrics.directions.higher_is_better` when the column is absent),
    optional sweep columns as floats (NaN when absent).

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
    try:
        return higher_is_better(metric)
    except UnknownMetricDirection:
        raise ResultsTableError(
            f"{name}: no 'higher_is_better' column and metric {metric!r} has no known direction"
        ) from None


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


def validate_summary(summary: pd.DataFrame, name: str = "summary") -> pd.DataFrame:
    """Check a summary (from :func:`summarize`, possibly read back from CSV); normalised copy.

    Raises:
        ResultsTableError: naming ``name`` and the missing or malformed column.
    """
    if not isinstance(summary, pd.DataFrame):
        raise ResultsTableError(
            f"{name}: expected a pandas DataFrame, got {type(summary).__name__}"
        )
    missing = [column for column in SUMMARY_COLUMNS if column not in summary.columns]
    if missing:
        raise ResultsTableError(
            f"{name}: missing column(s) {missing}; expected the output of summarize() "
            f"({list(SUMMARY_COLUMNS)} …), got {list(summary.columns)}"
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
        over items (:func:`~med_unlearning.metrics.statistics.bootstrap_cis`; NaN for a
        single item), ``n`` counts finite values, ``n_seeds`` the seed repeats pooled per
        item (1 unless the table went through
        :func:`~med_unlearning.metrics.statistics.pool_seed_repeats`).
    """
    results = validate_results_table(results)
    if "n_seeds" not in results.columns:
        results["n_seeds"] = 1
    grouped = results.groupby(SUMMARY_KEYS, sort=True, dropna=False)
    summary = grouped.agg(
        higher_is_better=("higher_is_better", "first"),
        mean=("value", "mean"),
        std=("value", "std"),
        n=("value", "count"),
        n_seeds=("n_seeds", "max"),
        retain_fraction=("retain_fraction", "first"),
        epochs=("epochs", "first"),
    ).reset_index()
    values = results["value"].to_numpy(dtype=float)
    group_of_row = grouped.ngroup().to_numpy()
    rows_by_group = np.split(
        np.argsort(group_of_row, kind="stable"), np.cumsum(np.bincount(group_of_row))[:-1]
    )
    intervals = bootstrap_cis(
        [values[rows] for rows in rows_by_group],
        confidence=confidence, n_resamples=n_resamples, seed=seed,
    )  # fmt: skip
    summary["ci_low"] = [interval.low for interval in intervals]
    summary["ci_high"] = [interval.high for interval in intervals]
    summary["n"] = summary["n"].astype(int)
    summary["n_seeds"] = summary["n_seeds"].astype(int)
    columns = [
        "task", "method", "set", "metric", "higher_is_better", "mean", "std", "ci_low",
        "ci_high", "n", "n_seeds", "retain_fraction", "epochs",
    ]  # fmt: skip
    return summary.loc[:, columns]


Key = tuple[str, str, str, str]


def summary_means(summary: pd.DataFrame) -> dict[Key, tuple[float, float, bool]]:
    """``{(task, method, set, metric): (mean, std, higher_is_better)}`` of a summary (the
    cells the report's tables and the relative figures read)."""
    return {
        (str(row.task), str(row.method), str(row.set), str(row.metric)): (
            float(row.mean),
            float(row.std),
            bool(row.higher_is_better),
        )
        for row in summary.itertuples(index=False)
    }


def summary_intervals(summary: pd.DataFrame) -> dict[Key, tuple[float, float]]:
    """``{(task, method, set, metric): (ci_low, ci_high)}`` (NaN when the summary has none)."""
    has = "ci_low" in summary.columns and "ci_high" in summary.columns
    return {
        (str(row.task), str(row.method), str(row.set), str(row.metric)): (
            (float(row.ci_low), float(row.ci_high)) if has else (math.nan, math.nan)
        )
        for row in summary.itertuples(index=False)
    }


def item_series(results: pd.DataFrame) -> dict[Key, pd.Series]:
    """``{(task, method, set, metric): values indexed by item_id}`` of a tidy table (what
    paired comparisons join on)."""
    values, item_ids = results["value"], pd.Index(results["item_id"])
    return {
        (str(task), str(method), str(set_name), str(metric)): pd.Series(
            values.to_numpy()[rows], index=item_ids[rows], name="value"
        )
        for (task, method, set_name, metric), rows in results.groupby(
            SUMMARY_KEYS, sort=False
        ).indices.items()
    }
