"""How the report writes names and numbers: set and metric labels, values, intervals.

One place for the display conventions (``forget_train`` → ``forget train (UA)``, PSNR with
2 decimals, SSIM with 3, ``mean [low, high]``), so that a table cell, a verdict detail and a
figure axis write the same quantity the same way. Pure functions of strings and floats.
"""

from __future__ import annotations

import numpy as np

from med_unlearning.metrics.statistics import format_interval

__all__ = [
    "MISSING",
    "NOT_AVAILABLE",
    "SET_LABELS",
    "TASK_SET_LABELS",
    "format_ci",
    "format_mean_std",
    "format_value",
    "metric_label",
    "set_label",
]

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
#: What a cell reads when its value is undefined.
NOT_AVAILABLE = "n/a"
#: What a cell (or a verdict) of a method that did not run reads.
MISSING = "missing"


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
        return NOT_AVAILABLE
    return f"{value:.{_decimals(metric)}f}"


def format_ci(mean: float, low: float, high: float, metric: str, signed: bool = False) -> str:
    """``mean [low, high]`` with the metric's precision (``mean (no CI)`` without an
    interval, ``n/a`` without a mean)."""
    return format_interval(mean, low, high, _decimals(metric), signed=signed)


def format_mean_std(mean: float, std: float, metric: str) -> str:
    """``mean ± std`` (just the mean when the std is undefined, e.g. a single item)."""
    if mean is None or not np.isfinite(mean):
        return NOT_AVAILABLE
    if std is None or not np.isfinite(std):
        return format_value(mean, metric)
    return f"{format_value(mean, metric)} ± {format_value(std, metric)}"
