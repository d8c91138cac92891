"""Is there anything to forget? Generalisation gaps and the per-label view of forgetting.

Unlearning is only measurable on data the original model has *memorised*: segmented better
than data it never saw. Two tables answer that for a task whose sets are ``retain`` /
``forget`` (training subjects), ``test`` (unseen whole subjects) and ``forget_test`` (unseen
whole subjects of the forget request's kind), the segmentation study's layout:

- :func:`generalisation_gaps`: per reference model (original, oracle, reference), the
  mean Dice on the subjects it trained on minus that on unseen subjects, the forget
  subjects' Dice minus the unseen subjects', and for the original the paired gap to the
  oracle on the forget subjects (what there is to forget), each with a bootstrap interval
  over subjects (unpaired for two different subject sets, paired for one set and two
  models).
- :func:`memorisation_warnings`: plain sentences for the report when a request has
  nothing (measurable) to forget.
- :func:`forget_label_changes`: per method and label, the paired Dice change on the forget
  subjects relative to the original, labels ordered by what there is to forget (original −
  oracle, largest first), so a lesion request shows its lesion label first.

With a single forget subject there is no interval over subjects: the figures are point
values (``n`` = 1, interval NaN) and the warnings say so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from med_unlearning.metrics.statistics import (
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    bootstrap_statistic,
    paired_differences,
    pool_seed_repeats,
)

__all__ = [
    "GAP_COLUMNS",
    "LABEL_CHANGE_COLUMNS",
    "forget_label_changes",
    "generalisation_gaps",
    "memorisation_warnings",
]

#: Columns of :func:`generalisation_gaps`.
GAP_COLUMNS = (
    "task", "model", "comparison", "metric", "set_a", "set_b", "n_a", "n_b", "mean_a",
    "mean_b", "gap", "low", "high", "paired",
)  # fmt: skip

#: Columns of :func:`forget_label_changes`.
LABEL_CHANGE_COLUMNS = (
    "task", "method", "label", "to_forget", "original", "value", "change", "low", "high", "n",
)  # fmt: skip

#: Comparison names of :func:`generalisation_gaps`.
TRAINED_VS_UNSEEN = "trained − unseen"
FORGET_VS_UNSEEN = "forget − unseen"
FORGET_VS_ORACLE = "forget: original − oracle"


def _item_values(results: pd.DataFrame, task: str, method: str, sets: Sequence[str],
                 metric: str) -> pd.Series:
    rows = results[
        (results["task"] == task) & (results["method"] == method)
        & results["set"].isin(list(sets)) & (results["metric"] == metric)
    ]  # fmt: skip
    values = pd.to_numeric(rows["value"], errors="coerce")
    return pd.Series(values.to_numpy(), index=rows["item_id"].astype(str).to_numpy())


def _difference_of_means(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def _row(task: str, model: str, comparison: str, metric: str, set_a: str, set_b: str,
         a: pd.Series, b: pd.Series, interval, paired: bool) -> dict[str, object]:
    return {
        "task": task, "model": model, "comparison": comparison, "metric": metric,
        "set_a": set_a, "set_b": set_b, "n_a": int(a.notna().sum()), "n_b": int(b.notna().sum()),
        "mean_a": float(a.mean()) if len(a) else math.nan,
        "mean_b": float(b.mean()) if len(b) else math.nan,
        "gap": interval.estimate, "low": interval.low, "high": interval.high, "paired": paired,
    }  # fmt: skip


def generalisation_gaps(
    results: pd.DataFrame,
    *,
    task: str = "segmentation",
    metric: str = "dice_mean",
    original: str = "original",
    oracle: str = "oracle",
    references: Sequence[str] = ("reference",),
    unseen_set: str = "test",
    forget_unseen_set: str = "forget_test",
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> pd.DataFrame:
    """Trained-vs-unseen and forget-vs-unseen gaps of the reference models, with intervals.

    Args:
        results: the tidy results table (``task``, ``method``, ``set``, ``item_id``,
            ``metric``, ``value``).
        task: the task (its sets must be ``retain``, ``forget`` and ``unseen_set``).
        metric: higher-is-better metric (Dice).
        original: the original model (trained on ``retain`` + ``forget``).
        oracle: the retrained oracle (trained on ``retain``).
        references: further models trained like the oracle (seed noise floor).
        unseen_set: whole subjects no model trained on, of the retained kinds.
        forget_unseen_set: whole subjects no model trained on of the forget request's kind
            (e.g. the same scanner's): the forget subjects are compared with these, and the
            original's training subjects with both unseen sets, so that a site or anatomy
            effect is not read as memorisation; when it has no subjects, ``unseen_set``
            alone stands in (and the comparison mixes kinds).
        confidence, n_resamples, seed: the bootstrap.

    Returns:
        One row per model and comparison (:data:`GAP_COLUMNS`): ``gap`` = mean of set a −
        mean of set b (unpaired bootstrap over both sets' subjects), or for
        ``forget: original − oracle`` the paired mean difference on the forget subjects.
        Empty when the task has no unseen subjects.
    """
    rows: list[dict[str, object]] = []
    options = {"confidence": confidence, "n_resamples": n_resamples, "seed": seed}
    present = set(results.loc[results["task"] == task, "method"].astype(str))
    for model in [original, oracle, *references]:
        if model not in present:
            continue
        unseen = _item_values(results, task, model, [unseen_set], metric)
        if unseen.dropna().empty:
            continue
        has_forget_kind = not _item_values(
            results, task, model, [forget_unseen_set], metric
        ).dropna().empty
        forget_unseen = [forget_unseen_set] if has_forget_kind else [unseen_set]
        trained_sets = ["retain", "forget"] if model == original else ["retain"]
        trained_unseen = (
            [unseen_set, forget_unseen_set] if model == original and has_forget_kind
            else [unseen_set]
        )  # fmt: skip
        for comparison, sets_a, sets_b in (
            (TRAINED_VS_UNSEEN, trained_sets, trained_unseen),
            (FORGET_VS_UNSEEN, ["forget"], forget_unseen),
        ):
            values = _item_values(results, task, model, sets_a, metric)
            baseline = _item_values(results, task, model, sets_b, metric)
            if values.dropna().empty:
                continue
            interval = bootstrap_statistic([values.to_numpy(), baseline.to_numpy()],
                                           _difference_of_means, **options)
            rows.append(_row(task, model, comparison, metric, "+".join(sets_a),
                             "+".join(sets_b), values, baseline, interval, paired=False))
    if {original, oracle} <= present:
        forget_original = _item_values(results, task, original, ["forget"], metric)
        forget_oracle = _item_values(results, task, oracle, ["forget"], metric)
        if not forget_original.dropna().empty and not forget_oracle.dropna().empty:
            interval, _ = paired_differences(forget_original, forget_oracle, **options)
            rows.append(_row(task, original, FORGET_VS_ORACLE, metric, "forget", "forget",
                             forget_original, forget_oracle, interval, paired=True))
    return pd.DataFrame(rows, columns=list(GAP_COLUMNS))


def _interval_text(row: Mapping[str, object]) -> str:
    low, high = float(row["low"]), float(row["high"])  # type: ignore[arg-type]
    gap = float(row["gap"])  # type: ignore[arg-type]
    if math.isnan(low):
        return f"{gap:+.3f} (one subject: no interval)"
    return f"{gap:+.3f} [{low:+.3f}, {high:+.3f}]"


def memorisation_warnings(
    gaps: pd.DataFrame, *, task: str = "segmentation", original: str = "original",
    tolerance: float = 0.05,
) -> list[str]:
    """Sentences for the report when forgetting is not measurable on the task's request.

    Forgetting is measurable when the original segments its forget subjects (a) better
    than the oracle does, by more than ``tolerance`` with the whole interval above it, and
    (b) better than unseen subjects, the interval excluding zero. A request that fails (a)
    has nothing to forget: any strategy's "forgetting" is indistinguishable from damage.

    Returns:
        Zero or more sentences (empty: forgetting is measurable).
    """
    rows = gaps[(gaps["task"] == task) & (gaps["model"] == original)]
    by_comparison = {str(row["comparison"]): row for _, row in rows.iterrows()}
    warnings: list[str] = []
    oracle_gap = by_comparison.get(FORGET_VS_ORACLE)
    if oracle_gap is not None:
        low, gap = float(oracle_gap["low"]), float(oracle_gap["gap"])
        evidence = low if not math.isnan(low) else gap
        if evidence <= tolerance:
            warnings.append(
                f"Nothing measurable to forget on this request: the oracle, which never saw "
                f"the forget subject(s), segments them about as well as the original (original "
                f"− oracle on the forget subjects {_interval_text(oracle_gap)} Dice; it must "
                f"exceed the tolerance {tolerance:g} with its whole interval). Any strategy's "
                "'forgetting' here cannot be told from damage."
            )
        elif math.isnan(low):
            warnings.append(
                f"One forget subject: original − oracle {_interval_text(oracle_gap)} Dice has "
                "no interval over subjects, so forgetting can be shown only per label and "
                "slice, not with a subject-level interval."
            )
    unseen_gap = by_comparison.get(FORGET_VS_UNSEEN)
    if unseen_gap is not None:
        low = float(unseen_gap["low"])
        if math.isnan(low) or low <= 0:
            warnings.append(
                f"The original does not measurably segment its forget subject(s) better than "
                f"unseen subjects (forget − unseen Dice {_interval_text(unseen_gap)}): no "
                "memorisation of the forget data is shown."
            )
    trained_gap = by_comparison.get(TRAINED_VS_UNSEEN)
    if trained_gap is not None and not float(trained_gap["low"]) > 0:
        warnings.append(
            f"The original shows no generalisation gap (trained − unseen Dice "
            f"{_interval_text(trained_gap)}): it has not memorised its training subjects, "
            "so unlearning any of them is hard to measure."
        )
    return warnings


def forget_label_changes(
    results: pd.DataFrame,
    *,
    task: str = "segmentation",
    original: str = "original",
    oracle: str = "oracle",
    forget_set: str = "forget",
    label_prefix: str = "dice_",
    exclude: Sequence[str] = ("dice_mean",),
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> pd.DataFrame:
    """Per method and label: the Dice change on the forget subjects relative to the original.

    Seed repeats are pooled (mean over seeds per subject) under the strategy's name.

    Returns:
        :data:`LABEL_CHANGE_COLUMNS`: ``change`` = mean over forget subjects of method −
        original (paired, bootstrap interval; NaN interval with one subject); ``to_forget``
        = original − oracle for the label (what there is to forget). Labels are ordered by
        ``to_forget``, largest first; methods in their order of appearance (oracle first).
    """
    options = {"confidence": confidence, "n_resamples": n_resamples, "seed": seed}
    table = pool_seed_repeats(results[results["task"] == task])
    table = table[table["set"] == forget_set]
    metrics = [
        str(m) for m in table["metric"].drop_duplicates()
        if str(m).startswith(label_prefix) and str(m) not in set(exclude)
    ]  # fmt: skip
    methods = [str(m) for m in table["method"].drop_duplicates() if str(m) != original]
    if original not in set(table["method"].astype(str)) or not metrics:
        return pd.DataFrame(columns=list(LABEL_CHANGE_COLUMNS))
    if oracle in methods:
        methods = [oracle, *(m for m in methods if m != oracle)]
    to_forget: dict[str, float] = {}
    for metric in metrics:
        base = _item_values(table, task, original, [forget_set], metric)
        ref = _item_values(table, task, oracle, [forget_set], metric)
        joined = pd.concat([base, ref], axis=1, join="inner").dropna()
        to_forget[metric] = (
            float((joined.iloc[:, 0] - joined.iloc[:, 1]).mean()) if len(joined) else math.nan
        )
    order = sorted(metrics, key=lambda m: (math.isnan(to_forget[m]), -np.nan_to_num(to_forget[m])))
    rows = []
    for method in methods:
        for metric in order:
            base = _item_values(table, task, original, [forget_set], metric)
            values = _item_values(table, task, method, [forget_set], metric)
            if values.dropna().empty:
                continue
            interval, differences = paired_differences(values, base, **options)
            rows.append({
                "task": task, "method": method, "label": metric[len(label_prefix):],
                "to_forget": to_forget[metric], "original": float(base.mean()),
                "value": float(values.mean()), "change": interval.estimate,
                "low": interval.low, "high": interval.high, "n": len(differences),
            })  # fmt: skip
    return pd.DataFrame(rows, columns=list(LABEL_CHANGE_COLUMNS))
