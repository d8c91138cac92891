"""The attack on one model's (already calibrated, if at all) loss features."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from med_unlearning.metrics.membership.bootstrap import attack_metrics
from med_unlearning.metrics.membership.scorers import (
    MembershipInputError,
    as_feature_matrix,
    member_scores,
)

__all__ = ["MembershipAttackResult", "membership_inference_attack"]


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
    members = as_feature_matrix(member_features, "member_features")
    nonmembers = as_feature_matrix(nonmember_features, "nonmember_features")
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
