"""Selective Synaptic Dampening (SSD; Foster, Schoepf & Brintrup, AAAI 2024): no retraining.

SSD estimates how much each parameter matters to the forget set and to the reference data
with the diagonal of the Fisher information — the mean over batches of the squared gradient
of the task loss, ``I_D[θ] = E_batches[(∂L/∂θ)²]`` — and dampens the parameters that matter
far more to the forget set:

    selected where  I_f[θ] > α · I_r[θ]
    θ ← θ · min(λ · I_r[θ] / I_f[θ], 1)   on the selected parameters, unchanged elsewhere.

The reference importance ``I_r`` is computed on the retain data (``reference: retain``) or
on the whole training data as the retain ∪ forget batches (``retain_and_forget``, the
paper's D). Importances are computed with the model in eval mode (no normalisation
statistic moves, dropout off), so the same data give bit-identical importances and SSD then
touches nothing. Only the ``trainable`` part of the network is dampened.

Of the common strategy keys SSD uses ``trainable``, ``retain_fraction`` and
``max_steps_per_epoch`` (batches per importance pass); the optimiser keys do not apply.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import pandas as pd
import torch
from pydantic import Field
from torch import nn
from tqdm.auto import tqdm

from med_unlearning.tasks.base import Batch, Task
from med_unlearning.training import move_to_device
from med_unlearning.unlearning.common import StrategyParams, trainable_parameters
from med_unlearning.unlearning.registry import StrategyResult, UnlearningRun, register_strategy

__all__ = [
    "Importance",
    "SSDParams",
    "apply_dampening",
    "dampening_factors",
    "diagonal_fisher",
    "selective_synaptic_dampening",
]

logger = logging.getLogger(__name__)


class SSDParams(StrategyParams):
    """SSD's parameters (the paper's defaults: α = 10, λ = 1).

    Attributes:
        selection_alpha: α > 0; a parameter is dampened when its forget importance exceeds
            α times its reference importance.
        dampening_lambda: λ > 0; the selected parameters are multiplied by
            ``min(λ · I_r / I_f, 1)``.
        reference: ``retain`` (importance on the retain data) or ``retain_and_forget``
            (on all training data given, as in the paper).
    """

    selection_alpha: float = Field(default=10.0, gt=0)
    dampening_lambda: float = Field(default=1.0, gt=0)
    reference: Literal["retain", "retain_and_forget"] = "retain"


@dataclass(frozen=True)
class Importance:
    """Summed squared gradients per parameter name, and the number of batches summed."""

    sums: dict[str, torch.Tensor]
    batches: int

    def mean(self) -> dict[str, torch.Tensor]:
        """The diagonal Fisher estimate: the mean squared gradient per batch."""
        return {name: total / self.batches for name, total in self.sums.items()}

    def __add__(self, other: Importance) -> Importance:
        return Importance(
            {name: self.sums[name] + other.sums[name] for name in self.sums},
            self.batches + other.batches,
        )


def diagonal_fisher(
    task: Task,
    model: nn.Module,
    loader: Iterable[Batch],
    *,
    parameters: Mapping[str, nn.Parameter] | None = None,
    device: torch.device | None = None,
    max_batches: int | None = None,
    description: str = "importance",
    progress: bool = False,
) -> Importance:
    """Squared gradients of ``task.loss`` summed over the batches of ``loader``.

    Args:
        task: gives the loss.
        model: the network (put in eval mode here; its ``.grad`` fields are not touched).
        loader: the data.
        parameters: name → parameter to measure (default: those requiring grad).
        device: where batches go (default: the model's).
        max_batches: stop after this many batches.
        description: progress-bar and log label.
        progress: show a progress bar.

    Raises:
        ValueError: when the loader yields no batch.
    """
    if parameters is None:
        parameters = {name: p for name, p in model.named_parameters() if p.requires_grad}
    names = list(parameters)
    tensors = [parameters[name] for name in names]
    if device is None:
        device = tensors[0].device if tensors else torch.device("cpu")
    sums = {
        name: torch.zeros_like(tensor, dtype=torch.float32)
        for name, tensor in zip(names, tensors, strict=True)
    }
    model.eval()
    batches = 0
    try:
        total = len(loader)  # type: ignore[arg-type]
    except TypeError:
        total = None
    if max_batches is not None and total is not None:
        total = min(total, max_batches)
    with tqdm(total=total, desc=description, disable=not progress, leave=False) as bar:
        for batch in loader:
            batch = move_to_device(batch, device)
            with torch.enable_grad():
                loss = task.loss(model, batch)
                gradients = torch.autograd.grad(loss, tensors, allow_unused=True)
            for name, gradient in zip(names, gradients, strict=True):
                if gradient is not None:
                    sums[name] += gradient.detach().float().square()
            batches += 1
            bar.update(1)
            if max_batches is not None and batches >= max_batches:
                break
    if batches == 0:
        raise ValueError(f"{description}: the loader yielded no batch")
    logger.info("%s: squared gradients of %d batches", description, batches)
    return Importance(sums, batches)


def dampening_factors(
    forget_importance: Mapping[str, torch.Tensor],
    reference_importance: Mapping[str, torch.Tensor],
    alpha: float,
    lam: float,
) -> dict[str, torch.Tensor]:
    """Per-element multipliers: ``min(λ·I_r/I_f, 1)`` where ``I_f > α·I_r``, else exactly 1."""
    factors = {}
    for name, forget in forget_importance.items():
        reference = reference_importance[name]
        selected = forget > alpha * reference
        ratio = lam * reference / torch.where(selected, forget, torch.ones_like(forget))
        factors[name] = torch.where(selected, ratio.clamp(max=1.0), torch.ones_like(forget))
    return factors


@torch.no_grad()
def apply_dampening(
    parameters: Mapping[str, nn.Parameter], factors: Mapping[str, torch.Tensor]
) -> dict[str, int]:
    """Multiply each parameter in place by its factors; only elements with factor < 1 change.

    Returns:
        name → number of dampened elements.
    """
    counts = {}
    for name, factor in factors.items():
        parameter = parameters[name]
        dampened = factor < 1.0
        parameter.copy_(torch.where(dampened, parameter * factor.to(parameter.dtype), parameter))
        counts[name] = int(dampened.sum())
    return counts


@register_strategy(
    "ssd",
    SSDParams,
    needs_retain=True,
    family="baseline",
    description="selective synaptic dampening: shrink parameters whose Fisher importance on the "
    "forget set exceeds alpha times that on the retain data (no training)",
)
def selective_synaptic_dampening(run: UnlearningRun, params: SSDParams) -> StrategyResult:
    """SSD (see the module docstring)."""
    if run.retain_loader is None:
        raise ValueError("Strategy 'ssd' needs retain data but the run has none")
    start = time.perf_counter()
    model, task = run.model, run.task
    trainable_parameters(task, model, params.trainable)
    parameters = {name: p for name, p in model.named_parameters() if p.requires_grad}
    common = {
        "parameters": parameters,
        "max_batches": params.max_steps_per_epoch,
        "progress": run.loop.progress,
    }
    label = run.loop.description
    forget = diagonal_fisher(
        task, model, run.forget_loader, description=f"{label}:ssd forget", **common
    )
    reference = diagonal_fisher(
        task, model, run.retain_loader, description=f"{label}:ssd retain", **common
    )
    if params.reference == "retain_and_forget":
        reference = reference + forget
    factors = dampening_factors(
        forget.mean(), reference.mean(), params.selection_alpha, params.dampening_lambda
    )
    counts = apply_dampening(parameters, factors)
    model.requires_grad_(True).train()
    total = sum(parameter.numel() for parameter in parameters.values())
    dampened = sum(counts.values())
    selected_factors = [factor[factor < 1.0] for factor in factors.values()]
    mean_factor = float(torch.cat(selected_factors).mean()) if dampened else 1.0
    wall = time.perf_counter() - start
    logger.info(
        "ssd: dampened %d of %d parameters (%.3f%%), mean factor %.3g, %.1fs",
        dampened, total, 100.0 * dampened / max(total, 1), mean_factor, wall,
    )
    row = {
        "epoch": 1,
        "dampened_parameters": dampened,
        "dampened_fraction": dampened / max(total, 1),
        "mean_factor": mean_factor,
        "forget_batches": forget.batches,
        "reference_batches": reference.batches,
        "epoch_time_s": wall,
    }
    return StrategyResult(
        model=model,
        history=pd.DataFrame([row]),
        extras={
            "dampened_parameters": dampened,
            "total_parameters": total,
            "dampened_per_tensor": {name: n for name, n in counts.items() if n},
            "mean_factor": mean_factor,
        },
    )
