"""What a hyper-parameter search minimises, computed from validation scores only.

Two declared objectives (see ``docs`` in the README, "Tuning"):

- ``oracle`` (research mode): the distance to the retrained oracle, in units of the verdict
  tolerances, on a retain criterion (e.g. SSIM on ``retain_val``) and a forget criterion
  (e.g. SSIM on the forget *training* items). Both are paired: the run and the oracle are
  compared item by item on the same volumes/subjects.
- ``oracle_free`` (practice: no retrained model at hand): keep retain quality (the run may
  lose at most nothing against the original on ``retain_val``: every tolerance unit lost
  counts), and make the forget items indistinguishable from never-seen items of the same
  kind (``forget_val``) by a loss attack: the AUC of "lower loss = member" over the forget
  training slices against the ``forget_val`` slices should be 0.5; each ``auc_tolerance``
  away from it, in either direction (over-forgetting is detectable too), counts one unit.
  Per-slice losses can be difficulty-calibrated by a model that never saw either side and
  costs no retraining (zero-filling for reconstruction).

Neither objective reads a test set: the callers pass tables restricted to validation sets
and training items (retain or forget).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from med_unlearning.metrics.membership import as_loss

__all__ = [
    "OBJECTIVES",
    "Criterion",
    "ObjectiveValue",
    "TuningObjectiveError",
    "item_losses",
    "loss_attack_auc",
    "oracle_free_objective",
    "oracle_objective",
    "paired_mean_difference",
]

#: The declared objectives.
OBJECTIVES = ("oracle", "oracle_free")


class TuningObjectiveError(ValueError):
    """The scores needed by an objective are missing (a set, a metric or a model)."""


@dataclass(frozen=True)
class Criterion:
    """A metric on an evaluation set, e.g. SSIM on ``retain_val``."""

    set: str
    metric: str

    def __str__(self) -> str:
        return f"{self.metric}@{self.set}"


@dataclass(frozen=True)
class ObjectiveValue:
    """One trial's objective (minimised) and the terms it is made of (for the trials table)."""

    value: float
    terms: Mapping[str, float] = field(default_factory=dict)


def _rows(table: pd.DataFrame, method: str, criterion: Criterion) -> pd.DataFrame:
    rows = table.loc[
        (table["method"] == method)
        & (table["set"] == criterion.set)
        & (table["metric"] == criterion.metric)
    ]
    if rows.empty:
        raise TuningObjectiveError(
            f"no {criterion} scores of model {method!r}: the objective needs them "
            f"(models present: {sorted(table['method'].unique())})"
        )
    return rows


def paired_mean_difference(
    table: pd.DataFrame, method: str, reference: str, criterion: Criterion
) -> float:
    """Mean over shared items of ``method − reference`` on ``criterion`` (items paired by id).

    Raises:
        TuningObjectiveError: a model lacks the criterion, or the two share no item.
    """
    own = _rows(table, method, criterion).groupby("item_id")["value"].mean()
    other = _rows(table, reference, criterion).groupby("item_id")["value"].mean()
    shared = own.index.intersection(other.index)
    if shared.empty:
        raise TuningObjectiveError(f"{method!r} and {reference!r} share no item on {criterion}")
    return float((own[shared] - other[shared]).mean())


def _tolerance(tolerances: Mapping[str, float], metric: str) -> float:
    if metric not in tolerances:
        raise TuningObjectiveError(
            f"no tolerance for metric {metric!r} (evaluation.verdicts.tolerances has "
            f"{sorted(tolerances)})"
        )
    return float(tolerances[metric])


def oracle_objective(
    table: pd.DataFrame,
    method: str,
    retain: Criterion,
    forget: Criterion,
    tolerances: Mapping[str, float],
    oracle: str = "oracle",
) -> ObjectiveValue:
    """Distance to the oracle in tolerance units: ``√((ΔR/tol_R)² + (ΔF/tol_F)²)``.

    ``ΔR`` and ``ΔF`` are paired mean differences ``method − oracle`` on the retain and the
    forget criterion. 0 = the oracle's behaviour on both; 1 = one tolerance away.
    """
    retain_gap = paired_mean_difference(table, method, oracle, retain)
    forget_gap = paired_mean_difference(table, method, oracle, forget)
    retain_units = retain_gap / _tolerance(tolerances, retain.metric)
    forget_units = forget_gap / _tolerance(tolerances, forget.metric)
    return ObjectiveValue(
        value=math.hypot(retain_units, forget_units),
        terms={
            f"gap_{retain}": retain_gap,
            f"gap_{forget}": forget_gap,
            "retain_units": retain_units,
            "forget_units": forget_units,
        },
    )


def item_losses(
    table: pd.DataFrame, method: str, set_name: str, metric: str, calibrate_by: str | None = None
) -> pd.Series:
    """Loss of each item (or slice) of ``set_name`` under ``method``, optionally calibrated.

    The loss is ``1 − value`` for SSIM/Dice, ``−value`` for other higher-is-better metrics
    and the value itself otherwise. With ``calibrate_by``, the loss of that model on the same
    item is subtracted (difficulty calibration: a hard item is hard for both).

    Args:
        table: tidy results or per-slice table (a ``slice`` column makes slices the items).

    Raises:
        TuningObjectiveError: no rows, or a calibration model without the same items.
    """
    criterion = Criterion(set_name, metric)
    keys = ["item_id", "slice"] if "slice" in table.columns else ["item_id"]

    def losses(model: str) -> pd.Series:
        rows = _rows(table, model, criterion)
        direction = bool(rows["higher_is_better"].iloc[0])
        series = rows.set_index(keys)["value"].astype(float)
        return as_loss(series, metric, direction).sort_index()

    own = losses(method)
    if calibrate_by is None:
        return own
    reference = losses(calibrate_by)
    missing = own.index.difference(reference.index)
    if len(missing):
        raise TuningObjectiveError(
            f"calibration model {calibrate_by!r} lacks {len(missing)} item(s) of {criterion}, "
            f"e.g. {list(missing[:3])}"
        )
    return own - reference[own.index]


def loss_attack_auc(member_losses: pd.Series, nonmember_losses: pd.Series) -> float:
    """AUC of the threshold attack "lower loss = member" (0.5 = members indistinguishable).

    Raises:
        TuningObjectiveError: fewer than one finite loss on either side.
    """
    members = np.asarray(member_losses, dtype=float)
    nonmembers = np.asarray(nonmember_losses, dtype=float)
    members, nonmembers = members[np.isfinite(members)], nonmembers[np.isfinite(nonmembers)]
    if not len(members) or not len(nonmembers):
        raise TuningObjectiveError(
            f"the loss attack needs finite losses on both sides, got {len(members)} member(s) "
            f"and {len(nonmembers)} non-member(s)"
        )
    labels = np.r_[np.ones(len(members)), np.zeros(len(nonmembers))]
    return float(roc_auc_score(labels, -np.r_[members, nonmembers]))


def oracle_free_objective(
    table: pd.DataFrame,
    slices: pd.DataFrame | None,
    method: str,
    retain: Criterion,
    member_set: str,
    nonmember_set: str,
    attack_metric: str,
    tolerances: Mapping[str, float],
    auc_tolerance: float,
    original: str = "original",
    calibrate_by: str | None = None,
) -> ObjectiveValue:
    """Retain quality kept against the original, and a forget set that looks unseen.

    ``√(lost² + ((AUC − 0.5)/auc_tolerance)²)`` where ``lost`` is the retain criterion's
    paired loss against the original in tolerance units (gains count 0) and AUC that of the
    loss attack, members = ``member_set`` (the forget training items), non-members =
    ``nonmember_set`` (``forget_val``), per slice when ``slices`` is given.
    """
    if auc_tolerance <= 0:
        raise ValueError(f"auc_tolerance must be > 0, got {auc_tolerance}")
    change = paired_mean_difference(table, method, original, retain)
    direction = bool(_rows(table, method, retain)["higher_is_better"].iloc[0])
    lost = max(0.0, -change if direction else change) / _tolerance(tolerances, retain.metric)
    source = table if slices is None or slices.empty else slices
    auc = loss_attack_auc(
        item_losses(source, method, member_set, attack_metric, calibrate_by),
        item_losses(source, method, nonmember_set, attack_metric, calibrate_by),
    )
    privacy_units = (auc - 0.5) / auc_tolerance
    return ObjectiveValue(
        value=math.hypot(lost, privacy_units),
        terms={
            f"change_{retain}": change,
            "retain_units_lost": lost,
            "attack_auc": auc,
            "privacy_units": privacy_units,
        },
    )
