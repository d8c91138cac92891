"""The one training loop of the project, shared by every task and unlearning strategy.

A caller supplies a model, a loader, a ``loss_fn(model, batch) -> loss`` and an optimizer;
the loop handles the device, mixed precision on CUDA, gradient clipping, the scheduler,
progress (epoch, loss, ETA) on the terminal and in the log, per-epoch timing split into
waiting for data and computing, and a clear error when the loss stops being finite.

Batches are whatever the loader yields; tensors anywhere inside (dicts, lists, tuples) are
moved to the device. A batch that is a mapping with an ``"ids"`` entry (e.g.
``["vol_003:slice 4"]``) is named by those ids in error messages.

Launched by ``torchrun`` with several processes, the same loop trains with DDP (see
:func:`train` and :mod:`med_unlearning.distributed`); in a single process it is unchanged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
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
from med_unlearning.io.checkpoint import stale_temporaries, temporary_path

__all__ = [
    "LoopSettings",
    "NonFiniteLossError",
    "ResumeSettings",
    "ResumeStateError",
    "resume_key",
    "TrainingResult",
    "describe_batch",
    "make_loader",
    "move_to_device",
    "seed_everything",
    "train",
]

logger = logging.getLogger(__name__)

Batch = Any
LossFn = Callable[[nn.Module, Batch], torch.Tensor]
ValidateFn = Callable[[nn.Module], Mapping[str, float]]


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the message names the epoch, step and items."""


class ResumeStateError(ValueError):
    """A resume state file cannot be used (another run's, or unreadable); names the file."""


@dataclass(frozen=True)
class ResumeSettings:
    """Epoch checkpoints of a long run, and resuming from the last one.

    Attributes:
        path: the state file (the caller derives it from the run's output location).
        every: write the state every this many epochs (and after the last epoch);
            ``0`` = never write.
        resume: start from the state file when it exists (else train from scratch).
        key: what the run is (a hash of its settings and data); a state file written
            under another key is refused rather than silently continued.

    The state holds the model, optimiser, scheduler and AMP scaler states, the RNG states
    (torch CPU/CUDA, numpy, python, the loader's shuffling generator), the epoch and the
    history so far; it is written atomically (temporary file + ``os.replace``) and read
    with ``torch.load(weights_only=True)``; a temporary file a killed run left next to it is
    removed, with a warning, by the next write (only one this host's dead process named for
    this state file). A resumed run ends with the same weights as an
    uninterrupted one (on CPU; on CUDA up to non-deterministic kernels).
    """

    path: str | Path
    every: int = 1
    resume: bool = True
    key: str = ""


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


#: History columns left out of the per-epoch log line (counters and timings).
_NOT_LOGGED = frozenset({"epoch", "steps", "items", "data_time_s", "epoch_time_s", "val_time_s"})


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


def seed_everything(seed: int, deterministic: bool = True) -> torch.Generator:
    """Seed python, numpy and torch; optionally ask torch for deterministic kernels.

    Returns:
        A CPU generator seeded with ``seed``, for DataLoader shuffling.
    """
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        # Deterministic mode also NaN-fills every torch.empty; nothing here reads memory it
        # did not write, so skip that per-allocation cost (it slows CPU training markedly).
        torch.utils.deterministic.fill_uninitialized_memory = False
        torch.backends.cudnn.benchmark = False
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def _seed_worker(worker_id: int) -> None:
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int,
    num_workers: int = 0,
    pin_memory: bool | str = "auto",
    device: str | torch.device = "auto",
    collate_fn: Callable[[list[Any]], Any] | None = None,
    drop_last: bool = False,
) -> DataLoader:
    """A DataLoader whose order and worker randomness depend only on ``seed``.

    ``pin_memory="auto"`` pins host memory when the target device is CUDA.
    """
    if pin_memory == "auto":
        pin_memory = resolve_device(device).type == "cuda"
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        pin_memory=bool(pin_memory),
        collate_fn=collate_fn,
        drop_last=drop_last,
        generator=generator,
        worker_init_fn=_seed_worker if num_workers > 0 else None,
        persistent_workers=num_workers > 0,
    )


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


def _count_items(batch: Batch) -> int:
    if isinstance(batch, Mapping) and "ids" in batch:
        return len(batch["ids"])
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0])
    if isinstance(batch, Mapping):
        for value in batch.values():
            if isinstance(value, torch.Tensor):
                return int(value.shape[0])
    if isinstance(batch, (list, tuple)) and batch:
        return _count_items(batch[0])
    return 1


def _format_eta(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:d}:{secs:02d}"


def _current_lr(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


def _step_scheduler(scheduler: Any, row: Mapping[str, float], metric: str) -> None:
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


def _set_sampler_epoch(loader: Iterable[Batch], epoch: int) -> None:
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)


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
    device = resolve_device(settings.device)
    ctx = distributed_context(device)
    if ctx.enabled:
        device = rank_device(ctx, device)
        init_distributed(ctx, device)
        loader = distributed_loader(loader, ctx)
    main_process = is_main_process(ctx)
    model.to(device)
    # in a single process this is the identity: the loop calls loss_fn(model, batch) itself
    ddp_loss = wrap_model(_LossComputation(model, loss_fn), ctx, device) if ctx.enabled else None
    amp_dtype = autocast_dtype(settings.precision, device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    try:
        steps_per_epoch = len(loader)  # type: ignore[arg-type]
    except TypeError:
        steps_per_epoch = None
    if settings.max_steps_per_epoch is not None and steps_per_epoch is not None:
        steps_per_epoch = min(steps_per_epoch, settings.max_steps_per_epoch)
    total_steps = steps_per_epoch * settings.epochs if steps_per_epoch is not None else None

    rows: list[dict[str, float]] = []
    validation_time = 0.0
    first_epoch = 1
    previous_time = 0.0
    generator = getattr(loader, "generator", None)
    if settings.resume is not None and settings.resume.resume:
        state = _load_resume_state(settings.resume)
        if state is not None:
            _restore_state(state, model, optimizer, scheduler, scaler, generator)
            rows = [dict(row) for row in state["history"]]
            first_epoch = int(state["epoch"]) + 1
            previous_time = float(state["wall_time_s"])
            if first_epoch - 1 > settings.epochs:
                raise ResumeStateError(
                    f"{settings.description}: the resume state {settings.resume.path} is at "
                    f"epoch {first_epoch - 1}, past the {settings.epochs} epochs asked for"
                )
            if main_process:
                logger.info(
                    "%s: resuming after epoch %d/%d from %s",
                    settings.description, first_epoch - 1, settings.epochs, settings.resume.path,
                )
            if on_resume is not None:
                on_resume(first_epoch - 1)
    start = time.perf_counter()
    if total_steps is not None:
        total_steps = steps_per_epoch * (settings.epochs - first_epoch + 1)
    bar = tqdm(
        total=total_steps,
        desc=settings.description,
        unit="step",
        disable=not (settings.progress and main_process),
        dynamic_ncols=True,
        leave=False,
    )
    try:
        for epoch in range(first_epoch, settings.epochs + 1):
            _set_sampler_epoch(loader, epoch)
            model.train()
            epoch_start = time.perf_counter()
            data_time = 0.0
            loss_sum = torch.zeros((), device=device, dtype=torch.float64)
            steps = 0
            items = 0
            fetch_start = time.perf_counter()
            for batch in loader:
                data_time += time.perf_counter() - fetch_start
                batch = move_to_device(batch, device)
                optimizer.zero_grad(set_to_none=True)
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    loss = loss_fn(model, batch) if ddp_loss is None else ddp_loss(batch)
                reported = loss.detach()
                if ctx.enabled:  # every rank sees every rank's loss, so all stop together
                    reported = all_reduce_mean(reported.float(), ctx)
                if not torch.isfinite(reported).item():
                    raise NonFiniteLossError(
                        _non_finite_message(settings, ctx, loss, reported, epoch, steps, batch)
                    )
                scaler.scale(loss).backward()
                if settings.grad_clip_norm is not None:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip_norm)
                scaler.step(optimizer)
                scaler.update()
                if after_step is not None:
                    after_step(model)
                loss_sum += reported.double()
                steps += 1
                items += _count_items(batch)
                bar.update(1)
                if settings.progress and main_process and steps % 5 == 1:
                    bar.set_postfix(
                        epoch=f"{epoch}/{settings.epochs}", loss=f"{reported.item():.4g}"
                    )
                step_cap = settings.max_steps_per_epoch
                if step_cap is not None and steps >= step_cap:
                    break
                fetch_start = time.perf_counter()
            if steps == 0:
                raise ValueError(f"{settings.description}: the loader yielded no batch")
            if ctx.enabled:
                items = int(all_reduce_sum(float(items), ctx))
                sync_buffers(model, ctx)
            row: dict[str, float] = {
                "epoch": epoch,
                "train_loss": float(loss_sum.item() / steps),
                "lr": _current_lr(optimizer),
                "steps": steps,
                "items": items,
                "data_time_s": data_time,
            }
            if validate is not None:
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                val_start = time.perf_counter()
                model.eval()
                with torch.no_grad():
                    val_metrics = {key: float(value) for key, value in validate(model).items()}
                row.update(_mean_over_ranks(val_metrics, ctx))
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                row["val_time_s"] = time.perf_counter() - val_start
                validation_time += row["val_time_s"]
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            row["epoch_time_s"] = time.perf_counter() - epoch_start
            rows.append(row)
            _step_scheduler(scheduler, row, settings.plateau_metric)
            if main_process and _checkpoint_due(settings, epoch):
                _save_resume_state(
                    settings.resume,  # type: ignore[arg-type]
                    _capture_state(model, optimizer, scheduler, scaler, generator),
                    epoch=epoch,
                    history=rows,
                    wall_time_s=previous_time + time.perf_counter() - start - validation_time,
                )
            elapsed = time.perf_counter() - start
            eta = elapsed / (epoch - first_epoch + 1) * (settings.epochs - epoch)
            metrics = " ".join(
                f"{key} {value:.4g}"
                for key, value in row.items()
                if key not in _NOT_LOGGED
            )
            if not main_process:
                continue
            logger.info(
                "%s epoch %d/%d  %s  time %.1fs  ETA %s",
                settings.description,
                epoch,
                settings.epochs,
                metrics,
                row["epoch_time_s"],
                _format_eta(eta),
            )
    finally:
        bar.close()
    wall_time = previous_time + time.perf_counter() - start - validation_time
    history = pd.DataFrame(rows)
    history["epoch"] = history["epoch"].astype(int)
    if not math.isfinite(wall_time):  # pragma: no cover - defensive
        wall_time = float("nan")
    extras: dict[str, Any] = {"world_size": ctx.world_size, "rank": ctx.rank} if ctx.enabled else {}
    return TrainingResult(history=history, wall_time_s=wall_time, extras=extras)


def _mean_over_ranks(metrics: dict[str, float], ctx: DistributedContext) -> dict[str, float]:
    """Average validation metrics over ranks (sorted keys: the same collectives everywhere)."""
    if not ctx.enabled:
        return metrics
    return {key: all_reduce_mean(metrics[key], ctx) for key in sorted(metrics)}


def _non_finite_message(
    settings: LoopSettings,
    ctx: DistributedContext,
    loss: torch.Tensor,
    reported: torch.Tensor,
    epoch: int,
    steps: int,
    batch: Batch,
) -> str:
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


# ------------------------------------------------------------------------------------------
# Epoch checkpoints (resume)
# ------------------------------------------------------------------------------------------

#: Version of the resume state's layout.
_RESUME_FORMAT = 1


def resume_key(*parts: Any) -> str:
    """A short hash identifying a run (its settings and data), for :class:`ResumeSettings`.

    ``parts`` must be JSON-serialisable (parameter dumps, id lists); key order of mappings
    does not matter.
    """
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _checkpoint_due(settings: LoopSettings, epoch: int) -> bool:
    resume = settings.resume
    if resume is None or resume.every <= 0:
        return False
    return epoch % resume.every == 0 or epoch == settings.epochs


def _rng_state() -> dict[str, Any]:
    """Every global RNG's state, as tensors and plain values (``weights_only``-loadable)."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": random.getstate(),
    }


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def _capture_state(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler,
    generator: torch.Generator | None,
) -> dict[str, Any]:
    return {
        "model": {key: value.detach().cpu() for key, value in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler.is_enabled() else None,
        "rng": _rng_state(),
        "loader_generator": generator.get_state() if generator is not None else None,
    }


def _restore_state(
    state: Mapping[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler,
    generator: torch.Generator | None,
) -> None:
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state["scheduler"] is not None:
        scheduler.load_state_dict(state["scheduler"])
    if state["scaler"] is not None and scaler.is_enabled():
        scaler.load_state_dict(state["scaler"])
    _set_rng_state(state["rng"])
    if generator is not None and state["loader_generator"] is not None:
        generator.set_state(state["loader_generator"])


def _save_resume_state(
    resume: ResumeSettings,
    state: dict[str, Any],
    *,
    epoch: int,
    history: Sequence[Mapping[str, float]],
    wall_time_s: float,
) -> None:
    """Write the state atomically: a reader sees the previous file or the new one, whole."""
    path = Path(resume.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": _RESUME_FORMAT,
        "key": resume.key,
        "epoch": epoch,
        "history": [
            {key: value if isinstance(value, int) else float(value) for key, value in row.items()}
            for row in history
        ],
        "wall_time_s": float(wall_time_s),
        **state,
    }
    for leftover in stale_temporaries(path.parent, path.name):
        logger.warning("Removing %s: a killed run's unfinished write of %s", leftover, path)
        leftover.unlink(missing_ok=True)
    temporary = temporary_path(path)
    try:
        torch.save(payload, temporary)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def _load_resume_state(resume: ResumeSettings) -> dict[str, Any] | None:
    """The state in ``resume.path`` (``None`` when there is none yet).

    Raises:
        ResumeStateError: the file is unreadable, of another layout, or another run's.
    """
    path = Path(resume.path)
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a bad file
        raise ResumeStateError(
            f"resume state {path} cannot be read ({error}); delete it to start afresh"
        ) from error
    if not isinstance(state, dict) or state.get("format") != _RESUME_FORMAT:
        raise ResumeStateError(
            f"resume state {path} is not a format-{_RESUME_FORMAT} training state; delete it"
        )
    if state.get("key") != resume.key:
        raise ResumeStateError(
            f"resume state {path} was written by another run (key {state.get('key')!r}, this "
            f"run {resume.key!r}: other settings or data); delete it or set "
            "runtime.resume: false"
        )
    return state
