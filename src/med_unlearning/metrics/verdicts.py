"""Verdicts on every method, read off confidence intervals of its gaps to the oracle.

Per task and method: ``forgot`` / ``kept`` (the equivalence rule of
:mod:`med_unlearning.metrics.statistics` on the paired gap to the oracle of each forget /
retain criterion, against the metric's tolerance), the same on the validation criteria,
``private`` (from the membership attack's table), ``cost`` (against the retraining time),
which data selected the method's settings, and one plain sentence built from those values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from med_unlearning.metrics.methods import method_base, method_display_order
from med_unlearning.metrics.results_table import validate_summary
from med_unlearning.metrics.statistics import equivalence
from med_unlearning.params.evaluation import VerdictParams
from med_unlearning.reporting.formatting import (
    MISSING,
    NOT_AVAILABLE,
    format_ci,
    format_value,
    metric_label,
)

__all__ = [
    "FAILING",
    "VERDICT_COLUMNS",
    "recorded_settings_sources",
    "settings_selected_on",
    "tolerance_for",
    "verdict_sentence",
    "verdicts",
]


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
        return NOT_AVAILABLE, "no criteria configured for this task"
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
        return NOT_AVAILABLE, "; ".join([*details, *unknown])
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
        return NOT_AVAILABLE, "no membership-inference results"
    rows = membership.loc[(membership["task"] == task) & (membership["method"] == method)]
    if rows.empty:
        return NOT_AVAILABLE, f"no membership-inference result for {method}"
    row = rows.iloc[0]
    verdict = str(row.get("private", NOT_AVAILABLE))
    detail = row.get("private_detail", "")
    detail = detail if isinstance(detail, str) else ""
    return verdict, detail


def _cost(
    costs: pd.DataFrame | None, task: str, method: str, max_ratio: float
) -> tuple[float, str, str]:
    if costs is None or costs.empty:
        return math.nan, NOT_AVAILABLE, "no wall time recorded"
    rows = costs.loc[(costs["task"] == task) & (costs["method"] == method)]
    if rows.empty:
        return math.nan, NOT_AVAILABLE, "no wall time recorded"
    row = rows.iloc[0]
    ratio = float(row["ratio_to_retraining"])
    if not np.isfinite(ratio):
        return ratio, NOT_AVAILABLE, f"{row['wall_time_s']:.1f} s (no retraining time)"
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
        summary: output of :func:`~med_unlearning.metrics.results_table.summarize` (it
            lists each task's methods).
        gaps: output of :func:`~med_unlearning.metrics.oracle.oracle_gaps` (paired intervals).
        criteria: per task ``(retain refs, forget refs)``, each ref ``(set, metric)``.
        thresholds: the tolerances.
        validation: per task, validation ``(retain refs, forget refs)``.
        membership: output of :func:`~med_unlearning.metrics.membership.membership_attacks`
            (``private``, ``private_detail`` used).
        costs: output of :func:`~med_unlearning.metrics.oracle.cost_ratios`.
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
                row = {"task": task, "method": method, "status": MISSING}
                for aspect in ("forgot", "kept", "private", "cost", "val_forgot", "val_kept"):
                    row[aspect] = MISSING
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
    if row.get("status") == MISSING:
        return f"{row['method']} — missing: the method did not run (no results)."
    parts = []
    for aspect in ("forgot", "kept", "private", "cost"):
        value = str(row[aspect])
        phrase = _VERDICT_PHRASES.get(aspect, {}).get(value, f"{aspect}: {value}")
        parts.append(f"{phrase} — {row[f'{aspect}_detail']}")
    return f"{row['method']} — " + "; ".join(parts) + "."
