"""Method names in the results: the strategy a name stands for, and the display order.

A method is ``original``, ``oracle`` or a strategy run, possibly with a suffix for a sweep
point or seed repeat (``ft@10%``, ``noisy_label@e20``, ``nl_ft@seed1``); the part before
``@`` is its *base*. Every table and figure lists methods in one order: original, oracle,
then strategies (configured order, sweep points by their coordinate).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from med_unlearning.metrics.results_table import validate_summary

__all__ = [
    "method_base",
    "method_display_order",
    "method_name",
    "missing_methods",
    "order_methods",
]


def method_name(strategy: str, variant: str | None) -> str:
    """The ``method`` of a run in the results: the strategy, ``<strategy>@<variant>`` for
    sweep variants (the figures group sweep points by the name before ``@``)."""
    return strategy if not variant else f"{strategy}@{variant}"


def method_base(method: str) -> str:
    """The strategy a method string names: the part before ``@`` (``ft@10%`` → ``ft``)."""
    return str(method).split("@", 1)[0]


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
