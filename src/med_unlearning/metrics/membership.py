"""Loss-based membership inference: can an attacker tell forget-training items from unseen ones?

The attack of the bilevel boundary-unlearning study (and SCRUB before it): a logistic
regression on per-item loss features (here, for images: per-volume ``1 − SSIM`` / NMSE, per
subject ``1 − Dice`` / MAE), members = the forget *training* items, non-members = unseen
items of the same kind, class-balanced, scored by repeated stratified splits.

Items are volumes/subjects (``granularity="volume"``, features from the tidy results table)
or their 2-D slices (``granularity="slice"``, features from the per-slice table of
:mod:`med_unlearning.metrics.scoring`: ``1 − SSIM`` / NMSE per slice, cross-entropy / soft
Dice loss per axial slice). Slices turn a handful of volumes into dozens of items, but slices
of one volume are correlated: a shuffled stratified split puts slices of the same volume on
both sides, so the attack partly learns volume identity — the table's note says how many
volumes the slices come from, and the comparison that matters stays the one with the oracle,
scored the same way. A model that
never saw the forget items (the oracle) gives the reference accuracy — a good unlearner lands
where the oracle lands, neither above (it still remembers) nor far below (over-forgetting
makes the forget items stand out the other way, which an attacker can learn just as well).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from med_unlearning.metrics.comparison import validate_results_table
from med_unlearning.metrics.scoring import SLICE_COLUMNS
from med_unlearning.params.evaluation import EvaluationParams

__all__ = [
    "GRANULARITIES",
    "MEMBERSHIP_COLUMNS",
    "MembershipAttackResult",
    "MembershipInputError",
    "loss_features",
    "membership_attacks",
    "membership_attacks_from_params",
    "membership_inference_attack",
    "slice_loss_features",
]

logger = logging.getLogger(__name__)

#: Columns of the table :func:`membership_attacks` returns.
MEMBERSHIP_COLUMNS = (
    "task", "method", "member_set", "nonmember_set", "granularity", "features",
    "accuracy_mean", "accuracy_std", "auc_mean", "auc_std",
    "n_members", "n_nonmembers", "n_member_volumes", "n_nonmember_volumes", "n_splits", "note",
)  # fmt: skip

#: The attack's item granularities.
GRANULARITIES = ("slice", "volume")

#: What a task calls its volumes (in notes).
_VOLUME_WORD = {"segmentation": "subject"}

#: L2 logistic regression solver: the default lbfgs objective, several times faster on a few
#: dozen items (the attack runs once per fold, repeat and method).
_SOLVER = "newton-cg"

#: Metrics bounded by 1, whose loss is ``1 − value`` (other higher-is-better ones: ``−value``).
_UNIT_BOUNDED = ("ssim", "dice")


class MembershipInputError(ValueError):
    """The attack's features are malformed (wrong dimensions, mismatched feature counts)."""


@dataclass(frozen=True)
class MembershipAttackResult:
    """Outcome of one membership-inference attack.

    Attributes:
        accuracy_mean: mean test accuracy over all splits (0.5 = chance on balanced data);
            NaN when the attack could not run.
        accuracy_std: its standard deviation over splits.
        auc_mean: mean ROC AUC of the member probability over splits.
        auc_std: its standard deviation.
        n_members: member items available (finite features).
        n_nonmembers: non-member items available.
        n_splits: train/test splits scored (folds × repeats; 0 when the attack could not run).
        note: how the splits were made, what was dropped, or why the result is NaN.
    """

    accuracy_mean: float
    accuracy_std: float
    auc_mean: float
    auc_std: float
    n_members: int
    n_nonmembers: int
    n_splits: int
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (a row of the membership table)."""
        return asdict(self)

    def __repr__(self) -> str:
        return (
            f"MembershipAttackResult(accuracy={self.accuracy_mean:.3f}±{self.accuracy_std:.3f}, "
            f"auc={self.auc_mean:.3f}±{self.auc_std:.3f}, members={self.n_members}, "
            f"nonmembers={self.n_nonmembers}, splits={self.n_splits}, note={self.note!r})"
        )


def _as_feature_matrix(features: Any, name: str) -> np.ndarray:
    array = np.asarray(features, dtype=float)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise MembershipInputError(
            f"{name}: expected per-item features of shape (items,) or (items, features), "
            f"got shape {array.shape}"
        )
    return array


def _not_run(n_members: int, n_nonmembers: int, note: str) -> MembershipAttackResult:
    return MembershipAttackResult(
        math.nan, math.nan, math.nan, math.nan, n_members, n_nonmembers, 0, note
    )


def membership_inference_attack(
    member_features: Any,
    nonmember_features: Any,
    *,
    n_splits: int = 5,
    n_repeats: int = 1,
    seed: int = 0,
) -> MembershipAttackResult:
    """Attack accuracy/AUC of a seeded logistic regression telling members from non-members.

    Per repeat: the larger class is subsampled (seeded) to the size ``n`` of the smaller,
    then ``StratifiedKFold(k = min(n_splits, n))`` with shuffling scores a standardised
    L2 logistic regression (scikit-learn defaults, newton-cg solver) fitted on the training
    folds. With fewer than ``n_splits`` items per
    class the folds are reduced (``k = n`` holds out one item per class per fold) and the
    note says so. Items with a non-finite feature are dropped (and counted in the note).

    Args:
        member_features: loss features of the forget-training items, ``(n,)`` or ``(n, f)``.
        nonmember_features: the same features of unseen items, ``(m,)`` or ``(m, f)``.
        n_splits: folds per repeat (at least 2).
        n_repeats: repeats, each with a fresh subsample and fold shuffle.
        seed: seed of the subsampling and the folds.

    Returns:
        The result; all-NaN metrics with a reason in ``note`` when fewer than 2 items per
        class remain (never raises for too few items).

    Raises:
        MembershipInputError: features that are not 1-D/2-D or whose feature counts differ.
        ValueError: ``n_splits < 2`` or ``n_repeats < 1``.
    """
    if n_splits < 2:
        raise ValueError(f"n_splits must be >= 2, got {n_splits}")
    if n_repeats < 1:
        raise ValueError(f"n_repeats must be >= 1, got {n_repeats}")
    members = _as_feature_matrix(member_features, "member_features")
    nonmembers = _as_feature_matrix(nonmember_features, "nonmember_features")
    if members.shape[0] and nonmembers.shape[0] and members.shape[1] != nonmembers.shape[1]:
        raise MembershipInputError(
            f"member_features have {members.shape[1]} features per item but nonmember_features "
            f"have {nonmembers.shape[1]}"
        )
    notes = []
    finite_members = np.isfinite(members).all(axis=1)
    finite_nonmembers = np.isfinite(nonmembers).all(axis=1)
    dropped = int((~finite_members).sum() + (~finite_nonmembers).sum())
    if dropped:
        notes.append(f"{dropped} item(s) with non-finite features dropped")
    members, nonmembers = members[finite_members], nonmembers[finite_nonmembers]
    n_members, n_nonmembers = len(members), len(nonmembers)
    per_class = min(n_members, n_nonmembers)
    if per_class < 2:
        notes.append(
            f"not computable: {n_members} member(s) and {n_nonmembers} non-member(s); "
            "the attack needs at least 2 items per class"
        )
        return _not_run(n_members, n_nonmembers, "; ".join(notes))
    folds = min(n_splits, per_class)
    if folds < n_splits:
        notes.append(
            f"only {per_class} items per class after balancing: {folds}-fold stratified "
            f"cross-validation (leave-one-per-class-out) instead of {n_splits} folds"
        )
    if n_members != n_nonmembers:
        notes.append(f"classes balanced by subsampling to {per_class} items each")

    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(per_class, dtype=int), np.zeros(per_class, dtype=int)]
    accuracies, aucs = [], []
    for _ in range(n_repeats):
        chosen_members = members[np.sort(rng.choice(n_members, per_class, replace=False))]
        chosen_nonmembers = nonmembers[np.sort(rng.choice(n_nonmembers, per_class, replace=False))]
        features = np.vstack([chosen_members, chosen_nonmembers])
        splitter = StratifiedKFold(
            n_splits=folds, shuffle=True, random_state=int(rng.integers(2**31 - 1))
        )
        for train_index, test_index in splitter.split(features, labels):
            attack = make_pipeline(StandardScaler(), LogisticRegression(solver=_SOLVER))
            attack.fit(features[train_index], labels[train_index])
            accuracies.append(
                accuracy_score(labels[test_index], attack.predict(features[test_index]))
            )
            member_probability = attack.predict_proba(features[test_index])[:, 1]
            aucs.append(roc_auc_score(labels[test_index], member_probability))
    return MembershipAttackResult(
        accuracy_mean=float(np.mean(accuracies)),
        accuracy_std=float(np.std(accuracies)),
        auc_mean=float(np.mean(aucs)),
        auc_std=float(np.std(aucs)),
        n_members=n_members,
        n_nonmembers=n_nonmembers,
        n_splits=len(accuracies),
        note="; ".join(notes),
    )


def _as_loss(values: pd.Series, metric: str, higher_is_better: bool) -> pd.Series:
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
        columns[metric] = _as_loss(series, metric, direction)
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


def _volume_count(frame: pd.DataFrame) -> int:
    if frame.empty:
        return 0
    if isinstance(frame.index, pd.MultiIndex):
        return int(frame.index.get_level_values("item_id").nunique())
    return int(frame.index.nunique())


def _granularity_of(granularity: str | Mapping[str, str], task: str) -> str:
    value = granularity if isinstance(granularity, str) else granularity.get(task, "volume")
    if value not in GRANULARITIES:
        raise ValueError(
            f"membership attack granularity of {task!r} must be one of {list(GRANULARITIES)}, "
            f"got {value!r}"
        )
    return value


def _slice_note(task: str, member_volumes: int, nonmember_volumes: int) -> str:
    word = _VOLUME_WORD.get(task, "volume")
    return (
        f"slices of {member_volumes} member and {nonmember_volumes} non-member {word}(s), "
        f"correlated within a {word}"
    )


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
) -> pd.DataFrame:
    """Run the attack for every task and method of the tidy results table.

    Args:
        results: the tidy results table (it also lists each task's methods).
        features: per task ``(member_set, nonmember_set, metrics)``, e.g. recon
            ``("forget_train", "forget_test", ["ssim", "nmse"])``; the metrics are
            per-slice names for tasks attacked per slice. Tasks absent from the results are
            skipped.
        n_splits: folds per repeat.
        n_repeats: repeats.
        seed: the same seed for every method, so that methods differ only by their losses.
        methods: restrict to these methods (default: every method of the task).
        granularity: ``"volume"`` or ``"slice"``, for every task or per task (tasks not in
            the mapping: ``"volume"``).
        slices: the per-slice table (:data:`~med_unlearning.metrics.scoring.SLICE_COLUMNS`),
            needed by tasks attacked per slice (without it their rows are NaN with a note).

    Returns:
        One row per task × method with :data:`MEMBERSHIP_COLUMNS`; a method lacking a set or
        a metric gets NaN results and a note saying which, never an error.

    Raises:
        ValueError: an unknown granularity.
    """
    results = validate_results_table(results)
    rows = []
    for task, (member_set, nonmember_set, metrics) in features.items():
        level = _granularity_of(granularity, task)
        task_methods = list(dict.fromkeys(results.loc[results["task"] == task, "method"]))
        if methods is not None:
            task_methods = [method for method in task_methods if method in set(methods)]
        for method in task_methods:
            if level == "slice":
                table = pd.DataFrame(columns=list(SLICE_COLUMNS)) if slices is None else slices
                members = slice_loss_features(table, task, method, member_set, metrics)
                nonmembers = slice_loss_features(table, task, method, nonmember_set, metrics)
            else:
                members = loss_features(results, task, method, member_set, metrics)
                nonmembers = loss_features(results, task, method, nonmember_set, metrics)
            member_volumes, nonmember_volumes = _volume_count(members), _volume_count(nonmembers)
            absent = [
                f"{metric}@{set_name}"
                for set_name, frame in ((member_set, members), (nonmember_set, nonmembers))
                for metric in metrics
                if frame.empty or frame[metric].isna().all()
            ]
            if absent:
                result = _not_run(
                    len(members),
                    len(nonmembers),
                    f"no per-{level} results for {', '.join(absent)}",
                )
            else:
                result = membership_inference_attack(
                    members.to_numpy(dtype=float),
                    nonmembers.to_numpy(dtype=float),
                    n_splits=n_splits,
                    n_repeats=n_repeats,
                    seed=seed,
                )
                if level == "slice":
                    note = _slice_note(task, member_volumes, nonmember_volumes)
                    result = replace(result, note="; ".join(filter(None, [note, result.note])))
            logger.info("Membership inference %s/%s (%s): %r", task, method, level, result)
            rows.append(
                {
                    "task": task,
                    "method": method,
                    "member_set": member_set,
                    "nonmember_set": nonmember_set,
                    "granularity": level,
                    "features": "+".join(metrics),
                    **result.as_dict(),
                    "n_member_volumes": member_volumes,
                    "n_nonmember_volumes": nonmember_volumes,
                }
            )
    return pd.DataFrame(rows, columns=list(MEMBERSHIP_COLUMNS))


def membership_attacks_from_params(
    results: pd.DataFrame, params: EvaluationParams, slices: pd.DataFrame | None = None
) -> pd.DataFrame:
    """:func:`membership_attacks` with the task features and settings of ``evaluation`` params.

    Args:
        results: the tidy results table.
        params: :class:`~med_unlearning.params.evaluation.EvaluationParams`; each task's
            ``attack.granularity`` picks its items and ``metrics`` / ``slice_metrics``.
        slices: the per-slice table, for tasks attacked per slice.
    """
    features = {
        task: (spec.attack.member_set, spec.attack.nonmember_set, spec.attack.feature_metrics())
        for task, spec in params.tasks.items()
    }
    settings = params.membership
    return membership_attacks(
        results,
        features,
        n_splits=settings.n_splits,
        n_repeats=settings.n_repeats,
        seed=settings.seed,
        granularity={task: spec.attack.granularity for task, spec in params.tasks.items()},
        slices=slices,
    )
