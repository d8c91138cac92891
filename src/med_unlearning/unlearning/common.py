"""Building blocks shared by the strategies: typed base parameters, optimisers, loss terms.

The strategies themselves live in :mod:`med_unlearning.unlearning.strategies` (one file per
method); this module is what they share, so a new strategy is written with it. Every
strategy's parameters model subclasses :class:`StrategyParams` (optimiser, epochs,
which part of the network trains, how much retain data the engine samples), so a strategy
block in ``parameters_unlearning.yml`` always accepts the same core keys. The helpers below
turn those settings into an optimiser over the trainable part (:func:`make_optimizer`),
loop settings (:func:`loop_for`), and the loss terms the studies combine
(:func:`bounded_ascent`, :func:`ascent_term`, :func:`l1_norm`; a frozen model's output
becomes a target through the task, :meth:`~med_unlearning.tasks.base.Task.output_as_target`);
:func:`optimise` runs a strategy's objective through the shared training loop
(:func:`optimise_paired` on forget/retain pairs, :func:`optimise_retain` on retain data
only) and :func:`paired_batches` pairs forget with retain batches.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from typing import Any, Literal

import torch
from pydantic import Field, field_validator
from torch import nn

from med_unlearning.params.base import StrictModel
from med_unlearning.tasks.base import Batch, Task
from med_unlearning.training import LoopSettings, train
from med_unlearning.unlearning.pairing import Drive, PairedBatches
from med_unlearning.unlearning.registry import StrategyResult, UnlearningRun

__all__ = [
    "PairedParams",
    "StrategyParams",
    "TermTracker",
    "Trainable",
    "ascent_term",
    "bounded_ascent",
    "l1_norm",
    "loop_for",
    "make_optimizer",
    "model_device",
    "optimise",
    "optimise_paired",
    "optimise_retain",
    "paired_batches",
    "trainable_parameters",
]

logger = logging.getLogger(__name__)

#: Which part of the network a strategy updates; the rest stays bit-identical.
Trainable = Literal["all", "encoder", "decoder"]


class StrategyParams(StrictModel):
    """Settings every strategy accepts (its own model adds the strategy's weights).

    Attributes:
        epochs: passes over the strategy's data (forget and/or retain batches).
        lr: learning rate (the encoder's when ``head_lr_multiplier`` ≠ 1).
        optimizer: ``adam`` (the reconstruction study) or ``sgd`` (the segmentation study).
        momentum: SGD momentum (ignored by Adam).
        weight_decay: L2 weight decay of the optimiser.
        head_lr_multiplier: the decoder/head learns this many times faster (MedicalNet: 100).
        grad_clip_norm: clip the global gradient norm (``null`` = no clipping). Also the
            first guard of gradient-ascent strategies against divergence.
        trainable: which part of the network is updated (``all``, ``encoder``: decoder
            fixed, ``decoder``: encoder fixed); the other part's parameters stay
            bit-identical.
        retain_fraction: fraction of the retain training volumes/subjects the engine samples
            (by volume/subject, at least one) for the retain loader, in (0, 1].
        max_steps_per_epoch: stop each pass early after this many steps (``null`` = all).
    """

    epochs: int = Field(default=1, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    optimizer: Literal["adam", "sgd"] = "adam"
    momentum: float = Field(default=0.9, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0)
    head_lr_multiplier: float = Field(default=1.0, gt=0)
    grad_clip_norm: float | None = Field(default=0.5, gt=0)
    trainable: Trainable = "all"
    retain_fraction: float = Field(default=0.1, gt=0, le=1)
    max_steps_per_epoch: int | None = Field(default=None, ge=1)

    @field_validator("retain_fraction")
    @classmethod
    def _fraction_in_range(cls, value: float) -> float:
        if not 0.0 < value <= 1.0:  # pragma: no cover - Field bounds already check it
            raise ValueError(f"retain_fraction must be in (0, 1], got {value}")
        return value


class PairedParams(StrategyParams):
    """Settings of strategies that see a forget and a retain batch at every step.

    Attributes:
        pairing: which loader sets the length of an epoch (see
            :class:`~med_unlearning.unlearning.pairing.PairedBatches`): ``longest``
            (every forget and retain batch at least once per epoch), ``forget`` or ``retain``.
    """

    pairing: Drive = "longest"


class TermTracker:
    """Per-epoch means of the loss terms a strategy combines (e.g. ``forget_loss``).

    The strategy's loss function calls :meth:`add` at every step; passed as the loop's
    ``validate`` callback, the tracker adds the epoch's means to the history row and
    starts the next epoch afresh.
    """

    def __init__(self) -> None:
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}

    def add(self, name: str, value: torch.Tensor | float) -> None:
        """Record one step's value of term ``name``."""
        number = float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
        self._sums[name] = self._sums.get(name, 0.0) + number
        self._counts[name] = self._counts.get(name, 0) + 1

    def __call__(self, model: nn.Module | None = None) -> dict[str, float]:
        means = {name: self._sums[name] / self._counts[name] for name in self._sums}
        self._sums.clear()
        self._counts.clear()
        return means

    def __repr__(self) -> str:
        return f"TermTracker(terms={sorted(self._sums)})"


def trainable_parameters(task: Task, model: nn.Module, trainable: Trainable) -> list[nn.Parameter]:
    """The parameters a strategy may update; every other parameter gets ``requires_grad=False``.

    Args:
        task: gives the encoder/decoder split (:meth:`Task.parts`).
        model: the working copy.
        trainable: ``all``, ``encoder`` (decoder fixed) or ``decoder`` (encoder fixed).
    """
    if trainable == "all":
        model.requires_grad_(True)
        return [param for param in model.parameters()]
    parts = task.parts(model)
    keep = parts.encoder_parameters() if trainable == "encoder" else parts.decoder_parameters()
    keep_ids = {id(param) for param in keep}
    for param in model.parameters():
        param.requires_grad_(id(param) in keep_ids)
    return keep


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (CPU for a model without parameters)."""
    for tensor in model.parameters():
        return tensor.device
    return torch.device("cpu")


def make_optimizer(task: Task, model: nn.Module, params: StrategyParams) -> torch.optim.Optimizer:
    """The optimiser of ``params`` over the trainable part of ``model``.

    With ``head_lr_multiplier`` ≠ 1 the encoder and the decoder get separate parameter
    groups (decoder at ``lr × head_lr_multiplier``), as in MedicalNet's recipe.
    """
    trainable = trainable_parameters(task, model, params.trainable)
    if params.head_lr_multiplier != 1.0:
        decoder_ids = {id(param) for param in task.parts(model).decoder_parameters()}
        groups: list[dict[str, Any]] = [
            {"params": [p for p in trainable if id(p) not in decoder_ids], "lr": params.lr},
            {
                "params": [p for p in trainable if id(p) in decoder_ids],
                "lr": params.lr * params.head_lr_multiplier,
            },
        ]
        groups = [group for group in groups if group["params"]]
    else:
        groups = [{"params": trainable, "lr": params.lr}]
    if params.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=params.lr, momentum=params.momentum, weight_decay=params.weight_decay
        )
    # foreach: as in tasks.recon.training.recon_optimizer (bitwise the per-tensor loop's
    # weights, faster on the VarNet's many small tensors); SGD batched measured slower on 3-D
    return torch.optim.Adam(groups, lr=params.lr, weight_decay=params.weight_decay, foreach=True)


def loop_for(loop: LoopSettings, params: StrategyParams, label: str | None = None) -> LoopSettings:
    """The engine's loop settings with the strategy's epochs, clipping and step cap."""
    return dataclasses.replace(
        loop,
        epochs=params.epochs,
        grad_clip_norm=params.grad_clip_norm,
        max_steps_per_epoch=params.max_steps_per_epoch,
        description=f"{loop.description}:{label}" if label else loop.description,
    )


def l1_norm(parameters: Iterable[nn.Parameter]) -> torch.Tensor:
    """‖θ‖₁ over the given (trainable) parameters."""
    terms = [param.abs().sum() for param in parameters if param.requires_grad]
    if not terms:
        return torch.zeros(())
    return torch.stack(terms).sum()


def bounded_ascent(per_item_loss: torch.Tensor, bound: float | None) -> torch.Tensor:
    """The term to *subtract* for gradient ascent: ``mean(min(loss_i, bound))``.

    Gradient ascent on an unbounded loss (cross-entropy) runs to infinity and ends in NaN.
    Capping each item's loss at ``bound`` makes the ascent stop pushing an item once its
    loss passes the bound (its gradient becomes zero), so the objective stays finite; with
    ``bound=None`` the loss is used as is (the reconstruction study's J = 1 − SSIM + ε·L1
    is bounded by nature, and its destruction of the model is the finding to reproduce).
    """
    if bound is None:
        return per_item_loss.mean()
    return torch.clamp(per_item_loss, max=bound).mean()


def ascent_term(task: Task, model: nn.Module, batch: Batch, bound: float | None) -> torch.Tensor:
    """The forget loss a gradient-ascent strategy subtracts: the batch's per-item task loss,
    each capped at ``bound`` (:func:`bounded_ascent`).

    Guard against divergence: ascent on an unbounded loss (cross-entropy) runs to infinity, so
    each forget item's loss is capped at ``ascent_bound`` before it is subtracted (an item
    past the bound stops contributing gradient), and gradients are clipped
    (``grad_clip_norm``). The guard does not prevent forgetting-by-destruction: for
    reconstruction, J = (1 − SSIM) + ε·L1 has a bounded SSIM part (≤ 2) and an unbounded L1
    part, so a cap of 3 lets GA-ℓ1 drive SSIM to its floor — the study's finding that GA-ℓ1
    destroys the model (PSNR ≈ 16 dB everywhere) is reproduced — while the L1 term cannot run
    the outputs to infinity. ``ascent_bound: null`` removes the cap.
    """
    per_item = task.criterion(
        task.forward(model, batch), task.target(batch), batch, reduction="none"
    )
    return bounded_ascent(per_item, bound)


def paired_batches(run: UnlearningRun, params: PairedParams, label: str) -> PairedBatches:
    """``(forget, retain)`` batch pairs of ``run``, driven by ``params.pairing``.

    Raises:
        ValueError: the run has no retain data (strategy ``label`` needs it).
    """
    if run.retain_loader is None:
        raise ValueError(f"{label} needs retain data but the run has no retain loader")
    return PairedBatches(run.forget_loader, run.retain_loader, drive=params.pairing)


def optimise(
    run: UnlearningRun,
    params: StrategyParams,
    loader: Iterable[Any],
    loss_fn: Any,
    label: str,
    tracker: TermTracker | None = None,
) -> StrategyResult:
    """Minimise ``loss_fn(model, batch)`` over ``loader`` with the strategy's optimiser and loop
    settings (the shared training loop: progress, clipping, non-finite checks), then wrap
    ``run.model`` as the strategy's result. ``tracker`` adds its loss terms to the history."""
    optimizer = make_optimizer(run.task, run.model, params)
    result = train(
        run.model, loader, loss_fn, optimizer, loop_for(run.loop, params, label), validate=tracker
    )
    return StrategyResult(
        model=run.model, history=result.history, extras={"loop_wall_time_s": result.wall_time_s}
    )


def optimise_paired(
    run: UnlearningRun,
    params: PairedParams,
    label: str,
    forget_term: Callable[[nn.Module, Batch], torch.Tensor],
    combine: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    forget_name: str = "forget_loss",
) -> StrategyResult:
    """:func:`optimise` over ``(forget, retain)`` batch pairs with
    ``combine(J(retain), forget_term(model, forget batch))`` as the loss; both terms are
    logged (``forget_name`` and ``retain_loss``) in the history."""
    tracker = TermTracker()

    def loss_fn(model: nn.Module, pair: tuple[Batch, Batch]) -> torch.Tensor:
        forget_batch, retain_batch = pair
        forget = forget_term(model, forget_batch)
        retain = run.task.loss(model, retain_batch)
        tracker.add(forget_name, forget)
        tracker.add("retain_loss", retain)
        return combine(retain, forget)

    return optimise(run, params, paired_batches(run, params, label), loss_fn, label, tracker)


def optimise_retain(run: UnlearningRun, params: StrategyParams, label: str) -> StrategyResult:
    """:func:`optimise` of the task loss on the retain data only (the fine-tuning baselines).

    Raises:
        ValueError: the run has no retain data (strategy ``label`` needs it).
    """
    if run.retain_loader is None:
        raise ValueError(f"{label} needs retain data but the run has no retain loader")
    return optimise(run, params, run.retain_loader, run.task.loss, label)
