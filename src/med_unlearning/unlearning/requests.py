"""Forget requests: which training items to erase, resolved and checked against the parent.

A :class:`ForgetRequest` selects items of a metadata table (one row per volume/subject) in
one of three ways — an id list (a GDPR erasure of given volumes or subjects), metadata
column value(s) (anatomy, scanner, site, diagnosis…, or the ``role`` a splits table gave an
item) or a query (anatomical outliers, e.g. ``"num_slices > 40"``) — using the same
:class:`~med_unlearning.data.splits.ForgetSelector` the task pipelines split with.

:func:`resolve_request` turns it into concrete forget ids and checks it against the parent
checkpoint's training manifest: unknown ids (listed), an empty selection, ids the parent
never trained on, a parent trained on other data than the request's dataset, a request that
leaves nothing to retain — each a :class:`ForgetRequestError` saying what to change.
Column and query selections keep only the items the parent trained on (a ``anatomy ==
knee`` request also matches held-out knee test volumes, which were never learnt); an
explicit id list must name trained items only.

:func:`sample_retain_subset` draws the retain subset (a seeded fraction of the retain
training items, by volume/subject or by a group such as the patient, never by slice;
nested: a smaller fraction's subset is inside a larger one's for the same seed).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from med_unlearning.data.splits import ROLE_COLUMN, ForgetSelector, SplitError
from med_unlearning.ids import AmbiguousIdError, match_item_ids

__all__ = [
    "ForgetRequest",
    "ForgetRequestError",
    "ParentMismatchError",
    "ResolvedRequest",
    "check_parent_manifest",
    "resolve_request",
    "sample_retain_subset",
    "with_roles",
]

logger = logging.getLogger(__name__)


class ForgetRequestError(ValueError):
    """A forget request that cannot be honoured; the message says which ids and why."""


class ParentMismatchError(ForgetRequestError):
    """The parent checkpoint was trained on other data than the request names."""


@dataclass(frozen=True)
class ForgetRequest:
    """What to forget: exactly one of ``ids``, ``column`` + ``values``, or ``query``.

    Attributes:
        ids: item ids (volume ids, subject ids).
        column: a metadata column; with ``values`` selects the rows whose value is in it.
        values: the values of ``column``.
        query: a query over the metadata table (:mod:`med_unlearning.data.query`).
        description: free text kept in the erasure record (e.g. the ticket number).
    """

    ids: tuple[str, ...] = ()
    column: str | None = None
    values: tuple[Any, ...] = ()
    query: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "ids", tuple(str(item) for item in self.ids))
        object.__setattr__(self, "values", tuple(self.values))
        try:
            self.selector()
        except SplitError as error:
            raise ForgetRequestError(f"forget request: {error}") from None

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> ForgetRequest:
        """Build from a parameters mapping (``ids`` / ``column`` + ``values`` / ``query``).

        Empty entries (``ids: []``, ``column: null``…) are ignored, so a parameters block
        may list every key.
        """
        return cls(
            ids=tuple(raw.get("ids") or ()),
            column=raw.get("column") or None,
            values=tuple(raw.get("values") or ()),
            query=raw.get("query") or None,
            description=str(raw.get("description") or ""),
        )

    @property
    def kind(self) -> str:
        """``ids``, ``column`` or ``query``."""
        if self.ids:
            return "ids"
        return "column" if self.column is not None else "query"

    def selector(self) -> ForgetSelector:
        """The shared domain selector."""
        return ForgetSelector(
            column=self.column, values=self.values, query=self.query, ids=self.ids
        )

    def describe(self) -> str:
        """Human-readable form, e.g. ``anatomy in ['knee']``."""
        return self.selector().describe()

    def to_record(self) -> dict[str, Any]:
        """JSON-ready form for the erasure record."""
        record: dict[str, Any] = {"by": self.kind, "selector": self.describe()}
        if self.kind == "ids":
            record["ids"] = list(self.ids)
        elif self.kind == "column":
            record.update(column=self.column, values=[_plain(value) for value in self.values])
        else:
            record["query"] = self.query
        if self.description:
            record["description"] = self.description
        return record


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


@dataclass(frozen=True)
class ResolvedRequest:
    """A request resolved against a dataset and a parent model.

    Attributes:
        request: the request.
        forget_ids: the items to forget (selected and trained on by the parent), sorted.
        retain_ids: the parent's other training items (the retain pool), sorted.
        selected_not_trained: items the selector matched that the parent never trained on
            (e.g. held-out test volumes of the forget anatomy); they need no forgetting.
    """

    request: ForgetRequest
    forget_ids: list[str]
    retain_ids: list[str]
    selected_not_trained: list[str] = field(default_factory=list)

    def to_record(self) -> dict[str, Any]:
        """JSON-ready form for the erasure record."""
        return {
            **self.request.to_record(),
            "forget_ids": list(self.forget_ids),
            "n_forget": len(self.forget_ids),
            "n_retain_pool": len(self.retain_ids),
            "selected_not_trained": list(self.selected_not_trained),
        }

    def __repr__(self) -> str:
        return (
            f"ResolvedRequest({self.request.describe()}: forget {len(self.forget_ids)} items, "
            f"retain pool {len(self.retain_ids)})"
        )


def with_roles(metadata: pd.DataFrame, splits: pd.DataFrame | None, id_column: str) -> pd.DataFrame:
    """The metadata table with the splits table's ``role`` column joined by id.

    So a request can name the split's forget set (``column: role, values: [forget_train]``).
    Metadata that already has a ``role`` column is returned unchanged.
    """
    table = metadata.copy()
    table[id_column] = table[id_column].astype(str)
    if splits is None or ROLE_COLUMN in table.columns or ROLE_COLUMN not in splits.columns:
        return table
    roles = dict(zip(splits[id_column].astype(str), splits[ROLE_COLUMN], strict=True))
    table[ROLE_COLUMN] = table[id_column].map(roles)
    return table


def check_parent_manifest(
    manifest: Sequence[str],
    known_ids: Iterable[str],
    expected_manifest: Sequence[str] | None = None,
    *,
    parent: str = "the parent checkpoint",
) -> None:
    """Check that the parent was trained on this dataset (and on the expected items).

    Args:
        manifest: the parent checkpoint's ``data_manifest``.
        known_ids: every id of the request's metadata table.
        expected_manifest: the items the parent should have trained on (e.g. the splits
            table's ``retain_train`` + ``forget_train``), or ``None`` to skip that check.
        parent: the parent's name in messages (e.g. ``recon.original.checkpoint``).

    Raises:
        ParentMismatchError: the manifest is empty, names ids the metadata does not know,
            or differs from ``expected_manifest`` (the differences are listed).
    """
    trained = {str(item) for item in manifest}
    if not trained:
        raise ParentMismatchError(f"{parent} records no training items (empty data_manifest)")
    unknown = sorted(trained - {str(item) for item in known_ids})
    if unknown:
        raise ParentMismatchError(
            f"{parent} was trained on {len(unknown)} items this dataset does not have "
            f"({_head(unknown)}): it was trained on other data than the request names. "
            "Retrain it on this data or point the catalog at the right checkpoint"
        )
    if expected_manifest is not None:
        expected = {str(item) for item in expected_manifest}
        missing, extra = sorted(expected - trained), sorted(trained - expected)
        if missing or extra:
            raise ParentMismatchError(
                f"{parent} was trained on other data than the splits table names: "
                f"not trained on {_head(missing)}; trained on items outside the training "
                f"roles {_head(extra)}. Retrain it with these splits (or use the splits it "
                "was trained with)"
            )


def _head(ids: Sequence[str], count: int = 8) -> str:
    shown = list(ids[:count])
    return f"{shown} (+{len(ids) - count} more)" if len(ids) > count else str(shown)


def resolve_request(
    request: ForgetRequest,
    metadata: pd.DataFrame,
    manifest: Sequence[str],
    *,
    id_column: str,
    parent: str = "the parent checkpoint",
) -> ResolvedRequest:
    """Resolve ``request`` on ``metadata`` and check it against the parent's ``manifest``.

    Args:
        request: what to forget.
        metadata: one row per item, with ``id_column`` and the columns the request uses
            (join a splits table's roles with :func:`with_roles`).
        manifest: the ids the parent checkpoint was trained on (its ``data_manifest``).
        id_column: the id column (``volume_id``, ``subject_id``).
        parent: the parent's name in messages.

    Returns:
        The forget ids (selected ∩ trained) and the retain pool (trained − forget).

    Raises:
        ForgetRequestError: unknown ids (listed), a bad column or query, an empty
            selection, ids the parent never trained on, or nothing left to retain.
        ParentMismatchError: the parent was trained on items this metadata does not know.
    """
    if id_column not in metadata.columns:
        raise ForgetRequestError(
            f"the metadata has no id column {id_column!r}; columns: {list(metadata.columns)}"
        )
    ids = metadata[id_column].astype(str)
    check_parent_manifest(manifest, ids, parent=parent)
    if request.kind == "ids":
        try:  # 70 names "070" when unambiguous (see med_unlearning.ids)
            request = replace(request, ids=tuple(match_item_ids(request.ids, ids, "forget ids")))
        except AmbiguousIdError as error:
            raise ForgetRequestError(f"forget request: {error}") from None
        unknown = sorted(set(request.ids) - set(ids))
        if unknown:
            raise ForgetRequestError(
                f"forget request names ids that are not in the dataset: {unknown} "
                f"(known ids, e.g. {sorted(ids)[:5]})"
            )
    try:
        mask = request.selector().select(metadata.assign(**{id_column: ids}), id_column)
    except SplitError as error:
        raise ForgetRequestError(f"forget request ({request.describe()}): {error}") from None
    selected = sorted(set(ids[np.asarray(mask, dtype=bool)]))
    if not selected:
        raise ForgetRequestError(
            f"forget request ({request.describe()}) selects no item of the dataset "
            f"({len(ids)} items)"
        )
    trained = {str(item) for item in manifest}
    forget = [item for item in selected if item in trained]
    not_trained = [item for item in selected if item not in trained]
    if request.kind == "ids" and not_trained:
        raise ForgetRequestError(
            f"forget request names items {not_trained} that {parent} was never trained on "
            "(they are not in its data_manifest): there is nothing to forget for them"
        )
    if not forget:
        raise ForgetRequestError(
            f"forget request ({request.describe()}) selects {len(selected)} items, none of "
            f"which {parent} was trained on ({_head(selected)}): nothing to forget"
        )
    retain = sorted(trained - set(forget))
    if not retain:
        raise ForgetRequestError(
            f"forget request ({request.describe()}) selects every item {parent} was trained "
            "on: nothing would be left to retain"
        )
    if not_trained:
        logger.info(
            "Forget request %s: %d selected items were never trained on and are skipped: %s",
            request.describe(),
            len(not_trained),
            _head(not_trained),
        )
    return ResolvedRequest(request, forget, retain, not_trained)


def sample_retain_subset(
    retain_ids: Sequence[str],
    fraction: float,
    seed: int,
    groups: Mapping[str, str] | None = None,
) -> list[str]:
    """A seeded fraction of the retain items, drawn by item or by group (never by slice).

    ``round(fraction × units)`` units (at least one) are taken from a seeded permutation of
    the sorted units, so the subset depends only on the seed, the ids and the fraction, and
    smaller fractions give subsets of larger ones.

    Args:
        retain_ids: the retain pool (volume or subject ids).
        fraction: in (0, 1]; 1 returns every item.
        seed: the seed of the permutation.
        groups: optional id -> group (e.g. patient) so a group's items move together.

    Returns:
        The chosen ids, sorted.

    Raises:
        ForgetRequestError: a fraction outside (0, 1] or an empty pool.
    """
    if not (isinstance(fraction, (int, float)) and 0.0 < fraction <= 1.0) or math.isnan(fraction):
        raise ForgetRequestError(f"retain fraction must be in (0, 1], got {fraction!r}")
    ids = sorted({str(item) for item in retain_ids})
    if not ids:
        raise ForgetRequestError("the retain pool is empty: no retain item to sample from")
    unit_of = {item: str(groups.get(item, item)) if groups else item for item in ids}
    units = sorted(set(unit_of.values()))
    count = max(1, int(round(fraction * len(units))))
    order = np.random.default_rng(seed).permutation(len(units))
    chosen = {units[index] for index in order[:count]}
    return [item for item in ids if unit_of[item] in chosen]
