"""Selected settings: applying them to the unlearning parameters and saying where they came from.

The ``tuning`` pipeline writes a selection document::

    {"objective": "oracle", "seed": 42,
     "tasks": {"recon": {"nl_ft": {"params": {"epochs": 6, ...}, "objective_value": 0.41,
                                    "trial": 3, "n_trials": 8, "selected_on": "..."}}}}

The unlearning pipeline applies it over the conf values when present (``tuning.use_selected``),
and every run records which data selected its settings (:func:`settings_source`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["NOT_TUNED", "apply_selection", "selected_params", "settings_source"]

#: What a run's settings were chosen on when no selection covers them.
NOT_TUNED = "conf values, not selected on validation data (no tuning run covers this strategy)"


def selected_params(selection: Mapping[str, Any], task: str, strategy: str) -> dict[str, Any]:
    """The selected parameters of ``task``/``strategy`` (``{}`` when not selected)."""
    entry = ((selection or {}).get("tasks") or {}).get(task, {}).get(strategy) or {}
    return dict(entry.get("params") or {})


def apply_selection(
    unlearning: Mapping[str, Any], selection: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The raw ``unlearning`` parameters with every selected value written over its block.

    Only the tuned keys change; a strategy without a block gets one. ``unlearning`` itself is
    left untouched.
    """
    result = copy.deepcopy(dict(unlearning))
    for task, strategies in ((selection or {}).get("tasks") or {}).items():
        block = result.setdefault(task, {})
        blocks = block.setdefault("strategies", {}) if isinstance(block, dict) else None
        if blocks is None:
            continue
        for strategy in strategies:
            values = selected_params(selection or {}, task, strategy)
            blocks[strategy] = {**(blocks.get(strategy) or {}), **values}
    return result


def _same(value: Any, other: Any) -> bool:
    if isinstance(value, float) or isinstance(other, float):
        try:
            return math.isclose(float(value), float(other), rel_tol=1e-9, abs_tol=1e-12)
        except (TypeError, ValueError):
            return False
    return bool(value == other)


def _describe(source: str, selection: Mapping[str, Any], entry: Mapping[str, Any]) -> str:
    parts = [source, f"objective {selection.get('objective', '?')}"]
    if entry.get("n_trials") is not None:
        parts.append(f"{entry['n_trials']} Optuna TPE trials (seed {selection.get('seed')})")
    if entry.get("selected_on"):
        parts.append(f"on {entry['selected_on']}")
    return ", ".join(parts)


def settings_source(
    task: str,
    strategy: str,
    block: Mapping[str, Any],
    selection: Mapping[str, Any] | None,
    record: Mapping[str, Any] | None,
) -> str:
    """Which data selected a run's settings, in words (for its erasure record and the report).

    Args:
        block: the strategy's parameters as the run used them.
        selection: the applied ``tuning.selected`` document (``{}`` when none).
        record: the recorded tuning run the shipped defaults come from (``tuning_record``).
    """
    for source, document in (("tuning run", selection), ("recorded tuning run", record)):
        entry = (((document or {}).get("tasks") or {}).get(task) or {}).get(strategy)
        if not entry:
            continue
        values = dict(entry.get("params") or {})
        if values and all(_same(block.get(key), value) for key, value in values.items()):
            return _describe(source, document or {}, entry)
    return NOT_TUNED
