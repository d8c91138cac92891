"""The attack's features: per-item (or per-slice) losses of one model on one set.

Higher-is-better metrics become losses (``1 − SSIM``, ``1 − Dice``, ``−PSNR``),
lower-is-better ones (NMSE, MAE, cross-entropy, soft Dice loss) are used as they are; items
are volumes / subjects (the tidy results table) or their 2-D slices (the per-slice table).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from med_unlearning.metrics.scoring import SLICE_COLUMNS

__all__ = [
    "GRANULARITIES",
    "as_loss",
    "features_of",
    "granularity_of",
    "loss_features",
    "slice_loss_features",
]

#: The attack's item granularities.
GRANULARITIES = ("slice", "volume")


#: Metrics bounded by 1, whose loss is ``1 − value`` (other higher-is-better ones: ``−value``).
_UNIT_BOUNDED = ("ssim", "dice")


def as_loss(values: pd.Series, metric: str, higher_is_better: bool) -> pd.Series:
    """Scores as losses: ``1 − value`` for SSIM/Dice, ``−value`` for other higher-is-better
    metrics, lower-is-better ones as they are."""
    if not higher_is_better:
        return values
    if any(key in metric for key in _UNIT_BOUNDED):
        return 1.0 - values
    return -values


def loss_features(
    results: pd.DataFrame,
    task: str,
    method: str,
    set_name: str,
    metrics: Sequence[str],
) -> pd.DataFrame:
    """Per-item loss features of one model on one set, from the tidy results table.

    Higher-is-better metrics become losses: ``1 − value`` for SSIM/Dice, ``−value`` for the
    others (e.g. PSNR); lower-is-better ones (NMSE, MAE) are used as they are. Standardised
    logistic regression is unaffected by such affine changes; they only make the features
    read as losses.

    Returns:
        A DataFrame indexed by ``item_id`` with one column per metric (in ``metrics`` order;
        NaN where an item lacks a metric). Empty when the model or set has no rows.
    """
    columns = _loss_columns(results, task, method, set_name, metrics, ["item_id"])
    frame = pd.DataFrame(columns).reindex(columns=list(metrics))
    frame.index.name = "item_id"
    return frame.sort_index()


def _loss_columns(
    table: pd.DataFrame,
    task: str,
    method: str,
    set_name: str,
    metrics: Sequence[str],
    index: list[str],
) -> dict[str, pd.Series]:
    """``{metric: loss series indexed by index}`` of one model on one set (metrics it has)."""
    rows = table.loc[
        (table["task"] == task)
        & (table["method"] == method)
        & (table["set"] == set_name)
        & (table["metric"].isin(list(metrics)))
    ]
    columns = {}
    for metric in metrics:
        metric_rows = rows.loc[rows["metric"] == metric]
        if metric_rows.empty:
            continue
        direction = bool(metric_rows["higher_is_better"].iloc[0])
        series = metric_rows.set_index(index)["value"].astype(float)
        columns[metric] = as_loss(series, metric, direction)
    return columns


def slice_loss_features(
    slices: pd.DataFrame,
    task: str,
    method: str,
    set_name: str,
    metrics: Sequence[str],
) -> pd.DataFrame:
    """Per-slice loss features of one model on one set, from the per-slice table.

    The same loss conventions as :func:`loss_features` (``1 − SSIM``; cross-entropy, soft
    Dice loss, NMSE as they are).

    Args:
        slices: the per-slice table (:data:`~med_unlearning.metrics.scoring.SLICE_COLUMNS`).
        task: the task.
        method: the model.
        set_name: the evaluation set.
        metrics: per-slice metric names.

    Returns:
        A DataFrame indexed by ``(item_id, slice)`` with one column per metric (in
        ``metrics`` order; NaN where a slice lacks a metric). Empty when nothing matches.
    """
    columns = _loss_columns(slices, task, method, set_name, metrics, ["item_id", "slice"])
    if not columns:
        index = pd.MultiIndex.from_arrays([[], []], names=["item_id", "slice"])
        return pd.DataFrame(index=index, columns=list(metrics), dtype=float)
    frame = pd.DataFrame(columns).reindex(columns=list(metrics))
    frame.index.names = ["item_id", "slice"]
    return frame.sort_index()


def granularity_of(granularity: str | Mapping[str, str], task: str) -> str:
    """The attack granularity of ``task`` (one for all tasks, or per task; ``volume`` when
    the task is not named).

    Raises:
        ValueError: not one of :data:`GRANULARITIES`.
    """
    value = granularity if isinstance(granularity, str) else granularity.get(task, "volume")
    if value not in GRANULARITIES:
        raise ValueError(
            f"membership attack granularity of {task!r} must be one of {list(GRANULARITIES)}, "
            f"got {value!r}"
        )
    return value


def features_of(
    level: str, results: pd.DataFrame, slices: pd.DataFrame | None, task: str, method: str,
    set_name: str, metrics: Sequence[str],
) -> pd.DataFrame:
    """Loss features indexed by ``(item_id, slice)`` (slice 0 for per-volume items)."""
    if level == "slice":
        table = pd.DataFrame(columns=list(SLICE_COLUMNS)) if slices is None else slices
        return slice_loss_features(table, task, method, set_name, metrics)
    frame = loss_features(results, task, method, set_name, metrics)
    frame.index = pd.MultiIndex.from_arrays(
        [frame.index.astype(str), np.zeros(len(frame), dtype=int)], names=["item_id", "slice"]
    )
    return frame
