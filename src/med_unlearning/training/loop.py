"""The loop itself: :func:`train`, one epoch (:func:`_run_epoch`), one step (:func:`_train_step`).

:func:`train` sets the run up (device, DDP, mixed precision, resuming), runs the epochs and
returns a :class:`TrainingResult`; validation (:mod:`.validation`), progress and logging
(:mod:`.progress`) and epoch checkpoints (:mod:`.resume`) live in their own modules.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from med_unlearning.device import autocast_dtype, resolve_device
from med_unlearning.distributed import (
    DistributedContext,
    all_reduce_mean,
    all_reduce_sum,
    distributed_context,
    distributed_loader,
    init_distributed,
    is_main_process,
    rank_device,
    sync_buffers,
    wrap_model,
)
from med_unlearning.training.batches import Batch, count_items, describe_batch, move_to_device
from med_unlearning.training.progress import log_epoch, progress_bar, show_step
from med_unlearning.training.resume import (
    ResumeSettings,
    capture_state,
    checkpoint_due,
    resume_point,
    save_resume_state,
)
from med_unlearning.training.validation import ValidateFn, synchronize, validate_epoch

__all__ = ["LoopSettings", "LossFn", "NonFiniteLossError", "TrainingResult", "train"]

LossFn = Callable[[nn.Module, Batch], torch.Tensor]


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the message names the epoch, step and items."""


@dataclass(frozen=True)
class LoopSettings:
    """How to run the loop (the model, data and loss come separately).

    Attributes:
        epochs: passes over the loader.
        device: ``auto``, ``cpu``, ``cuda``… or a ``torch.device``.
        precision: ``fp32``, ``bf16`` or ``fp16``; mixed precision applies on CUDA only.
        grad_clip_norm: clip the global gradient norm to this value (``None`` = no clipping).
        progress: show a progress bar.
        description: label of the progress bar and the log lines (e.g. ``recon.original``).
        plateau_metric: the history column a ``ReduceLROnPlateau`` scheduler watches.
        max_steps_per_epoch: stop an epoch early after this many steps (``None`` = all).
        resume: epoch checkpoints and resuming (``None`` = neither).
    """

    epochs: int
    device: str | torch.device = "auto"
    precision: str = "fp32"
    grad_clip_norm: float | None = None
    progress: bool = True
    description: str = "train"
    plateau_metric: str = "train_loss"
    max_steps_per_epoch: int | None = None
    resume: ResumeSettings | None = None


@dataclass
class TrainingResult:
    """What a finished loop reports.

    Attributes:
        history: one row per epoch: ``epoch``, ``train_loss``, ``lr``, ``epoch_time_s``,
            ``data_time_s`` (waiting for the loader), ``val_time_s`` (the epoch's
            validation), ``steps``, ``items`` and any validation metrics.
        wall_time_s: the optimisation wall time: the whole loop *minus* validation (the
            study's one cost rule: every model's cost, trained or unlearned, excludes
            validation and evaluation); the history's ``val_time_s`` has the validation
            time per epoch.
    """

    history: pd.DataFrame
    wall_time_s: float
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def epochs_run(self) -> int:
        return len(self.history)


class _LossComputation(nn.Module):
    """``loss_fn(model, batch)`` as a module, so DDP can wrap the whole loss computation.

    Loss functions call the model in many ways (``model(x)``, ``model.encode(x)``, several
    passes); wrapping this module instead of the network keeps the real network in
    ``loss_fn``'s hands while DDP still averages the gradients of all its parameters.
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.loss_fn(self.model, batch)


@dataclass
class _Loop:
    """What one :func:`train` call holds fixed across its epochs and steps."""

    model: nn.Module
    loss_fn: LossFn
    optimizer: torch.optim.Optimizer
    scheduler: Any
    settings: LoopSettings
    ctx: DistributedContext
    device: torch.device
    ddp_loss: nn.Module | None
    amp_dtype: torch.dtype | None
    scaler: torch.amp.GradScaler
    after_step: Callable[[nn.Module], None] | None

    @property
    def main_process(self) -> bool:
        """Whether this process shows progress, logs and writes epoch checkpoints."""
        return is_main_process(self.ctx)


def _set_up(
    model: nn.Module,
    loader: Iterable[Batch],
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    settings: LoopSettings,
    **hooks: Any,
) -> tuple[_Loop, Iterable[Batch]]:
    """Pick the device, join DDP when launched so (sharding the loader), set up AMP.

    ``hooks`` are :func:`train`'s ``scheduler`` and ``after_step``. Returns the run's
    :class:`_Loop` and the loader to iterate (this rank's shard under DDP).
    """
    device = resolve_device(settings.device)
    ctx = distributed_context(device)
    if ctx.enabled:
        device = rank_device(ctx, device)
        init_distributed(ctx, device)
        loader = distributed_loader(loader, ctx)
    model.to(device)
    # in a single process this is the identity: the loop calls loss_fn(model, batch) itself
    ddp_loss = wrap_model(_LossComputation(model, loss_fn), ctx, device) if ctx.enabled else None
    amp_dtype = autocast_dtype(settings.precision, device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    loop = _Loop(
        model=model,
        loss_fn=loss_fn,
        optimizer=optimizer,
        scheduler=hooks["scheduler"],
        settings=settings,
        ctx=ctx,
        device=device,
        ddp_loss=ddp_loss,
        amp_dtype=amp_dtype,
        scaler=scaler,
        after_step=hooks["after_step"],
    )
    return loop, loader


def _steps_per_epoch(loader: Iterable[Batch], settings: LoopSettings) -> int | None:
    """Steps one epoch takes (``None`` for a loader without a length), capped by settings."""
    try:
        steps = len(loader)  # type: ignore[arg-type]
    except TypeError:
        return None
    if settings.max_steps_per_epoch is not None:
        steps = min(steps, settings.max_steps_per_epoch)
    return steps


def _set_sampler_epoch(loader: Iterable[Batch], epoch: int) -> None:
    """Tell a ``DistributedSampler`` the epoch, so each epoch shuffles differently."""
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)


def _train_step(loop: _Loop, batch: Batch, *, epoch: int, step: int) -> tuple[torch.Tensor, Batch]:
    """One optimiser step on ``batch``: forward under autocast, finiteness check, backward,
    clipping, step, ``after_step``.

    Returns:
        The loss as reported (detached; the mean over ranks under DDP) and the batch on
        the device.

    Raises:
        NonFiniteLossError: the loss (on any rank) is NaN or infinite; ``step`` is the
            number of steps already done this epoch.
    """
    settings, optimizer, scaler = loop.settings, loop.optimizer, loop.scaler
    batch = move_to_device(batch, loop.device)
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(loop.device.type, dtype=loop.amp_dtype, enabled=loop.amp_dtype is not None):
        loss = loop.loss_fn(loop.model, batch) if loop.ddp_loss is None else loop.ddp_loss(batch)
    reported = loss.detach()
    if loop.ctx.enabled:  # every rank sees every rank's loss, so all stop together
        reported = all_reduce_mean(reported.float(), loop.ctx)
    if not torch.isfinite(reported).item():
        raise NonFiniteLossError(
            _non_finite_message(settings, loop.ctx, loss, reported, epoch, step, batch)
        )
    scaler.scale(loss).backward()
    if settings.grad_clip_norm is not None:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(loop.model.parameters(), settings.grad_clip_norm)
    scaler.step(optimizer)
    scaler.update()
    if loop.after_step is not None:
        loop.after_step(loop.model)
    return reported, batch


def _train_epoch(loop: _Loop, loader: Iterable[Batch], epoch: int, bar: tqdm) -> dict[str, float]:
    """Run the steps of one epoch (up to ``max_steps_per_epoch``).

    Returns:
        The epoch's history row so far: ``epoch``, ``train_loss`` (mean of the reported
        losses), ``lr``, ``steps``, ``items`` (total over ranks), ``data_time_s``.
    """
    settings = loop.settings
    data_time = 0.0
    loss_sum = torch.zeros((), device=loop.device, dtype=torch.float64)
    steps = 0
    items = 0
    fetch_start = time.perf_counter()
    for batch in loader:
        data_time += time.perf_counter() - fetch_start
        reported, batch = _train_step(loop, batch, epoch=epoch, step=steps)
        loss_sum += reported.double()
        steps += 1
        items += count_items(batch)
        show_step(
            bar,
            step=steps,
            epoch=epoch,
            epochs=settings.epochs,
            loss=reported,
            shown=settings.progress and loop.main_process,
        )
        if settings.max_steps_per_epoch is not None and steps >= settings.max_steps_per_epoch:
            break
        fetch_start = time.perf_counter()
    if steps == 0:
        raise ValueError(f"{settings.description}: the loader yielded no batch")
    if loop.ctx.enabled:
        items = int(all_reduce_sum(float(items), loop.ctx))
        sync_buffers(loop.model, loop.ctx)
    return {
        "epoch": epoch,
        "train_loss": float(loss_sum.item() / steps),
        "lr": float(loop.optimizer.param_groups[0]["lr"]),
        "steps": steps,
        "items": items,
        "data_time_s": data_time,
    }


def _run_epoch(
    loop: _Loop,
    loader: Iterable[Batch],
    epoch: int,
    bar: tqdm,
    validate: ValidateFn | None,
) -> dict[str, float]:
    """Train one epoch, then validate it; the row gains the metrics and the epoch's time
    (``epoch_time_s``: training and validation, measured after the device finished)."""
    _set_sampler_epoch(loader, epoch)
    loop.model.train()
    epoch_start = time.perf_counter()
    row = _train_epoch(loop, loader, epoch, bar)
    if validate is not None:
        row.update(validate_epoch(loop.model, validate, loop.ctx, loop.device))
    synchronize(loop.device)
    row["epoch_time_s"] = time.perf_counter() - epoch_start
    return row


def _end_epoch(
    loop: _Loop,
    rows: list[dict[str, float]],
    generator: torch.Generator | None,
    *,
    wall_time_s: float,
    eta_s: float,
) -> None:
    """After an epoch: step the scheduler, write the epoch checkpoint when due, log.

    ``wall_time_s`` is the optimisation time so far (saved with the state); only the main
    process writes and logs.
    """
    settings, row = loop.settings, rows[-1]
    epoch = int(row["epoch"])
    _step_scheduler(loop.scheduler, row, settings.plateau_metric)
    if not loop.main_process:
        return
    if checkpoint_due(settings.resume, epoch, settings.epochs):
        save_resume_state(
            settings.resume,  # type: ignore[arg-type]
            capture_state(loop.model, loop.optimizer, loop.scheduler, loop.scaler, generator),
            epoch=epoch,
            history=rows,
            wall_time_s=wall_time_s,
        )
    log_epoch(settings.description, row, epochs=settings.epochs, eta_s=eta_s)


def train(
    model: nn.Module,
    loader: Iterable[Batch],
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    settings: LoopSettings,
    *,
    scheduler: Any = None,
    validate: ValidateFn | None = None,
    after_step: Callable[[nn.Module], None] | None = None,
    on_resume: Callable[[int], None] | None = None,
) -> TrainingResult:
    """Train ``model`` in place for ``settings.epochs`` epochs.

    Args:
        model: the network; moved to the settings' device.
        loader: yields batches (re-iterated every epoch).
        loss_fn: ``loss_fn(model, batch_on_device) -> scalar loss``; it runs the forward pass
            so that tasks and unlearning strategies can combine several terms.
        optimizer: built on ``model``'s parameters (before or after the move: parameters
            are moved in place).
        settings: epochs, device, precision, clipping, progress.
        scheduler: a per-epoch LR scheduler; ``ReduceLROnPlateau`` gets
            ``history[settings.plateau_metric]``.
        validate: called after each epoch with the model in eval mode; its metrics join the
            history row (prefix them, e.g. ``val_psnr``).
        after_step: called after each optimizer step (e.g. to re-apply a constraint).
        on_resume: called with the number of epochs already done when the loop resumes
            from ``settings.resume``'s state file (e.g. to realign an epoch counter).

    Returns:
        The per-epoch history and the wall time.

    Raises:
        NonFiniteLossError: as soon as a loss is NaN/inf, naming epoch, step and items.

    Under ``torchrun`` with ``WORLD_SIZE > 1`` (see
    :func:`~med_unlearning.distributed.distributed_context`), the loop joins the process
    group, trains on ``cuda:<LOCAL_RANK>`` (or the CPU), wraps the loss computation in
    DDP so that gradients are averaged across ranks at every step, and shards a DataLoader
    with a seeded ``DistributedSampler`` (each rank reads 1/world_size of the items with the
    same per-rank batch size; other iterables are run whole on every rank). The history's
    ``train_loss`` is the mean over ranks, ``items`` the total over ranks; validation runs
    on every rank over the full validation set and its metrics are averaged over ranks
    (``validate`` must return the same keys on every rank). BatchNorm-style buffers are
    copied from rank 0 after each epoch, so all ranks end with the same model. Only rank 0
    shows progress and logs. ``model`` itself is trained in place and never wrapped, so
    its ``state_dict`` has the same keys as in a single process.
    """
    if settings.epochs < 1:
        raise ValueError(f"{settings.description}: epochs must be >= 1, got {settings.epochs}")
    loop, loader = _set_up(
        model, loader, loss_fn, optimizer, settings, scheduler=scheduler, after_step=after_step
    )
    steps_per_epoch = _steps_per_epoch(loader, settings)
    generator = getattr(loader, "generator", None)
    point = resume_point(
        settings.resume,
        epochs=settings.epochs,
        description=settings.description,
        objects=(model, optimizer, scheduler, loop.scaler),
        generator=generator,
        log=loop.main_process,
    )
    if point is not None and on_resume is not None:
        on_resume(point.first_epoch - 1)
    rows = point.rows if point is not None else []
    first_epoch = point.first_epoch if point is not None else 1
    previous_time = point.previous_time_s if point is not None else 0.0
    start = time.perf_counter()
    validation_time = 0.0
    epochs_left = settings.epochs - first_epoch + 1
    bar = progress_bar(
        steps_per_epoch * epochs_left if steps_per_epoch is not None else None,
        settings.description,
        enabled=settings.progress and loop.main_process,
    )
    try:
        for epoch in range(first_epoch, settings.epochs + 1):
            rows.append(_run_epoch(loop, loader, epoch, bar, validate))
            validation_time += rows[-1].get("val_time_s", 0.0)
            elapsed = time.perf_counter() - start
            _end_epoch(
                loop,
                rows,
                generator,
                wall_time_s=previous_time + elapsed - validation_time,
                eta_s=elapsed / (epoch - first_epoch + 1) * (settings.epochs - epoch),
            )
    finally:
        bar.close()
    wall_time = previous_time + time.perf_counter() - start - validation_time
    return _result(rows, wall_time, loop.ctx)


def _result(
    rows: list[dict[str, float]], wall_time_s: float, ctx: DistributedContext
) -> TrainingResult:
    """The history as a frame (integer epochs), the wall time and the DDP rank/world size."""
    history = pd.DataFrame(rows)
    history["epoch"] = history["epoch"].astype(int)
    if not math.isfinite(wall_time_s):  # pragma: no cover - defensive
        wall_time_s = float("nan")
    extras: dict[str, Any] = {"world_size": ctx.world_size, "rank": ctx.rank} if ctx.enabled else {}
    return TrainingResult(history=history, wall_time_s=wall_time_s, extras=extras)


def _step_scheduler(scheduler: Any, row: Mapping[str, float], metric: str) -> None:
    """Step a per-epoch scheduler (``ReduceLROnPlateau`` on the row's ``metric``)."""
    if scheduler is None:
        return
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        if metric not in row:
            raise KeyError(
                f"ReduceLROnPlateau watches {metric!r} but the epoch only reported {sorted(row)}"
            )
        scheduler.step(row[metric])
    else:
        scheduler.step()


def _non_finite_message(
    settings: LoopSettings,
    ctx: DistributedContext,
    loss: torch.Tensor,
    reported: torch.Tensor,
    epoch: int,
    steps: int,
    batch: Batch,
) -> str:
    """Name where the loss stopped being finite: epoch, step, the items or another rank."""
    if torch.isfinite(loss.detach()).item():
        where = f"on another rank (this is rank {ctx.rank})"
        value = reported.item()
    else:
        where = f"on items [{describe_batch(batch)}]"
        if ctx.enabled:
            where += f" on rank {ctx.rank}"
        value = loss.item()
    return (
        f"{settings.description}: loss is {value} at epoch {epoch}, step {steps + 1}, "
        f"{where}. Check these inputs (e.g. a volume whose maximum is 0) and the learning rate."
    )
