"""The loop's per-epoch validation pass: timed apart, in eval mode, averaged over ranks.

Validation time is kept out of the optimisation wall time (the study's cost rule), so the
pass is bracketed by CUDA synchronisations: the time measured is the validation's own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import torch
from torch import nn

from med_unlearning.distributed import DistributedContext, all_reduce_mean

__all__ = ["ValidateFn", "mean_over_ranks", "synchronize", "validate_epoch"]

ValidateFn = Callable[[nn.Module], Mapping[str, float]]


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA only), so a timer reads finished work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def mean_over_ranks(metrics: dict[str, float], ctx: DistributedContext) -> dict[str, float]:
    """Average validation metrics over ranks (sorted keys: the same collectives everywhere)."""
    if not ctx.enabled:
        return metrics
    return {key: all_reduce_mean(metrics[key], ctx) for key in sorted(metrics)}


def validate_epoch(
    model: nn.Module, validate: ValidateFn, ctx: DistributedContext, device: torch.device
) -> dict[str, float]:
    """Run ``validate`` on ``model`` in eval mode without gradients.

    Returns:
        Its metrics as floats (averaged over ranks under DDP) plus ``val_time_s``.
    """
    synchronize(device)
    val_start = time.perf_counter()
    model.eval()
    with torch.no_grad():
        metrics = {key: float(value) for key, value in validate(model).items()}
    row = mean_over_ranks(metrics, ctx)
    synchronize(device)
    row["val_time_s"] = time.perf_counter() - val_start
    return row
