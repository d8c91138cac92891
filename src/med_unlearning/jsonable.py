"""Make values JSON-friendly: one helper for every record the project writes as JSON.

Erasure-request records, their verified copies and run summaries hold numpy and torch
scalars, tuples, sets and non-finite floats; :func:`jsonable` turns them into plain JSON
values (NaN and infinities become ``None``, which JSON can hold; anything else unknown
becomes its ``str``). It imports neither torch nor pandas: a torch tensor can only reach it
when torch is already imported.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["jsonable"]


def _is_torch_scalar(value: Any) -> bool:
    """Whether ``value`` is a one-element torch tensor (torch is looked up, not imported)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor) and value.numel() == 1


def jsonable(value: Any) -> Any:
    """``value`` with numpy/torch scalars, tuples and sets made JSON-friendly (NaN → None).

    Mappings keep their structure (keys as ``str``), sequences and sets become lists,
    numpy and one-element torch scalars their Python value, non-finite floats ``None``;
    ``None``, bools, ints, floats and strings stay as they are, anything else becomes its
    ``str``.
    """
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(item) for item in value]
    if _is_torch_scalar(value):
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
