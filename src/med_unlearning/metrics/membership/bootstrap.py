"""The attack's figures with intervals: AUC and TPR at a low FPR, bootstrapped over groups.

Member and non-member volumes / subjects are resampled with replacement (all slices of a
drawn group come along; folds and scores fixed), with the same draws for every model of a
task, so differences between models (the AUC minus the oracle's) are paired.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score, roc_curve

__all__ = ["GroupBootstrap", "attack_metrics", "tpr_at_fpr"]


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, fpr: float) -> float:
    """The largest true-positive rate of the ROC curve at a false-positive rate ≤ ``fpr``."""
    false_positive, true_positive, _ = roc_curve(labels, scores)
    allowed = false_positive <= fpr + 1e-12
    return float(true_positive[allowed].max()) if allowed.any() else 0.0


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
