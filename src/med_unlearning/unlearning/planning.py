"""Planning one unlearning run: which items it forgets and which retain items it uses.

:func:`plan_unlearning` resolves a forget request against the parent checkpoint and draws
the run's seeded retain subset into an :class:`UnlearningPlan`; :func:`alias_target` finds
the retain-sweep variant a run would repeat exactly (same retain subset), so it is not run
twice.
Planning draws no random numbers but the retain subset's own seeded ones, and needs no model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from med_unlearning.unlearning.requests import (
    ForgetRequest,
    ForgetRequestError,
    ResolvedRequest,
    check_parent_manifest,
    resolve_request,
    sample_retain_subset,
    with_roles,
)

__all__ = ["UnlearningPlan", "alias_target", "plan_unlearning"]


@dataclass(frozen=True)
class UnlearningPlan:
    """Which items one run forgets and which retain items it uses.

    Attributes:
        resolved: the resolved request (forget ids, retain pool).
        retain_ids: the retain subset the run uses (empty when the strategy needs none).
        retain_fraction: the fraction that subset was drawn with (``None`` without retain).
    """

    resolved: ResolvedRequest
    retain_ids: list[str]
    retain_fraction: float | None

    @classmethod
    def from_ids(cls, forget_ids: Sequence[str], retain_ids: Sequence[str] = ()) -> UnlearningPlan:
        """A plan that forgets ``forget_ids`` and retains on all of ``retain_ids`` (a request
        by ids, already resolved: for library callers that know their items; the pipeline
        resolves requests with :func:`plan_unlearning`)."""
        request = ForgetRequest(ids=tuple(map(str, forget_ids)))
        retain = [str(item) for item in retain_ids]
        resolved = ResolvedRequest(request, [str(item) for item in forget_ids], retain)
        return cls(resolved, retain, 1.0 if retain else None)

    @property
    def forget_ids(self) -> list[str]:
        """The items to forget."""
        return self.resolved.forget_ids

    def request_record(self) -> dict[str, Any]:
        """The request part of the erasure record (selector, resolved ids, retain subset)."""
        return {
            **self.resolved.to_record(),
            "retain_fraction": self.retain_fraction,
            "n_retain_used": len(self.retain_ids),
        }

    def __repr__(self) -> str:
        return (
            f"UnlearningPlan({self.resolved.request.describe()}: forget {len(self.forget_ids)}, "
            f"retain {len(self.retain_ids)} of {len(self.resolved.retain_ids)})"
        )


def plan_unlearning(
    request: ForgetRequest,
    metadata: pd.DataFrame,
    splits: pd.DataFrame | None,
    manifest: Sequence[str],
    *,
    id_column: str,
    needs_retain: bool,
    retain_fraction: float | None,
    seed: int,
    group_column: str | None = None,
    expected_manifest: Sequence[str] | None = None,
    parent: str = "the original checkpoint",
) -> UnlearningPlan:
    """Resolve a request against the parent and draw the run's retain subset.

    Args:
        request: what to forget.
        metadata: one row per item (the splits table's ``role`` is joined, so a request
            can select ``role == forget_train``).
        splits: the task's splits table (or ``None``).
        manifest: the parent checkpoint's ``data_manifest``.
        id_column: ``volume_id`` / ``subject_id``.
        needs_retain: whether the strategy uses retain data.
        retain_fraction: fraction of the retain pool to use (``None`` = all).
        seed: seed of the retain subset.
        group_column: metadata column whose groups are sampled together (e.g. patient).
        expected_manifest: the items the parent should have trained on (checked when given).
        parent: the parent's name in messages.

    Raises:
        ForgetRequestError / ParentMismatchError: see
            :func:`~med_unlearning.unlearning.requests.resolve_request`.
    """
    table = with_roles(metadata, splits, id_column)
    check_parent_manifest(manifest, table[id_column], expected_manifest, parent=parent)
    resolved = resolve_request(request, table, manifest, id_column=id_column, parent=parent)
    if not needs_retain:
        return UnlearningPlan(resolved, [], None)
    fraction = 1.0 if retain_fraction is None else float(retain_fraction)
    groups = None
    if group_column is not None:
        if group_column not in table.columns:
            raise ForgetRequestError(
                f"group_column {group_column!r} is not a metadata column; "
                f"columns: {list(table.columns)}"
            )
        groups = dict(zip(table[id_column], table[group_column].astype(str), strict=True))
    retain = sample_retain_subset(resolved.retain_ids, fraction, seed, groups)
    return UnlearningPlan(resolved, retain, fraction)


def alias_target(
    variant: str,
    fractions: Mapping[str, float],
    retain_ids_for: Callable[[float], Sequence[str]],
) -> str | None:
    """The smallest retain-sweep variant whose retain subset equals ``variant``'s, if any.

    Two fractions of a small retain pool can resolve to the same items (e.g. 1 % and 5 % of
    20 volumes are both one volume); the larger one would then repeat the smaller one's run
    exactly. Deterministic: it depends only on the fractions and ``retain_ids_for`` (the
    seeded subset drawn for a fraction).

    Args:
        variant: the variant being run (``r5``).
        fractions: every variant's fraction, in the sweep's order.
        retain_ids_for: the retain ids a fraction resolves to.

    Returns:
        The variant to alias (``r1``), or ``None`` when ``variant``'s subset is new.
    """
    order = list(fractions)
    own = float(fractions[variant])
    own_ids = sorted(map(str, retain_ids_for(own)))
    smaller = sorted(
        (
            name
            for name in order
            if name != variant
            and (
                float(fractions[name]) < own
                or (float(fractions[name]) == own and order.index(name) < order.index(variant))
            )
        ),
        key=lambda name: (float(fractions[name]), order.index(name)),
    )
    for name in smaller:
        if sorted(map(str, retain_ids_for(float(fractions[name])))) == own_ids:
            return name
    return None
