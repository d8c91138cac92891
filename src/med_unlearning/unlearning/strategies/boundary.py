"""Bilevel boundary unlearning with a perturbed sign gradient (docs/studies.md §3).

**Inner level** (on the frozen original f₀, no training): every forget input ``x`` is moved
by one perturbed sign-gradient step inside an L∞ ball
(:func:`~med_unlearning.unlearning.strategies._perturbation.perturbed_sign_step`):
``x' = clip_ε(x + η·sign(∇_x L(f₀(x), y)) − λ_t·(x' − x) + γ·z)``, with ε, η and γ relative
to each item's input scale (``scale_reference``: its value range by default, so the study's
ε = 0.1 on [0, 1] images keeps its meaning on z-scored volumes and raw-scale k-space), a
closeness weight λ_t following a schedule over the passes t = 1 … T (constant, 1/t,
exponential, linear) and noise z from a Gaussian, Laplace, Cauchy or uniform distribution.

The forget item's **new target** is the frozen model's output at ``x'``
(:func:`boundary_target`):

- class-index targets (segmentation): per voxel, the *nearest wrong class*, i.e. the argmax
  of f₀(x')'s logits over every class except the true one (with ``soft_targets``: the
  softmax of those logits with the true class removed); ignored voxels stay ignored;
- image targets (reconstruction): f₀(x') itself, an adversarial pseudo-target inside the
  ε-ball.

**Outer level**: ``criterion(f(x_f), new target) + φ · retain term``, the retain term being
the task loss on retain labels (``retain_mode: labels``) or distillation to the frozen
model's retain outputs (``distillation``). SGD, lr 1e-5, momentum 0.9, 10 passes over the
forget batches by default (the study's recipe; see the parameters block for the sample
data's scaled values).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from med_unlearning.data.labels import IGNORE_INDEX
from med_unlearning.tasks.base import Batch, Task
from med_unlearning.training import train
from med_unlearning.unlearning.common import (
    PairedParams,
    TermTracker,
    loop_for,
    make_optimizer,
)
from med_unlearning.unlearning.pairing import Drive, PairedBatches
from med_unlearning.unlearning.registry import StrategyResult, UnlearningRun, register_strategy
from med_unlearning.unlearning.strategies._perturbation import (
    ClosenessSchedule,
    NoiseDistribution,
    ScaleReference,
    closeness_weight,
    input_scale,
    perturbed_sign_step,
    sample_noise,
)

__all__ = [
    "BoundaryParams",
    "boundary",
    "boundary_inputs",
    "boundary_target",
    "nearest_wrong_class",
]

logger = logging.getLogger(__name__)


class BoundaryParams(PairedParams):
    """Boundary unlearning (perturbed sign gradient), plus the common strategy keys.

    Defaults are the study's: SGD lr 1e-5, momentum 0.9, no weight decay, ``epochs`` = 10
    passes over the forget batches (``pairing: forget``), ε = 0.1.

    Attributes:
        epsilon: ε, radius of the L∞ ball, relative to ``scale_reference``.
        step_size: η, the sign step, same units (``null`` = ε: the step reaches the ball).
        scale_reference: what ε, η, γ are relative to, per item: ``range`` (max − min),
            ``std`` or ``absolute`` (input units).
        closeness: λ >= 0, the pull of ``x'`` back towards ``x``.
        closeness_schedule: λ_t over the passes: ``constant``, ``inverse`` (λ/t),
            ``exponential`` (λ·decay^(t−1)), ``linear`` (λ·(T−t+1)/T).
        closeness_decay: the exponential schedule's factor, in (0, 1].
        noise_scale: γ >= 0, the noise's scale parameter (relative, like ε).
        noise_distribution: ``gaussian``, ``laplace``, ``cauchy`` or ``uniform``.
        soft_targets: segmentation: soft targets (softmax over the wrong classes) instead
            of the nearest wrong class.
        retain_weight: φ >= 0, weight of the retain term (0 = forget term only).
        retain_mode: ``labels`` (task loss on retain labels) or ``distillation`` (match
            the frozen model's retain outputs).
    """

    epochs: int = Field(default=10, ge=1)
    optimizer: Literal["adam", "sgd"] = "sgd"
    lr: float = Field(default=1e-5, gt=0)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0)
    grad_clip_norm: float | None = Field(default=None, gt=0)
    pairing: Drive = "forget"
    epsilon: float = Field(default=0.1, ge=0)
    step_size: float | None = Field(default=None, ge=0)
    scale_reference: ScaleReference = "range"
    closeness: float = Field(default=0.1, ge=0)
    closeness_schedule: ClosenessSchedule = "constant"
    closeness_decay: float = Field(default=0.5, gt=0, le=1)
    noise_scale: float = Field(default=0.01, ge=0)
    noise_distribution: NoiseDistribution = "gaussian"
    soft_targets: bool = False
    retain_weight: float = Field(default=1.0, ge=0)
    retain_mode: Literal["labels", "distillation"] = "labels"

    def closeness_at(self, pass_index: int) -> float:
        """λ_t at pass ``pass_index`` (1-based) of :attr:`epochs`."""
        return closeness_weight(
            self.closeness, pass_index, self.epochs, self.closeness_schedule, self.closeness_decay
        )


def boundary_inputs(
    task: Task,
    frozen: nn.Module,
    batch: Batch,
    params: BoundaryParams,
    closeness: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The perturbed forget inputs ``x'`` (inner level; see the module docstring).

    Args:
        task: the task (loss, inputs).
        frozen: the frozen original f₀ (eval mode; its parameters get no gradient).
        batch: a forget batch on the device.
        params: ε, η, γ, the scale reference and the noise distribution.
        closeness: λ_t for this pass.
        generator: the noise generator (on the inputs' device).
    """
    inputs = task.inputs(batch).detach()
    with torch.enable_grad():
        probe = inputs.clone().requires_grad_(True)
        output = task.forward(frozen, task.with_inputs(batch, probe))
        loss = task.criterion(output, task.target(batch), batch)
        (gradient,) = torch.autograd.grad(loss, probe, allow_unused=True)
    if gradient is None:
        gradient = torch.zeros_like(inputs)
    scale = input_scale(inputs, params.scale_reference)
    step_size = params.epsilon if params.step_size is None else params.step_size
    noise = None
    if params.noise_scale > 0:
        z = sample_noise(
            inputs.shape,
            params.noise_distribution,
            generator=generator,
            dtype=inputs.dtype,
            device=generator.device if generator is not None else inputs.device,
        ).to(inputs.device)
        noise = params.noise_scale * scale * z
    return perturbed_sign_step(
        inputs,
        gradient,
        step_size=step_size * scale,
        epsilon=params.epsilon * scale,
        closeness=closeness,
        noise=noise,
    )


def nearest_wrong_class(
    logits: torch.Tensor,
    labels: torch.Tensor,
    soft: bool = False,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """Per voxel, the best class other than the true one.

    Args:
        logits: ``[B, K, …]``.
        labels: true classes ``[B, …]`` (``ignore_index`` where ignored).
        soft: return class probabilities ``[B, K, …]`` (softmax with the true class
            removed, so its probability is 0) instead of class indices.
        ignore_index: the label of ignored voxels (kept as is in hard targets).

    Returns:
        Class indices ``[B, …]`` (dtype of ``labels``) or probabilities ``[B, K, …]``.
    """
    if logits.shape[:1] + logits.shape[2:] != labels.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} do not match"
        )
    num_classes = logits.shape[1]
    if num_classes < 2:
        raise ValueError("a wrong class needs at least two classes")
    valid = labels != ignore_index
    safe = torch.where(valid, labels.long(), torch.zeros_like(labels, dtype=torch.long))
    true_class = F.one_hot(safe, num_classes).movedim(-1, 1).bool()
    masked = logits.detach().float().masked_fill(true_class, float("-inf"))
    if soft:
        return torch.softmax(masked, dim=1)
    wrong = masked.argmax(dim=1).to(labels.dtype)
    return torch.where(valid, wrong, labels)


@torch.no_grad()
def boundary_target(
    task: Task,
    frozen: nn.Module,
    batch: Batch,
    perturbed_inputs: torch.Tensor,
    soft: bool = False,
) -> torch.Tensor:
    """The forget batch's new target: f₀'s output at ``x'`` (see the module docstring).

    Class-index targets (integer dtype) give the nearest wrong class per voxel; image
    targets give f₀(x') itself.
    """
    output = task.forward(frozen, task.with_inputs(batch, perturbed_inputs)).detach()
    labels = task.target(batch)
    if labels.is_floating_point():
        return output
    return nearest_wrong_class(output, labels, soft=soft)


class _Passes:
    """A re-iterable loader that counts the passes started (for the λ_t schedule)."""

    def __init__(self, loader: Iterable[Any]) -> None:
        self.loader = loader
        self.passes = 0

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Any]:
        self.passes += 1
        yield from self.loader


def _forget_only(forget: Iterable[Batch]) -> Iterable[tuple[Batch, None]]:
    class _Pairs:
        def __len__(self) -> int:
            return len(forget)  # type: ignore[arg-type]

        def __iter__(self) -> Iterator[tuple[Batch, None]]:
            return ((batch, None) for batch in forget)

    return _Pairs()


def _retain_term(
    task: Task, model: nn.Module, frozen: nn.Module, batch: Batch, mode: str
) -> torch.Tensor:
    if mode == "labels":
        return task.loss(model, batch)
    with torch.no_grad():
        teacher = task.output_as_target(task.forward(frozen, batch), batch)
    return task.criterion(task.forward(model, batch), teacher, batch)


@register_strategy(
    "boundary",
    BoundaryParams,
    needs_retain=True,
    family="bilevel_study",
    description="bilevel boundary unlearning: forget targets = the frozen model's output at a "
    "perturbed sign-gradient point in an L-inf ball (nearest wrong class / adversarial "
    "pseudo-target) + phi * retain term",
)
def boundary(run: UnlearningRun, params: BoundaryParams) -> StrategyResult:
    """Boundary unlearning (see the module docstring)."""
    task, frozen = run.task, run.frozen
    if run.retain_loader is not None and params.retain_weight > 0:
        pairs: Iterable[Any] = PairedBatches(run.forget_loader, run.retain_loader, params.pairing)
    elif params.retain_weight > 0:
        raise ValueError(
            "Strategy 'boundary' needs retain data for retain_weight > 0 but the run has none"
        )
    else:
        pairs = _forget_only(run.forget_loader)
    passes = _Passes(pairs)
    device = next(iter(run.model.parameters())).device
    generator = torch.Generator(device=device)
    generator.manual_seed(run.seed)
    tracker = TermTracker()

    def loss_fn(model: nn.Module, pair: tuple[Batch, Batch | None]) -> torch.Tensor:
        forget_batch, retain_batch = pair
        closeness = params.closeness_at(passes.passes)
        perturbed = boundary_inputs(task, frozen, forget_batch, params, closeness, generator)
        target = boundary_target(task, frozen, forget_batch, perturbed, params.soft_targets)
        forget_term = task.criterion(task.forward(model, forget_batch), target, forget_batch)
        tracker.add("forget_loss", forget_term)
        tracker.add("closeness", closeness)
        loss = forget_term
        if retain_batch is not None and params.retain_weight > 0:
            retain_term = _retain_term(task, model, frozen, retain_batch, params.retain_mode)
            tracker.add("retain_loss", retain_term)
            loss = loss + params.retain_weight * retain_term
        return loss

    optimizer = make_optimizer(task, run.model, params)
    result = train(
        run.model, passes, loss_fn, optimizer, loop_for(run.loop, params, "boundary"),
        validate=tracker,
    )
    schedule = [params.closeness_at(t) for t in range(1, params.epochs + 1)]
    logger.info(
        "boundary: %d passes, epsilon %.3g (%s), closeness %s, noise %s x %.3g",
        params.epochs,
        params.epsilon,
        params.scale_reference,
        [round(value, 4) for value in schedule],
        params.noise_distribution,
        params.noise_scale,
    )
    return StrategyResult(
        model=run.model,
        history=result.history,
        extras={"closeness_per_pass": schedule, "loop_wall_time_s": result.wall_time_s},
    )
