"""The study-level attack: every model of every task, calibrated, with its null check.

:func:`membership_attacks` attacks every model of a task on the same items with the same
folds and bootstrap draws, calibrates by the reference model's losses, checks the attack on
the models that never saw the members, and reads the privacy verdict off the paired AUC
difference to the oracle; :func:`membership_attacks_from_params` runs it with the
``evaluation`` parameters, and :func:`null_checks` extracts the null models' rows.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from med_unlearning.metrics.membership.bootstrap import attack_metrics
from med_unlearning.metrics.membership.features import features_of, granularity_of
from med_unlearning.metrics.membership.scorers import member_scores
from med_unlearning.metrics.results_table import validate_results_table
from med_unlearning.metrics.statistics import equivalence
from med_unlearning.params.evaluation import AttackFeatureParams, EvaluationParams

__all__ = [
    "MEMBERSHIP_COLUMNS",
    "NULL_COLUMNS",
    "NULL_ROLE",
    "membership_attacks",
    "membership_attacks_from_params",
    "nonmember_set_of",
    "null_checks",
]

logger = logging.getLogger(__name__)

#: Columns of the table :func:`membership_attacks` returns.
MEMBERSHIP_COLUMNS = (
    "task", "method", "role", "member_set", "nonmember_set", "granularity", "features",
    "calibration", "auc", "auc_ci_low", "auc_ci_high", "fpr", "tpr_at_fpr", "tpr_ci_low",
    "tpr_ci_high", "auc_minus_oracle", "auc_minus_oracle_ci_low", "auc_minus_oracle_ci_high",
    "uncalibrated_auc", "uncalibrated_auc_ci_low", "uncalibrated_auc_ci_high",
    "uncalibrated_tpr_at_fpr", "n_members", "n_nonmembers", "n_member_volumes",
    "n_nonmember_volumes", "n_splits", "task_attack_status", "private", "private_detail",
    "note",
)  # fmt: skip

#: Columns of the null-check table (:func:`null_checks`).
NULL_COLUMNS = (
    "task", "method", "calibration", "auc", "auc_ci_low", "auc_ci_high", "at_chance",
    "uncalibrated_auc", "uncalibrated_auc_ci_low", "uncalibrated_auc_ci_high",
    "task_attack_status",
)  # fmt: skip

#: ``role`` of a model that never saw the members (not "null": CSV readers take that for NaN).
NULL_ROLE = "null model"


#: What a task calls its volumes (in notes).
_VOLUME_WORD = {"segmentation": "subject"}


def _both_classes(frame: pd.DataFrame) -> bool:
    """Whether a feature frame (index ``label, item_id, slice``) has members and non-members."""
    return not frame.empty and set(frame.index.get_level_values("label")) == {0, 1}


def _role(method: str, task: str, null_methods: Mapping[str, Sequence[str]], reference: str,
          original: str) -> str:  # fmt: skip
    if method == reference:
        return "calibrator"
    if method in null_methods.get(task, ()):
        return NULL_ROLE
    if method == original:
        return "original"
    return "target"


def _empty_row(base: dict[str, Any], note: str) -> dict[str, Any]:
    row = {column: math.nan for column in MEMBERSHIP_COLUMNS}
    row.update(base)
    row.update(n_members=0, n_nonmembers=0, n_member_volumes=0, n_nonmember_volumes=0,
               n_splits=0, note=note, private="n/a", private_detail=note)  # fmt: skip
    return row


def membership_attacks(
    results: pd.DataFrame,
    features: Mapping[str, tuple[str, str, Sequence[str]]],
    *,
    n_splits: int = 5,
    n_repeats: int = 1,
    seed: int = 0,
    methods: Sequence[str] | None = None,
    granularity: str | Mapping[str, str] = "volume",
    slices: pd.DataFrame | None = None,
    reference: str = "reference",
    oracle: str = "oracle",
    original: str = "original",
    null_methods: Mapping[str, Sequence[str]] | None = None,
    fpr: float = 0.1,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    privacy_tolerance: float = 0.1,
    scorer: str = "threshold",
) -> pd.DataFrame:
    """Run the calibrated (and, as a diagnostic, the uncalibrated) attack on every model.

    Per task: each model's loss features on the member and non-member sets (per slice or
    per volume), minus the ``reference`` model's on the same slice / item when it is in the
    results; out-of-fold scores with grouped folds (:func:`~.scorers.member_scores`, the
    same folds for every model); AUC and TPR at ``fpr`` with intervals from one group
    bootstrap shared by all models (:func:`attack_metrics`), and the paired AUC difference to
    the oracle. The items are those every model of the task has (so models are compared on
    the same items).

    Null check: the models in ``null_methods[task]`` never saw the members; where one's
    calibrated AUC interval excludes 0.5 the task's ``task_attack_status`` is
    ``uninformative`` (``valid`` otherwise, ``no null check`` when none could be attacked,
    ``not computable`` when a class has fewer than 2 volumes / subjects)
    and every privacy verdict of the task reads ``uninformative``. Otherwise ``private`` is
    the equivalence verdict of ``auc_minus_oracle``'s interval within ±``privacy_tolerance``:
    ``yes`` (equivalent), ``exposed`` (outside), ``inconclusive``.

    Args:
        results: the tidy results table (it lists each task's methods).
        features: per task ``(member_set, nonmember_set, metrics)``.
        n_splits: grouped folds per repeat.
        n_repeats: fold shuffles (scores averaged).
        seed: seed of the folds and the bootstrap (the same for every model).
        methods: restrict to these methods (default: every method of the task).
        granularity: ``"volume"`` or ``"slice"``, for all tasks or per task.
        slices: the per-slice table, for tasks attacked per slice.
        reference: the calibration model's method name.
        oracle: the oracle's method name (privacy is judged against its AUC).
        original: the original model's name (its row is a sanity check: it saw the members).
        null_methods: per task, the models that never saw the members.
        fpr: the low false-positive rate of the TPR.
        n_resamples: bootstrap draws over groups.
        confidence: level of the intervals.
        privacy_tolerance: equivalence band of the AUC difference to the oracle.
        scorer: ``threshold`` (default: minus the standardised calibrated loss, nothing
            fitted) or ``logistic`` (a logistic regression scored out of fold with grouped
            folds; out-of-fold scores of a classifier fitted to noise are biased below 0.5,
            so its null check is stricter than it looks).

    Returns:
        One row per task × method with :data:`MEMBERSHIP_COLUMNS` (the calibrator's row says
        it is the calibrator); a model lacking a set or metric gets NaN and a note.

    Raises:
        ValueError: an unknown granularity.
    """
    results = validate_results_table(results)
    null_methods = dict(null_methods or {})
    rows = []
    for task, (member_set, nonmember_set, metrics) in features.items():
        level = granularity_of(granularity, task)
        task_methods = list(dict.fromkeys(results.loc[results["task"] == task, "method"]))
        attacked = [m for m in task_methods if methods is None or m in set(methods)
                    or m in (reference, oracle)]  # fmt: skip
        frames = {}
        for method in attacked:
            members = features_of(level, results, slices, task, method, member_set, metrics)
            nonmembers = features_of(level, results, slices, task, method, nonmember_set, metrics)
            frames[method] = pd.concat({1: members, 0: nonmembers}, names=["label"])
        calibrated = reference in frames and _both_classes(frames[reference].dropna())
        calibration = "reference" if calibrated else "none (no reference model in the results)"
        usable = {m: f.dropna() for m, f in frames.items()
                  if _both_classes(f.dropna()) and (m != reference or not calibrated)}  # fmt: skip
        common = None
        for frame in [*usable.values(), *([frames[reference].dropna()] if calibrated else [])]:
            common = frame.index if common is None else common.intersection(frame.index)
        word = _VOLUME_WORD.get(task, "volume")
        base_of = {m: {"task": task, "method": m,
                       "role": _role(m, task, null_methods, reference, original),
                       "member_set": member_set, "nonmember_set": nonmember_set,
                       "granularity": level, "features": "+".join(metrics),
                       "calibration": calibration, "fpr": fpr}
                   for m in task_methods if methods is None or m in set(methods)}  # fmt: skip
        if common is None or len(common) == 0:
            for base in base_of.values():
                reason = (f"no per-{level} results for {member_set} / {nonmember_set} "
                          f"({', '.join(metrics)})")  # fmt: skip
                rows.append({**_empty_row(base, reason), "task_attack_status": "not computable"})
            continue
        common = common.sort_values()
        labels = common.get_level_values("label").to_numpy(dtype=int)
        item_ids = common.get_level_values("item_id").astype(str).to_numpy()
        groups = np.where(labels == 1, "member:", "nonmember:").astype(object) + item_ids
        groups = groups.astype(str)
        n_mg = len(np.unique(groups[labels == 1]))
        n_ng = len(np.unique(groups[labels == 0]))
        counts = {"n_members": int(labels.sum()), "n_nonmembers": int((labels == 0).sum()),
                  "n_member_volumes": n_mg, "n_nonmember_volumes": n_ng}  # fmt: skip
        if min(n_mg, n_ng) < 2:
            note = (f"not computable: {n_mg} member and {n_ng} non-member {word}(s); grouped "
                    "folds need at least 2 per class")  # fmt: skip
            for base in base_of.values():
                rows.append({**_empty_row(base, note), **counts,
                             "task_attack_status": "not computable"})  # fmt: skip
            continue
        raw_scores, cal_scores, notes = {}, {}, {}
        folds = 0
        for method, frame in usable.items():
            raw = frame.loc[common].to_numpy(dtype=float)
            fold_options = {"scorer": scorer, "n_splits": n_splits, "n_repeats": n_repeats,
                            "seed": seed}  # fmt: skip
            raw_scores[method], folds, notes[method] = member_scores(
                raw, labels, groups, **fold_options
            )
            if calibrated:
                difference = raw - frames[reference].dropna().loc[common].to_numpy(dtype=float)
                cal_scores[method], _, _ = member_scores(difference, labels, groups,
                                                         **fold_options)  # fmt: skip
        primary = cal_scores if calibrated else raw_scores
        stats_kwargs = {"fpr": fpr, "n_resamples": n_resamples, "confidence": confidence,
                        "seed": seed}  # fmt: skip
        main = attack_metrics(labels, primary, groups, reference=oracle, **stats_kwargs)
        diagnostic = attack_metrics(labels, raw_scores, groups, **stats_kwargs)
        # The null check.
        nulls = [m for m in null_methods.get(task, ()) if m in main]
        failing = [m for m in nulls
                   if not main[m]["auc_ci_low"] <= 0.5 <= main[m]["auc_ci_high"]]  # fmt: skip
        status = ("no null check" if not nulls
                  else "uninformative" if failing else "valid")  # fmt: skip
        for method, base in base_of.items():
            if method not in main:
                reason = ("the calibrator (its own losses are subtracted)" if method == reference
                          else f"no per-{level} results for {member_set} / {nonmember_set}")
                rows.append({**_empty_row(base, reason), **counts, "task_attack_status": status})
                continue
            found, raw = main[method], diagnostic[method]
            how = (f"{folds} folds grouped by {word}" if scorer == "logistic"
                   else "score = minus the standardised loss (nothing fitted)")  # fmt: skip
            note_parts = [
                f"{counts['n_members']} / {counts['n_nonmembers']} {level}s of {n_mg} / {n_ng} "
                f"{word}s; {how}; CI: bootstrap over {word}s",
                notes.get(method, ""),
            ]
            if not calibrated:
                note_parts.append("uncalibrated: no reference model, item difficulty not removed")
            row = {
                **base, **counts, "n_splits": folds, "task_attack_status": status,
                "auc": found["auc"], "auc_ci_low": found["auc_ci_low"],
                "auc_ci_high": found["auc_ci_high"], "tpr_at_fpr": found["tpr_at_fpr"],
                "tpr_ci_low": found["tpr_ci_low"], "tpr_ci_high": found["tpr_ci_high"],
                "auc_minus_oracle": found.get("auc_minus_reference", math.nan),
                "auc_minus_oracle_ci_low": found.get("auc_minus_reference_ci_low", math.nan),
                "auc_minus_oracle_ci_high": found.get("auc_minus_reference_ci_high", math.nan),
                "uncalibrated_auc": raw["auc"], "uncalibrated_auc_ci_low": raw["auc_ci_low"],
                "uncalibrated_auc_ci_high": raw["auc_ci_high"],
                "uncalibrated_tpr_at_fpr": raw["tpr_at_fpr"],
                "note": "; ".join(part for part in note_parts if part),
            }  # fmt: skip
            row["private"], row["private_detail"] = _privacy_verdict(
                row, status, failing, oracle, privacy_tolerance
            )
            logger.info("Membership inference %s/%s: AUC %.3f [%.3f, %.3f] (%s)", task, method,
                        row["auc"], row["auc_ci_low"], row["auc_ci_high"], calibration)
            rows.append(row)
    return pd.DataFrame(rows, columns=list(MEMBERSHIP_COLUMNS))


def _privacy_verdict(row: Mapping[str, Any], status: str, failing: Sequence[str], oracle: str,
                     tolerance: float) -> tuple[str, str]:  # fmt: skip
    auc = (f"attack AUC {row['auc']:.2f} [{row['auc_ci_low']:.2f}, {row['auc_ci_high']:.2f}]")
    if status != "valid":
        why = (f"null model(s) {', '.join(failing)} detected as members (AUC interval excludes "
               "0.5)" if failing else "no null model to check the attack against")
        return "uninformative", f"{auc}; {why}"
    low, high = row["auc_minus_oracle_ci_low"], row["auc_minus_oracle_ci_high"]
    if not np.isfinite([low, high]).all():
        return "n/a", f"{auc}; no oracle attack to compare with"
    outcome = equivalence(low, high, tolerance)
    verdict = {"equivalent": "yes", "above": "exposed", "below": "exposed"}.get(
        outcome, "inconclusive"
    )
    return verdict, (f"{auc}; AUC − {oracle}'s {row['auc_minus_oracle']:+.2f} "
                     f"[{low:+.2f}, {high:+.2f}] vs ±{tolerance:g}")  # fmt: skip


def null_checks(membership: pd.DataFrame) -> pd.DataFrame:
    """The attack on the null models (never saw the members), one row each.

    ``at_chance`` is whether the calibrated AUC's interval contains 0.5; the uncalibrated
    AUC shows what calibration changed.

    Returns:
        Columns :data:`NULL_COLUMNS`.
    """
    if membership is None or membership.empty or "role" not in membership.columns:
        return pd.DataFrame(columns=list(NULL_COLUMNS))
    rows = membership.loc[membership["role"] == NULL_ROLE].copy()
    low, high = rows["auc_ci_low"].astype(float), rows["auc_ci_high"].astype(float)
    rows["at_chance"] = (low <= 0.5) & (0.5 <= high)
    return rows.loc[:, list(NULL_COLUMNS)].reset_index(drop=True)


def nonmember_set_of(results: pd.DataFrame, task: str, attack: AttackFeatureParams) -> str:
    """The set the attack of ``task`` takes its non-members from: ``attack.nonmember_set``,
    or ``attack.nonmember_fallback`` (with a WARNING) when the results have no item of it.

    Non-members must be of the members' kind; the fallback (e.g. typical held-out subjects
    for a request by subject ids, whose kind has none held out) is not, which is why it is
    logged and the report names it.
    """
    fallback = attack.nonmember_fallback
    has_items = ((results["task"] == task) & (results["set"] == attack.nonmember_set)).any()
    if has_items or fallback is None:
        return str(attack.nonmember_set)
    logger.warning(
        "%s membership attack: no %r items (no held-out subject of the forget request's "
        "kind); non-members are %r instead, of another kind than the members, so the null "
        "check decides whether its verdicts mean anything",
        task, attack.nonmember_set, fallback,
    )
    return str(fallback)


def membership_attacks_from_params(
    results: pd.DataFrame, params: EvaluationParams, slices: pd.DataFrame | None = None
) -> pd.DataFrame:
    """:func:`membership_attacks` with the settings of the ``evaluation`` params.

    Args:
        results: the tidy results table.
        params: each task's ``attack`` (sets, granularity, features) and ``null_methods``;
            ``membership`` (folds, seed, reference model, FPR, resamples); the confidence of
            ``statistics``; ``verdicts.privacy_tolerance``.
        slices: the per-slice table, for tasks attacked per slice.
    """
    features = {
        task: (spec.attack.member_set, nonmember_set_of(results, task, spec.attack),
               spec.attack.feature_metrics())
        for task, spec in params.tasks.items()
    }  # fmt: skip
    settings = params.membership
    return membership_attacks(
        results,
        features,
        n_splits=settings.n_splits,
        n_repeats=settings.n_repeats,
        seed=settings.seed,
        granularity={task: spec.attack.granularity for task, spec in params.tasks.items()},
        slices=slices,
        reference=settings.reference_method,
        oracle=params.oracle_method,
        original=params.original_method,
        null_methods={task: spec.null_methods for task, spec in params.tasks.items()},
        fpr=settings.fpr,
        n_resamples=settings.n_resamples,
        confidence=params.statistics.confidence,
        privacy_tolerance=params.verdicts.privacy_tolerance,
        scorer=settings.scorer,
    )
