"""What the loop does with a batch it does not otherwise understand.

Batches are whatever a loader yields; these helpers move every tensor inside one to the
device, name its items for error messages (its ``"ids"`` entries) and count its items for
the history, without knowing the task that built it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

__all__ = ["Batch", "count_items", "describe_batch", "move_to_device"]

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


def describe_batch(batch: Batch) -> str:
    """Name the items of a batch for error messages (its ``ids`` entries when present)."""
    if isinstance(batch, Mapping) and "ids" in batch:
        ids = batch["ids"]
        return ", ".join(str(item) for item in (ids if isinstance(ids, Sequence) else [ids]))
    if isinstance(batch, (list, tuple)):
        parts = [describe_batch(part) for part in batch]
        named = [part for part in parts if part != "unnamed items"]
        return "; ".join(named) if named else "unnamed items"
    return "unnamed items"


def count_items(batch: Batch) -> int:
    """How many items a batch holds (its ids, else the first tensor's leading dimension)."""
    if isinstance(batch, Mapping) and "ids" in batch:
        return len(batch["ids"])
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0])
    if isinstance(batch, Mapping):
        for value in batch.values():
            if isinstance(value, torch.Tensor):
                return int(value.shape[0])
    if isinstance(batch, (list, tuple)) and batch:
        return count_items(batch[0])
    return 1
