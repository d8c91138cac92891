"""Member scores of every item: the threshold score, or a logistic regression scored out of
fold with folds grouped by volume / subject (no volume on both sides of a split)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

__all__ = [
    "MembershipInputError",
    "as_feature_matrix",
    "grouped_folds",
    "grouped_out_of_fold_scores",
    "member_scores",
    "threshold_scores",
]

#: L2 logistic regression solver (fast on a few dozen items).
_SOLVER = "newton-cg"


class MembershipInputError(ValueError):
    """The attack's features are malformed (wrong dimensions, mismatched lengths)."""


def as_feature_matrix(features: Any, name: str) -> np.ndarray:
    """``features`` as a float ``(items, features)`` matrix (a vector is one feature).

    Raises:
        MembershipInputError: more than 2 dimensions; ``name`` says which input.
    """
    array = np.asarray(features, dtype=float)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise MembershipInputError(
            f"{name}: expected per-item features of shape (items,) or (items, features), "
            f"got shape {array.shape}"
        )
    return array


def threshold_scores(features: np.ndarray) -> np.ndarray:
    """Member scores without fitting anything: minus the mean of the label-free standardised
    loss features (lower loss → more likely a member; with calibrated features: lower loss
    than the reference model's on the same item, the offline LiRA / Watson et al. score).

    Nothing is learned from the labels, so there is nothing to leak across folds and no
    cross-validation bias: on a model that never saw the members the AUC is centred on 0.5.
    Over-forgetting (members' loss above the reference's) gives an AUC below 0.5.
    """
    features = as_feature_matrix(features, "features")
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
    features = as_feature_matrix(features, "features")
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
