"""Overriding a selector block replaces it: the rule layered parameters follow for selectors.

Parameters are merged softly (an env file or ``--params`` that sets one key keeps that key's
siblings from base). For a selector — a block that picks items in exactly one of several
ways (``ids``, ``column`` + ``values``, ``query``) — a soft merge is wrong: base's
``request: {column: anatomy, values: [knee]}`` under an env's ``request: {ids: [...]}``
becomes ``{column, values, ids}``, which names two ways at once and fails validation.

The rule here: when a higher layer (an env over base, ``--params`` over the files) sets a
selector block using a way the lower layer's block does not use, the higher layer's block
replaces the lower one as a whole (base's ``description`` goes too). An override that keeps
the way merges softly as everywhere else, so ``--params unlearning.recon.request.values=[brain]``
keeps base's ``column``.

:data:`SELECTOR_BLOCKS` lists the selector blocks (``*`` matches any key, e.g. the task).
Segmentation's ``split.forget`` names its way in a ``by`` key (:data:`BY_SELECTOR_BLOCKS`):
an override that sets one way's keys without ``by`` (``--params
"segmentation.split.forget.ids=[070]"`` over base's ``by: column``) switches ``by`` to that
way, so the override is what is used rather than silently ignored.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, MutableMapping
from typing import Any

__all__ = ["BY_SELECTOR_BLOCKS", "SELECTOR_BLOCKS", "SELECTOR_WAYS", "drop_overridden_selectors"]

#: Paths of the selector blocks in the parameters tree.
SELECTOR_BLOCKS: tuple[tuple[str, ...], ...] = (
    ("unlearning", "*", "request"),
    ("recon", "forget"),
)

#: Selector blocks whose ``by`` key names the way in use (all ways' keys may be present).
BY_SELECTOR_BLOCKS: tuple[tuple[str, ...], ...] = (("segmentation", "split", "forget"),)

#: The ways a selector can pick items, each with its keys.
SELECTOR_WAYS: dict[str, frozenset[str]] = {
    "ids": frozenset({"ids"}),
    "column": frozenset({"column", "values"}),
    "query": frozenset({"query"}),
}


def _blocks(
    lower: Any, upper: Any, path: tuple[str, ...]
) -> list[tuple[MutableMapping[str, Any], Mapping[str, Any]]]:
    """Pairs (lower block, upper block) at ``path`` where both layers have a mapping."""
    if not path:
        if isinstance(lower, MutableMapping) and isinstance(upper, Mapping):
            return [(lower, upper)]
        return []
    if not isinstance(lower, MutableMapping) or not isinstance(upper, Mapping):
        return []
    head, rest = path[0], path[1:]
    keys = [key for key in upper if key in lower] if head == "*" else (
        [head] if head in upper and head in lower else []
    )
    pairs = []
    for key in keys:
        pairs.extend(_blocks(lower[key], upper[key], rest))
    return pairs


def _ways(block: Mapping[str, Any]) -> set[str]:
    """The selector ways (``ids``, ``column``, ``query``) whose keys ``block`` sets."""
    return {way for way, keys in SELECTOR_WAYS.items() if keys & set(block)}


def drop_overridden_selectors(lower: Any, upper: Any) -> Any:
    """A copy of ``lower`` without the selector keys that ``upper`` overrides.

    Args:
        lower: the lower layer (a parameters mapping: base, or the merged files).
        upper: the layer merged on top (an env's parameters, or the runtime ``--params``).

    Returns:
        ``lower`` (a deep copy), where each selector block that ``upper`` sets using a way
        (``ids``, ``column`` + ``values``, ``query``) the lower block does not use is
        emptied, so that merging ``upper`` over the result replaces it.
    """
    if not isinstance(lower, Mapping) or not isinstance(upper, Mapping):
        return lower
    result = copy.deepcopy(lower)
    if not isinstance(result, MutableMapping):
        return lower
    for path in SELECTOR_BLOCKS:
        for low, high in _blocks(result, upper, path):
            if _ways(high) - _ways(low):
                low.clear()
    for path in BY_SELECTOR_BLOCKS:
        for low, high in _blocks(result, upper, path):
            used = _ways(high)
            if "by" not in high and len(used) == 1:
                low["by"] = next(iter(used))
    return result
