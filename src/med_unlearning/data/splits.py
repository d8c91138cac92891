"""Seeded, by-item splits of a metadata table into retain/forget train, validation and test.

Task-agnostic: it works on any metadata table (pandas) with one row per item (a fastMRI
volume, an MRBrainS18 subject) and an id column. Items are never divided: every slice of a
volume, every voxel of a subject, goes where its item goes. With ``group_column`` (e.g.
``patient_id``) whole groups move together, so no patient is on both sides of any split.

Roles (:data:`ROLES`):

- ``retain_train`` / ``forget_train`` — training items; the original model trains on both,
  the oracle on ``retain_train`` only; unlearning forgets ``forget_train`` (UA is measured
  on it).
- ``retain_val`` — validation, taken from the retain side only, so that the oracle never
  sees (nor is tuned on) forget data and both models are validated on the same items.
- ``forget_val`` — forget-domain items no model trains on and no test uses: the data a
  selection of unlearning settings may look at (how far a run moved the forget domain),
  so that no setting is ever chosen on ``forget_test``. Training never validates on them
  (the oracle's validation stays retain-only).
- ``retain_test`` / ``forget_test`` — held out; the study's BTA and KTA test sets.
- ``unused`` — items left over when ``retain_train``/``forget_train`` are capped.

The assignment depends only on the seed, the ids and the counts: items are sorted by id
before a seeded shuffle, and the retain and forget sides use independent streams, so
changing a forget count never reshuffles the retain side.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from med_unlearning.data.query import QueryError, evaluate_query, parse_query
from med_unlearning.ids import AmbiguousIdError, match_item_ids

__all__ = [
    "FORGET_TRAIN",
    "FORGET_TEST",
    "FORGET_VAL",
    "RETAIN_TEST",
    "RETAIN_TRAIN",
    "RETAIN_VAL",
    "ROLES",
    "ROLE_COLUMN",
    "UNUSED",
    "ForgetSelector",
    "SplitCounts",
    "SplitError",
    "assign_roles",
    "ids_with_roles",
    "split_by_selector",
]

RETAIN_TRAIN = "retain_train"
FORGET_TRAIN = "forget_train"
RETAIN_VAL = "retain_val"
FORGET_VAL = "forget_val"
RETAIN_TEST = "retain_test"
FORGET_TEST = "forget_test"
UNUSED = "unused"

#: Every role an item can get, in reporting order.
ROLES = (RETAIN_TRAIN, FORGET_TRAIN, RETAIN_VAL, FORGET_VAL, RETAIN_TEST, FORGET_TEST, UNUSED)

ROLE_COLUMN = "role"


class SplitError(ValueError):
    """A split or forget selection that cannot be made; the message says why and what to change."""


@dataclass(frozen=True)
class ForgetSelector:
    """Which items form the forget set: exactly one of three ways.

    Attributes:
        column: a metadata column; with ``values``, select the rows whose value is in it
            (e.g. ``anatomy`` in ``["knee"]``, ``scanner_model`` in ``["Skyra"]``).
        values: the values of ``column`` to select.
        query: a query over the metadata in the safe language of
            :mod:`med_unlearning.data.query` (e.g. ``"num_slices > 30"``).
        ids: explicit item ids (e.g. a GDPR erasure request).
    """

    column: str | None = None
    values: tuple[Any, ...] = ()
    query: str | None = None
    ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(self.values))
        object.__setattr__(self, "ids", tuple(str(item) for item in self.ids))
        ways = [self.column is not None, self.query is not None, bool(self.ids)]
        if sum(ways) != 1:
            raise SplitError(
                "a forget selector needs exactly one of: column + values, query, ids; got "
                f"{self.describe()}"
            )
        if self.column is not None and not self.values:
            raise SplitError(f"forget selector column={self.column!r} needs a non-empty 'values'")
        if self.column is None and self.values:
            raise SplitError("forget selector 'values' given without a 'column'")
        if self.query is not None:
            try:
                parse_query(self.query, "forget selector query")
            except QueryError as error:
                raise SplitError(str(error)) from None

    def describe(self) -> str:
        """A short human-readable form, e.g. ``anatomy in ['knee']``."""
        if self.column is not None:
            return f"{self.column} in {list(self.values)}"
        if self.query is not None:
            return f"query {self.query!r}"
        if self.ids:
            shown = list(self.ids[:5])
            more = f" (+{len(self.ids) - 5} more)" if len(self.ids) > 5 else ""
            return f"ids {shown}{more}"
        return "nothing"

    def select(self, metadata: pd.DataFrame, id_column: str) -> pd.Series:
        """A boolean Series (aligned with ``metadata``): True for the forget items.

        Raises:
            SplitError: unknown column or ids, or a query pandas cannot evaluate.
        """
        if id_column not in metadata.columns:
            raise SplitError(
                f"metadata has no id column {id_column!r}; columns: {list(metadata.columns)}"
            )
        if self.column is not None:
            if self.column not in metadata.columns:
                raise SplitError(
                    f"forget selector column {self.column!r} is not in the metadata; "
                    f"columns: {list(metadata.columns)}"
                )
            return metadata[self.column].isin(list(self.values))
        if self.query is not None:
            try:
                return evaluate_query(self.query, metadata, "forget selector query")
            except QueryError as error:
                raise SplitError(str(error)) from None
        known = set(metadata[id_column].astype(str))
        try:  # 70 names "070" when unambiguous (see med_unlearning.ids)
            ids = match_item_ids(self.ids, known, "forget selector ids")
        except AmbiguousIdError as error:
            raise SplitError(str(error)) from None
        unknown = sorted(set(ids) - known)
        if unknown:
            raise SplitError(f"forget selector ids not found in the metadata: {unknown}")
        return metadata[id_column].astype(str).isin(ids)

    def __repr__(self) -> str:
        return f"ForgetSelector({self.describe()})"


@dataclass(frozen=True)
class SplitCounts:
    """How many items (or groups) go to each held-out role, and optional training caps.

    Attributes:
        retain_val: retain items for validation (>= 1).
        retain_test: retain items held out for testing (>= 1).
        forget_test: forget items held out for testing (>= 1).
        forget_val: forget items held out for validation / selection (>= 0; never
            trained on, never tested on).
        retain_train: cap on retain training items (``None`` = all the rest).
        forget_train: cap on forget training items (``None`` = all the rest).
    """

    retain_val: int
    retain_test: int
    forget_test: int
    retain_train: int | None = None
    forget_train: int | None = None
    forget_val: int = 0

    def __post_init__(self) -> None:
        if self.forget_val < 0:
            raise SplitError(f"split count forget_val must be >= 0, got {self.forget_val}")
        for name in ("retain_val", "retain_test", "forget_test"):
            if getattr(self, name) < 1:
                raise SplitError(
                    f"split count {name} must be >= 1 (zero items left for "
                    f"{'validation' if name == 'retain_val' else 'testing'}), got "
                    f"{getattr(self, name)}"
                )
        for name in ("retain_train", "forget_train"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise SplitError(f"split cap {name} must be >= 1 or null, got {value}")


def _units(metadata: pd.DataFrame, id_column: str, group_column: str | None) -> pd.Series:
    """The unit each row moves with: its group, or the item itself."""
    if group_column is None:
        return metadata[id_column].astype(str)
    if group_column not in metadata.columns:
        raise SplitError(
            f"split group column {group_column!r} is not in the metadata; "
            f"columns: {list(metadata.columns)}"
        )
    groups = metadata[group_column]
    if groups.isna().any():
        missing = metadata.loc[groups.isna(), id_column].astype(str).tolist()
        raise SplitError(f"split group column {group_column!r} is empty for items {missing}")
    return groups.astype(str)


def _check_ids(metadata: pd.DataFrame, id_column: str) -> None:
    if id_column not in metadata.columns:
        raise SplitError(
            f"metadata has no id column {id_column!r}; columns: {list(metadata.columns)}"
        )
    ids = metadata[id_column].astype(str)
    duplicated = sorted(ids[ids.duplicated()].unique())
    if duplicated:
        raise SplitError(f"metadata lists these ids more than once: {duplicated}")


def _shuffled(units: Iterable[str], seed: int, stream: int) -> list[str]:
    ordered = sorted(set(units))
    rng = np.random.default_rng([int(seed), stream])
    return [ordered[index] for index in rng.permutation(len(ordered))]


def _take(units: list[str], plan: Sequence[tuple[str, int | None]]) -> dict[str, str]:
    roles: dict[str, str] = {}
    position = 0
    for role, count in plan:
        end = len(units) if count is None else min(len(units), position + count)
        for unit in units[position:end]:
            roles[unit] = role
        position = end
    for unit in units[position:]:
        roles[unit] = UNUSED
    return roles


def assign_roles(
    metadata: pd.DataFrame,
    is_forget: pd.Series,
    counts: SplitCounts,
    seed: int,
    id_column: str = "id",
    group_column: str | None = None,
    *,
    forget_description: str = "the forget selector",
) -> pd.Series:
    """Give every item a role (see the module docstring).

    Args:
        metadata: one row per item.
        is_forget: boolean, aligned with ``metadata``: True for forget items.
        counts: held-out counts and training caps (in items, or groups with ``group_column``).
        seed: the split's seed.
        id_column: the items' id column.
        group_column: optional column whose groups must stay together (e.g. patient).
        forget_description: how the forget set was chosen, for error messages.

    Returns:
        The roles, a string Series aligned with ``metadata``.

    Raises:
        SplitError: duplicate ids; a forget set that is empty or everything; a group with
            items on both sides; too few items for the requested validation/test counts.
    """
    _check_ids(metadata, id_column)
    is_forget = pd.Series(np.asarray(is_forget, dtype=bool), index=metadata.index)
    total = len(metadata)
    if total == 0:
        raise SplitError("the metadata table is empty: no items to split")
    forget_total = int(is_forget.sum())
    if forget_total == 0:
        raise SplitError(f"{forget_description} matches no item (of {total}); nothing to forget")
    if forget_total == total:
        raise SplitError(
            f"{forget_description} matches every item ({total}); nothing would be retained"
        )
    units = _units(metadata, id_column, group_column)
    sides = pd.DataFrame({"unit": units, "forget": is_forget}).groupby("unit")["forget"].nunique()
    mixed = sorted(sides[sides > 1].index)
    if mixed:
        raise SplitError(
            f"retain/forget overlap: groups of {group_column!r} {mixed} have items on both "
            f"sides of {forget_description}; a group must be entirely retained or forgotten"
        )
    retain_units = _shuffled(units[~is_forget], seed, stream=0)
    forget_units = _shuffled(units[is_forget], seed, stream=1)
    unit_name = "items" if group_column is None else f"groups of {group_column!r}"
    needed_retain = counts.retain_test + counts.retain_val + 1
    if len(retain_units) < needed_retain:
        raise SplitError(
            f"only {len(retain_units)} retain {unit_name}; need retain_test "
            f"({counts.retain_test}) + retain_val ({counts.retain_val}) + at least 1 for "
            "training: lower the counts or add data"
        )
    if len(forget_units) < counts.forget_test + counts.forget_val + 1:
        raise SplitError(
            f"only {len(forget_units)} forget {unit_name} ({forget_description}); need "
            f"forget_test ({counts.forget_test}) + forget_val ({counts.forget_val}) + at "
            "least 1 for training: lower the counts or add data"
        )
    roles = _take(
        retain_units,
        [(RETAIN_TEST, counts.retain_test), (RETAIN_VAL, counts.retain_val),
         (RETAIN_TRAIN, counts.retain_train)],
    )
    roles.update(
        _take(
            forget_units,
            # forget_val after forget_test: adding validation never changes the test items
            [(FORGET_TEST, counts.forget_test), (FORGET_VAL, counts.forget_val),
             (FORGET_TRAIN, counts.forget_train)],
        )
    )
    return units.map(roles).rename(ROLE_COLUMN)


def split_by_selector(
    metadata: pd.DataFrame,
    selector: ForgetSelector,
    counts: SplitCounts,
    seed: int,
    id_column: str = "id",
    group_column: str | None = None,
    keep_columns: Sequence[str] = (),
    include: str | None = None,
) -> pd.DataFrame:
    """Select the forget set and split: the splits table, sorted by id.

    Args:
        metadata: one row per item.
        selector: which items form the forget set.
        counts: held-out counts and training caps.
        seed: the split's seed.
        id_column: the items' id column.
        group_column: optional column whose groups must stay together.
        keep_columns: metadata columns copied into the table (e.g. ``anatomy``).
        include: optional query (:mod:`med_unlearning.data.query`) choosing the items the
            study uses at all (e.g.
            ``"acquisition in ['AXT2', 'CORPD_FBK', 'CORPDFS_FBK']"`` for the study's T2
            brains and knees); the others get the role ``unused``.

    Returns:
        Columns ``[id_column, *keep_columns, "role"]``, one row per item.

    Raises:
        SplitError: see :meth:`ForgetSelector.select` and :func:`assign_roles`; also a
            ``keep_columns`` entry missing from the metadata, or an ``include`` query that
            fails or keeps nothing.
    """
    missing = [column for column in keep_columns if column not in metadata.columns]
    if missing:
        raise SplitError(
            f"columns {missing} are not in the metadata; columns: {list(metadata.columns)}"
        )
    _check_ids(metadata, id_column)
    used = metadata
    if include is not None:
        try:
            used = metadata[evaluate_query(include, metadata, "include query").to_numpy()]
        except QueryError as error:
            raise SplitError(str(error)) from None
        if used.empty:
            raise SplitError(f"include query {include!r} keeps no item of {len(metadata)}")
    is_forget = selector.select(used, id_column)
    roles = assign_roles(
        used, is_forget, counts, seed, id_column, group_column,
        forget_description=f"the forget selector ({selector.describe()})",
    )
    table = metadata[[id_column, *keep_columns]].copy()
    table[id_column] = table[id_column].astype(str)
    table[ROLE_COLUMN] = roles.reindex(metadata.index).fillna(UNUSED).to_numpy()
    return table.sort_values(id_column, kind="stable").reset_index(drop=True)


def ids_with_roles(splits: pd.DataFrame, roles: Iterable[str], id_column: str = "id") -> list[str]:
    """The ids of ``splits`` whose role is one of ``roles``, sorted.

    Raises:
        SplitError: an unknown role name, or a table without the id/role columns.
    """
    roles = list(roles)
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise SplitError(f"unknown split roles {unknown}; known: {list(ROLES)}")
    for column in (id_column, ROLE_COLUMN):
        if column not in splits.columns:
            raise SplitError(
                f"splits table has no {column!r} column; columns: {list(splits.columns)}"
            )
    selected = splits.loc[splits[ROLE_COLUMN].isin(roles), id_column].astype(str)
    return sorted(selected)
