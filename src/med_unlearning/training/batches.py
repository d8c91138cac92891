"""What the loop does with a batch it does not otherwise understand.

Batches are whatever a loader yields (the project's tasks yield the typed samples of
:mod:`med_unlearning.data.samples`; tests also use plain dicts); these helpers move every
tensor inside one to the device, name its items for error messages (its ``ids``) and count
its items for the history, without knowing the task that built it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

__all__ = ["Batch", "batch_ids", "count_items", "describe_batch", "move_to_device"]

#: Whatever a loader yields (a tensor, a mapping, a list or tuple of them, nested).
Batch = Any


def move_to_device(batch: Batch, device: torch.device, non_blocking: bool = True) -> Batch:
    """Move every tensor inside ``batch`` (nested dicts/lists/tuples) to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking and device.type == "cuda")
    if isinstance(batch, Mapping):
        return {key: move_to_device(value, device, non_blocking) for key, value in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(move_to_device(value, device, non_blocking) for value in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to_device(value, device, non_blocking) for value in batch)
    return batch


def batch_ids(batch: Batch) -> Any:
    """The ``ids`` of a batch: a named tuple's ``ids`` field or a mapping's ``"ids"`` entry.

    ``None`` when the batch has neither (or its ids are ``None``).
    """
    if isinstance(batch, tuple) and "ids" in getattr(batch, "_fields", ()):
        return batch.ids
    if isinstance(batch, Mapping):
        return batch.get("ids")
    return None


def describe_batch(batch: Batch) -> str:
    """Name the items of a batch for error messages (its ``ids`` entries when present)."""
    ids = batch_ids(batch)
    if ids is not None:
        return ", ".join(str(item) for item in (ids if isinstance(ids, Sequence) else [ids]))
    if isinstance(batch, (list, tuple)):
        parts = [describe_batch(part) for part in batch]
        named = [part for part in parts if part != "unnamed items"]
        return "; ".join(named) if named else "unnamed items"
    return "unnamed items"


def count_items(batch: Batch) -> int:
    """How many items a batch holds (its ids, else the first tensor's leading dimension)."""
    ids = batch_ids(batch)
    if ids is not None:
        return len(ids)
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0])
    if isinstance(batch, Mapping):
        for value in batch.values():
            if isinstance(value, torch.Tensor):
                return int(value.shape[0])
    if isinstance(batch, (list, tuple)) and batch:
        return count_items(batch[0])
    return 1
