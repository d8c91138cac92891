"""Item ids (volume, subject, request ids): one type for parameters, one rule for matching.

Kedro parses ``--params`` values (and the YAML files) as YAML, so
``--params "segmentation.split.test_subject_ids=[148]"`` hands the project the *integer*
148. :data:`ItemId` accepts integers as their decimal string form, so every id field of the
parameters takes ``148`` and ``"148"`` alike.

An integer cannot tell which string it was written as: ``70`` may have been meant as the
MRBrainS18 subject ``"070"``. :func:`match_item_ids` therefore matches a requested id that
is *not* a known id exactly by its numeric value, when it and the known id are both made of
digits and exactly one known id has that value (``70`` → ``"070"``); several candidates
(``"070"`` and ``"0070"``) are an error that lists them. An exact match always wins. Ids
that match nothing are returned unchanged: the caller reports them as unknown, as before.

YAML 1.1 (PyYAML, OmegaConf) also reads an *unquoted* ``070`` as the octal number 56 (and
``009`` as the string ``"009"``): write ids with leading zeros in quotes (``["070"]``).
When a requested id matches nothing but is the octal reading of a known id, a warning says
so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import BeforeValidator

__all__ = ["AmbiguousIdError", "ItemId", "as_item_id", "match_item_ids"]

logger = logging.getLogger(__name__)


class AmbiguousIdError(ValueError):
    """A requested id matches several known ids by numeric value; the message lists them."""


def as_item_id(value: Any) -> Any:
    """An integer id as its decimal string (``148`` -> ``"148"``); strings unchanged.

    Booleans and floats are not ids: they are returned unchanged, so pydantic's string
    check rejects them with its usual message naming the field.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


#: A string id that also accepts integers (YAML's reading of ``[148]``), as their string.
ItemId = Annotated[str, BeforeValidator(as_item_id)]


def match_item_ids(
    requested: Iterable[str | int], known: Iterable[Any], what: str = "ids"
) -> list[str]:
    """Map each requested id to the known id it names (see the module docstring).

    Args:
        requested: the ids a parameter or request names (ints are taken as their string).
        known: the ids that exist (e.g. the metadata's id column).
        what: the parameter's name, for messages (``segmentation.split.test_subject_ids``).

    Returns:
        The requested ids, in order, each replaced by the known id it matches: itself when
        known, else the one known id of the same numeric value; unmatched ids unchanged.

    Raises:
        AmbiguousIdError: a requested id matches several known ids by numeric value.
    """
    known_ids = sorted({str(item) for item in known})
    known_set = set(known_ids)
    by_value: dict[int, list[str]] = {}
    for item in known_ids:
        if item.isdigit():
            by_value.setdefault(int(item), []).append(item)
    matched: list[str] = []
    for raw in requested:
        item = str(as_item_id(raw))
        if item in known_set or not item.isdigit():
            matched.append(item)
            _warn_if_octal(item, known_set, what)
            continue
        candidates = by_value.get(int(item), [])
        if len(candidates) > 1:
            raise AmbiguousIdError(
                f"{what}: id {item!r} matches several ids by numeric value: {candidates}; "
                "write the one you mean as a quoted string"
            )
        if candidates:
            logger.info("%s: id %r taken as %r (same numeric value)", what, item, candidates[0])
            matched.append(candidates[0])
        else:
            matched.append(item)
            _warn_if_octal(item, known_set, what)
    return matched


def _warn_if_octal(item: str, known: set[str], what: str) -> None:
    """Warn when ``item`` is unknown but is YAML's octal reading of a known id."""
    if item in known or not item.isdigit():
        return
    octal = "0" + format(int(item), "o")
    if octal in known:
        logger.warning(
            "%s: id %r is not known, but an unquoted %s in YAML is read as the octal "
            "number %s; write it in quotes: '%s'",
            what, item, octal, item, octal,
        )

