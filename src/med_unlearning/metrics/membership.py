"""Loss-based membership inference that measures membership, not item difficulty.

The attack (bilevel boundary-unlearning study, SCRUB; here with the corrections of the
membership-inference literature): members = the forget *training* items, non-members =
unseen items of the same kind, features = per-item losses (``1 − SSIM``, NMSE per 2-D slice
or per volume; cross-entropy, soft Dice loss per axial slice or ``1 − Dice``, MAE per
subject), a standardised logistic regression scored out of fold.

Three things make its number mean membership:

1. **No volume identity.** Items are slices of volumes (or volumes). The default score
   (``scorer: threshold``) fits nothing: minus the standardised (calibrated) loss, the
   offline LiRA / Watson et al. score. The optional learned attack (``scorer: logistic``, a
   standardised logistic regression) is scored out of fold with ``StratifiedGroupKFold`` over
   the volume / subject ids: one volume's slices are never split between training and test
   folds, so the attack cannot score by recognising a volume.
2. **Difficulty calibration.** Items differ in inherent difficulty (a knee that is hard to
   reconstruct is hard for every model), so a model that never saw the members "detects"
   them if the member volumes happen to be easier. Each feature is the model's loss minus the
   loss of a ``reference`` model (a retain-only model that never saw any forget-domain item)
   on the same slice / item (Watson et al., ICLR 2022; the offline form of LiRA, Carlini et
   al. 2022; U-LiRA, Hayes et al. 2024). Without a reference model in the results the attack
   runs uncalibrated and its note says so; the uncalibrated attack is always reported as a
   diagnostic next to the calibrated one.
3. **A null check in every run.** The attack on models that never saw the members (the
   oracle; for reconstruction also zero-filling, which trained on nothing) must sit at
   chance: where a null model's AUC interval excludes 0.5, the task's privacy verdicts read
   ``uninformative``.

Reported per model: the ROC AUC of the out-of-fold member scores and the TPR at a low FPR
(``fpr``), each with a percentile-bootstrap interval over **volumes / subjects** (member and
non-member groups resampled with replacement, separately; all slices of a drawn group come
along; folds and scores fixed), and the paired difference of the AUC to the oracle's on the
same resampled groups. The privacy verdict is the equivalence rule of
:mod:`med_unlearning.metrics.statistics` on that difference with ``privacy_tolerance``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from med_unlearning.metrics.comparison import validate_results_table
from med_unlearning.metrics.scoring import SLICE_COLUMNS
from med_unlearning.metrics.statistics import equivalence
from med_unlearning.params.evaluation import EvaluationParams

__all__ = [
    "as_loss",
    "GRANULARITIES",
    "MEMBERSHIP_COLUMNS",
    "NULL_COLUMNS",
    "NULL_ROLE",
    "GroupBootstrap",
    "MembershipAttackResult",
    "MembershipInputError",
    "attack_metrics",
    "grouped_folds",
    "grouped_out_of_fold_scores",
    "loss_features",
    "member_scores",
    "membership_attacks",
    "membership_attacks_from_params",
    "membership_inference_attack",
    "null_checks",
    "slice_loss_features",
    "threshold_scores",
    "tpr_at_fpr",
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

#: The attack's item granularities.
GRANULARITIES = ("slice", "volume")

#: What a task calls its volumes (in notes).
_VOLUME_WORD = {"segmentation": "subject"}

#: L2 logistic regression solver (fast on a few dozen items).
_SOLVER = "newton-cg"

#: Metrics bounded by 1, whose loss is ``1 − value`` (other higher-is-better ones: ``−value``).
_UNIT_BOUNDED = ("ssim", "dice")


class MembershipInputError(ValueError):
    """The attack's features are malformed (wrong dimensions, mismatched lengths)."""


@dataclass(frozen=True)
class MembershipAttackResult:
    """Outcome of one membership-inference attack on one model.

    Attributes:
        auc: ROC AUC of the out-of-fold member scores (0.5 = chance); NaN when not run.
        auc_ci_low: lower end of its bootstrap interval over groups.
        auc_ci_high: upper end.
        tpr_at_fpr: true-positive rate at false-positive rate ``fpr``.
        tpr_ci_low: lower end of its interval.
        tpr_ci_high: upper end.
        fpr: the false-positive rate of ``tpr_at_fpr``.
        n_members: member items (finite features).
        n_nonmembers: non-member items.
        n_member_groups: member volumes / subjects.
        n_nonmember_groups: non-member volumes / subjects.
        n_splits: grouped folds per repeat (0 when not run).
        note: how the folds were made, what was dropped, or why the result is NaN.
    """

    auc: float
    auc_ci_low: float
    auc_ci_high: float
    tpr_at_fpr: float
    tpr_ci_low: float
    tpr_ci_high: float
    fpr: float
    n_members: int
    n_nonmembers: int
    n_member_groups: int
    n_nonmember_groups: int
    n_splits: int
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict."""
        return asdict(self)


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


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, fpr: float) -> float:
    """The largest true-positive rate of the ROC curve at a false-positive rate ≤ ``fpr``."""
    false_positive, true_positive, _ = roc_curve(labels, scores)
    allowed = false_positive <= fpr + 1e-12
    return float(true_positive[allowed].max()) if allowed.any() else 0.0


def threshold_scores(features: np.ndarray) -> np.ndarray:
    """Member scores without fitting anything: minus the mean of the label-free standardised
    loss features (lower loss → more likely a member; with calibrated features: lower loss
    than the reference model's on the same item, the offline LiRA / Watson et al. score).

    Nothing is learned from the labels, so there is nothing to leak across folds and no
    cross-validation bias: on a model that never saw the members the AUC is centred on 0.5.
    Over-forgetting (members' loss above the reference's) gives an AUC below 0.5.
    """
    features = _as_feature_matrix(features, "features")
    scale = features.std(axis=0)
    scale[~np.isfinite(scale) | (scale == 0)] = 1.0
    return -((features - features.mean(axis=0)) / scale).mean(axis=1)


def grouped_folds(
    labels: np.ndarray, groups: np.ndarray, *, n_splits: int, n_repeats: int = 1, seed: int = 0
) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """Per repeat, the ``(train, test)`` index pairs of ``StratifiedGroupKFold`` (shuffled,
    seeded): every group's items fall on one side of each split."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels, dtype=int)
    groups = np.asarray(groups).astype(str)
    repeats = []
    for _ in range(n_repeats):
        splitter = StratifiedGroupKFold(
            n_splits=n_splits, shuffle=True, random_state=int(rng.integers(2**31 - 1))
        )
        repeats.append(list(splitter.split(np.zeros(len(labels)), labels, groups)))
    return repeats


def grouped_out_of_fold_scores(
    features: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    *,
    n_splits: int = 5,
    n_repeats: int = 1,
    seed: int = 0,
) -> tuple[np.ndarray, int, str]:
    """Out-of-fold member probabilities of a standardised logistic regression, folds
    grouped by ``groups`` (``StratifiedGroupKFold``; no group on both sides of a split).

    The number of folds is reduced to the number of groups of the smaller class when
    fewer; scores are averaged over ``n_repeats`` fold shuffles. A training fold with a
    single class scores its test items 0.5 (said in the note).

    Returns:
        ``(scores, folds, note)``.

    Raises:
        ValueError: fewer than 2 groups in a class, ``n_splits < 2`` or ``n_repeats < 1``.
    """
    if n_splits < 2 or n_repeats < 1:
        raise ValueError(f"n_splits must be >= 2 and n_repeats >= 1, got {n_splits}, {n_repeats}")
    features = _as_feature_matrix(features, "features")
    labels = np.asarray(labels, dtype=int)
    groups = np.asarray(groups).astype(str)
    per_class = min(len(np.unique(groups[labels == 1])), len(np.unique(groups[labels == 0])))
    if per_class < 2:
        raise ValueError(f"grouped folds need >= 2 groups per class, got {per_class}")
    folds = min(n_splits, per_class)
    notes = []
    if folds < n_splits:
        notes.append(f"{folds} grouped folds ({per_class} groups in the smaller class)")
    total = np.zeros(len(labels))
    single = 0
    for repeat in grouped_folds(labels, groups, n_splits=folds, n_repeats=n_repeats, seed=seed):
        for train_index, test_index in repeat:
            if len(np.unique(labels[train_index])) < 2:
                total[test_index] += 0.5
                single += 1
                continue
            attack = make_pipeline(StandardScaler(), LogisticRegression(solver=_SOLVER))
            attack.fit(features[train_index], labels[train_index])
            total[test_index] += attack.predict_proba(features[test_index])[:, 1]
    if single:
        notes.append(f"{single} fold(s) trained on one class scored 0.5")
    return total / n_repeats, folds, "; ".join(notes)


def member_scores(
    features: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    *,
    scorer: str = "threshold",
    n_splits: int = 5,
    n_repeats: int = 1,
    seed: int = 0,
) -> tuple[np.ndarray, int, str]:
    """Member scores of every item: ``threshold`` (:func:`threshold_scores`, nothing
    fitted) or ``logistic`` (:func:`grouped_out_of_fold_scores`).

    Returns:
        ``(scores, folds, note)`` (0 folds for ``threshold``).
    """
    if scorer == "threshold":
        return threshold_scores(features), 0, ""
    if scorer == "logistic":
        return grouped_out_of_fold_scores(
            features, labels, groups, n_splits=n_splits, n_repeats=n_repeats, seed=seed
        )
    raise ValueError(f"membership scorer must be 'threshold' or 'logistic', got {scorer!r}")


@dataclass
class GroupBootstrap:
    """Resampling of member and non-member groups (volumes / subjects) with replacement.

    Every draw picks as many member groups as there are, with replacement, and the same for
    non-member groups; all items of a drawn group come along. The same draws serve every
    model of a task, so differences between models are paired.

    Attributes:
        labels: 1 = member, 0 = non-member, per item.
        groups: the group id of each item.
        n_resamples: number of draws.
        seed: seed of the draws.
    """

    labels: np.ndarray
    groups: np.ndarray
    n_resamples: int = 1000
    seed: int = 0

    def draws(self) -> list[np.ndarray]:
        """Item indices of every draw."""
        labels = np.asarray(self.labels, dtype=int)
        groups = np.asarray(self.groups).astype(str)
        rng = np.random.default_rng(self.seed)
        members = {g: np.flatnonzero((groups == g) & (labels == 1))
                   for g in np.unique(groups[labels == 1])}  # fmt: skip
        nonmembers = {g: np.flatnonzero((groups == g) & (labels == 0))
                      for g in np.unique(groups[labels == 0])}  # fmt: skip
        member_keys, nonmember_keys = list(members), list(nonmembers)
        draws = []
        for _ in range(self.n_resamples):
            picked_m = rng.choice(len(member_keys), len(member_keys), replace=True)
            picked_n = rng.choice(len(nonmember_keys), len(nonmember_keys), replace=True)
            draws.append(np.concatenate(
                [members[member_keys[i]] for i in picked_m]
                + [nonmembers[nonmember_keys[i]] for i in picked_n]
            ))  # fmt: skip
        return draws


def _auc_fast(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUC of each row of ``scores`` (Mann–Whitney U with average ranks = roc_auc_score)."""
    ranks = rankdata(scores, axis=-1)
    n_pos = labels.sum()
    n_neg = len(labels) - n_pos
    return (ranks[..., labels == 1].sum(axis=-1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def _tpr_fast(labels: np.ndarray, scores: np.ndarray, fpr: float) -> np.ndarray:
    """TPR at FPR ≤ ``fpr`` of each row (threshold just above the (k+1)-th highest
    non-member score, k = ⌊fpr · n_nonmembers⌋)."""
    negatives = np.sort(scores[..., labels == 0], axis=-1)[..., ::-1]
    k = int(math.floor(fpr * negatives.shape[-1] + 1e-9))
    if k >= negatives.shape[-1]:
        return np.ones(scores.shape[:-1])
    threshold = negatives[..., k : k + 1]
    return (scores[..., labels == 1] > threshold).mean(axis=-1)


def attack_metrics(
    labels: np.ndarray,
    scores: Mapping[str, np.ndarray],
    groups: np.ndarray,
    *,
    fpr: float = 0.1,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    reference: str | None = None,
) -> dict[str, dict[str, float]]:
    """AUC and TPR at ``fpr`` of several models' scores on the same items, with intervals
    from one :class:`GroupBootstrap` (paired across models).

    Args:
        labels: 1 = member, 0 = non-member.
        scores: model → out-of-fold member scores (same items, same order).
        groups: group id per item.
        fpr: the low false-positive rate.
        n_resamples: bootstrap draws over groups.
        confidence: level of the percentile intervals.
        seed: seed of the draws.
        reference: a model of ``scores`` whose AUC every model's is compared with
            (``auc_minus_reference`` and its interval, on the same draws).

    Returns:
        model → ``auc, auc_ci_low, auc_ci_high, tpr_at_fpr, tpr_ci_low, tpr_ci_high`` (+
        ``auc_minus_reference, auc_minus_reference_ci_low/high`` with ``reference``).
    """
    labels = np.asarray(labels, dtype=int)
    names = list(scores)
    matrix = np.vstack([np.asarray(scores[name], dtype=float) for name in names])
    draws = GroupBootstrap(labels, groups, n_resamples, seed).draws()
    aucs = np.empty((len(draws), len(names)))
    tprs = np.empty((len(draws), len(names)))
    for index, draw in enumerate(draws):
        aucs[index] = _auc_fast(labels[draw], matrix[:, draw])
        tprs[index] = _tpr_fast(labels[draw], matrix[:, draw], fpr)
    tail = 100 * (1 - confidence) / 2
    out = {}
    for column, name in enumerate(names):
        row = {
            "auc": float(roc_auc_score(labels, matrix[column])),
            "tpr_at_fpr": tpr_at_fpr(labels, matrix[column], fpr),
        }
        row["auc_ci_low"], row["auc_ci_high"] = np.percentile(aucs[:, column], [tail, 100 - tail])
        row["tpr_ci_low"], row["tpr_ci_high"] = np.percentile(tprs[:, column], [tail, 100 - tail])
        if reference is not None and reference in scores:
            difference = aucs[:, column] - aucs[:, names.index(reference)]
            row["auc_minus_reference"] = row["auc"] - float(
                roc_auc_score(labels, matrix[names.index(reference)])
            )
            row["auc_minus_reference_ci_low"], row["auc_minus_reference_ci_high"] = (
                np.percentile(difference, [tail, 100 - tail])
            )
        out[name] = {key: float(value) for key, value in row.items()}
    return out


def membership_inference_attack(
    member_features: Any,
    nonmember_features: Any,
    *,
    member_groups: Any = None,
    nonmember_groups: Any = None,
    n_splits: int = 5,
    n_repeats: int = 1,
    seed: int = 0,
    fpr: float = 0.1,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    scorer: str = "threshold",
) -> MembershipAttackResult:
    """The attack on one model's (already calibrated, if at all) loss features.

    Folds are grouped by ``member_groups`` / ``nonmember_groups`` (default: every item its
    own group, as for per-volume items). Items with a non-finite feature are dropped.

    Returns:
        The result; NaN metrics with a reason in ``note`` when a class has fewer than 2
        groups (never raises for too few items).

    Raises:
        MembershipInputError: malformed features, mismatched feature or group counts.
    """
    members = _as_feature_matrix(member_features, "member_features")
    nonmembers = _as_feature_matrix(nonmember_features, "nonmember_features")
    if members.shape[0] and nonmembers.shape[0] and members.shape[1] != nonmembers.shape[1]:
        raise MembershipInputError(
            f"member_features have {members.shape[1]} features per item but nonmember_features "
            f"have {nonmembers.shape[1]}"
        )
    member_groups = (np.array([f"m{i}" for i in range(len(members))]) if member_groups is None
                     else np.asarray(member_groups).astype(str))  # fmt: skip
    nonmember_groups = (np.array([f"n{i}" for i in range(len(nonmembers))])
                        if nonmember_groups is None
                        else np.asarray(nonmember_groups).astype(str))  # fmt: skip
    if len(member_groups) != len(members) or len(nonmember_groups) != len(nonmembers):
        raise MembershipInputError("one group id per item expected for members and non-members")
    notes = []
    keep_m, keep_n = np.isfinite(members).all(axis=1), np.isfinite(nonmembers).all(axis=1)
    dropped = int((~keep_m).sum() + (~keep_n).sum())
    if dropped:
        notes.append(f"{dropped} item(s) with non-finite features dropped")
    members, member_groups = members[keep_m], member_groups[keep_m]
    nonmembers, nonmember_groups = nonmembers[keep_n], nonmember_groups[keep_n]
    n_mg, n_ng = len(np.unique(member_groups)), len(np.unique(nonmember_groups))
    if min(n_mg, n_ng) < 2:
        notes.append(
            f"not computable: {n_mg} member and {n_ng} non-member group(s); grouped folds "
            "need at least 2 per class"
        )
        return MembershipAttackResult(math.nan, math.nan, math.nan, math.nan, math.nan,
                                      math.nan, fpr, len(members), len(nonmembers), n_mg, n_ng,
                                      0, "; ".join(notes))  # fmt: skip
    features = np.vstack([members, nonmembers])
    labels = np.r_[np.ones(len(members), dtype=int), np.zeros(len(nonmembers), dtype=int)]
    groups = np.r_[
        np.char.add("member:", member_groups), np.char.add("nonmember:", nonmember_groups)
    ]
    scores, folds, note = member_scores(
        features, labels, groups, scorer=scorer, n_splits=n_splits, n_repeats=n_repeats,
        seed=seed,
    )
    if note:
        notes.append(note)
    metrics = attack_metrics(labels, {"model": scores}, groups, fpr=fpr,
                             n_resamples=n_resamples, confidence=confidence, seed=seed)["model"]
    return MembershipAttackResult(
        metrics["auc"], metrics["auc_ci_low"], metrics["auc_ci_high"], metrics["tpr_at_fpr"],
        metrics["tpr_ci_low"], metrics["tpr_ci_high"], fpr, len(members), len(nonmembers),
        n_mg, n_ng, folds, "; ".join(notes),
    )  # fmt: skip


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


def _granularity_of(granularity: str | Mapping[str, str], task: str) -> str:
    value = granularity if isinstance(granularity, str) else granularity.get(task, "volume")
    if value not in GRANULARITIES:
        raise ValueError(
            f"membership attack granularity of {task!r} must be one of {list(GRANULARITIES)}, "
            f"got {value!r}"
        )
    return value


def _features_of(
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
    results; out-of-fold scores with grouped folds (:func:`grouped_out_of_fold_scores`, the
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
        level = _granularity_of(granularity, task)
        task_methods = list(dict.fromkeys(results.loc[results["task"] == task, "method"]))
        attacked = [m for m in task_methods if methods is None or m in set(methods)
                    or m in (reference, oracle)]  # fmt: skip
        frames = {}
        for method in attacked:
            members = _features_of(level, results, slices, task, method, member_set, metrics)
            nonmembers = _features_of(level, results, slices, task, method, nonmember_set, metrics)
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
            for method, base in base_of.items():
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
            for method, base in base_of.items():
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


def nonmember_set_of(results: pd.DataFrame, task: str, attack: Any) -> str:
    """The set the attack of ``task`` takes its non-members from: ``attack.nonmember_set``,
    or ``attack.nonmember_fallback`` (with a WARNING) when the results have no item of it.

    Non-members must be of the members' kind; the fallback (e.g. typical held-out subjects
    for a request by subject ids, whose kind has none held out) is not, which is why it is
    logged and the report names it.
    """
    fallback = getattr(attack, "nonmember_fallback", None)
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
