"""Multi-GPU data parallelism (``torch.distributed`` DDP) for the training loop.

When a run is launched with ``torchrun --nproc_per_node=N`` every process gets the
``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` environment variables; :func:`distributed_context`
reads them. With ``WORLD_SIZE > 1`` the training loop
(:func:`med_unlearning.training.train`) joins the process group, wraps the loss
computation in :class:`~torch.nn.parallel.DistributedDataParallel` (gradients are averaged
across ranks at every step), shards the training :class:`~torch.utils.data.DataLoader` with a
:class:`~torch.utils.data.DistributedSampler` and logs on rank 0 only. Without ``torchrun``
(or with one process) nothing here changes anything.

Every rank runs the same Kedro nodes; the Kedro side (only rank 0 writes datasets, each rank
is pinned to its GPU before any node runs) lives in :mod:`med_unlearning.distributed_kedro`,
so this module needs no Kedro.
"""

from __future__ import annotations

import atexit
import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import (
    DataLoader,
    DistributedSampler,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
)

from med_unlearning.device import resolve_device

__all__ = [
    "DistributedContext",
    "all_reduce_mean",
    "all_reduce_sum",
    "distributed_context",
    "distributed_loader",
    "init_distributed",
    "is_main_process",
    "rank_device",
    "sync_buffers",
    "unwrap_model",
    "wrap_model",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in a ``torchrun`` launch.

    Attributes:
        enabled: more than one process and ``torch.distributed`` is available.
        rank: global rank (0 = the main process).
        local_rank: rank on this machine; the index of the GPU this process uses.
        world_size: number of processes.
        backend: ``cpu:gloo,cuda:nccl`` when the training device is CUDA (collectives
            on CUDA tensors use NCCL, on CPU tensors Gloo), ``gloo`` otherwise.
    """

    enabled: bool = False
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    backend: str = "gloo"

    def __repr__(self) -> str:
        if not self.enabled:
            return "DistributedContext(single process)"
        return (
            f"DistributedContext(rank {self.rank}/{self.world_size}, "
            f"local_rank {self.local_rank}, {self.backend})"
        )


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as error:
        raise ValueError(
            f"environment variable {name}={raw!r}: expected an integer (set by torchrun)"
        ) from error


def distributed_context(device: str | torch.device | None = None) -> DistributedContext:
    """Read torchrun's ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``.

    Args:
        device: the training device; picks the backend (NCCL for CUDA tensors and Gloo
            for CPU ones on CUDA, Gloo alone otherwise). ``None`` means ``auto``.

    Returns:
        An enabled context only when ``WORLD_SIZE > 1`` and ``torch.distributed`` is usable.
    """
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", rank)
    enabled = world_size > 1 and dist.is_available()
    if not enabled:
        return DistributedContext()
    if not 0 <= rank < world_size:
        raise ValueError(f"environment variable RANK={rank}: expected 0 <= RANK < {world_size}")
    device_type = resolve_device("auto" if device is None else device).type
    use_nccl = device_type == "cuda" and dist.is_nccl_available()
    backend = "cpu:gloo,cuda:nccl" if use_nccl else "gloo"
    return DistributedContext(True, rank, local_rank, world_size, backend)


def is_main_process(ctx: DistributedContext) -> bool:
    """Rank 0, or the only process: the one that logs, shows progress and writes files."""
    return not ctx.enabled or ctx.rank == 0


def rank_device(ctx: DistributedContext, device: torch.device) -> torch.device:
    """The device this rank trains on: ``cuda:<local_rank>`` for CUDA, ``device`` otherwise."""
    if ctx.enabled and device.type == "cuda":
        return torch.device("cuda", ctx.local_rank)
    return device


def init_distributed(ctx: DistributedContext, device: torch.device) -> None:
    """Join the process group once and pin this rank to its GPU; a no-op when disabled.

    Pinning (``torch.cuda.set_device``) makes a bare ``"cuda"`` mean this rank's GPU in
    every later allocation, so call this before models are built (see
    :class:`DistributedSetupHooks`).
    """
    if not ctx.enabled:
        return
    if device.type == "cuda":
        torch.cuda.set_device(ctx.local_rank)
    if dist.is_initialized():
        return
    dist.init_process_group(backend=ctx.backend, rank=ctx.rank, world_size=ctx.world_size)
    atexit.register(_destroy_process_group)
    logger.info("Joined the process group: %r", ctx)


def _destroy_process_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(
    model: nn.Module,
    ctx: DistributedContext,
    device: torch.device,
    *,
    find_unused_parameters: bool = False,
) -> nn.Module:
    """Wrap ``model`` (already on ``device``) in DDP, or return it unchanged when disabled."""
    if not ctx.enabled:
        return model
    device_ids = [device.index if device.index is not None else ctx.local_rank]
    return DistributedDataParallel(
        model,
        device_ids=device_ids if device.type == "cuda" else None,
        find_unused_parameters=find_unused_parameters,
    )


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (the model itself when it is not wrapped)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def _shard_shuffle(loader: DataLoader) -> bool | None:
    """Whether ``loader`` shuffles; ``None`` when its sampling cannot be sharded."""
    if isinstance(loader.dataset, IterableDataset) or loader.batch_sampler is None:
        return None
    if loader.batch_size is None:  # a custom batch_sampler decides the batches
        return None
    sampler = loader.sampler
    if isinstance(sampler, SequentialSampler):
        return False
    if isinstance(sampler, RandomSampler) and not sampler.replacement:
        if sampler.num_samples == len(loader.dataset):  # type: ignore[arg-type]
            return True
    return None


def distributed_loader(
    loader: Any, ctx: DistributedContext, seed: int | None = None
) -> Any:
    """The same DataLoader, each rank reading its own 1/world_size share of the dataset.

    The new loader keeps the batch size (per rank: the global batch is ``world_size`` times
    larger), collate function, workers, pinning and ``drop_last``; a
    :class:`~torch.utils.data.DistributedSampler` shuffles as the original did, seeded with
    ``seed`` (default: the seed of the loader's generator, as set by
    :func:`~med_unlearning.training.make_loader`), and pads so every rank runs the same
    number of steps. Call ``loader.sampler.set_epoch(epoch)`` each epoch.

    Loaders that cannot be sharded (not a DataLoader, iterable datasets, custom or
    weighted samplers) are returned unchanged: every rank then trains on all of it, which
    is correct (DDP averages identical gradients) but no faster.
    """
    if not ctx.enabled:
        return loader
    if isinstance(loader, DataLoader) and isinstance(loader.sampler, DistributedSampler):
        return loader
    shuffle = _shard_shuffle(loader) if isinstance(loader, DataLoader) else None
    if shuffle is None:
        if is_main_process(ctx):
            logger.warning(
                "%s cannot be sharded across ranks; every rank iterates all of it",
                type(loader).__name__,
            )
        return loader
    if seed is None:
        seed = loader.generator.initial_seed() if loader.generator is not None else 0
    sampler = DistributedSampler(
        loader.dataset,
        num_replicas=ctx.world_size,
        rank=ctx.rank,
        shuffle=shuffle,
        seed=seed,
        drop_last=False,
    )
    workers = loader.num_workers
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        drop_last=loader.drop_last,
        timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        multiprocessing_context=loader.multiprocessing_context if workers > 0 else None,
        generator=loader.generator,
        prefetch_factor=loader.prefetch_factor if workers > 0 else None,
        persistent_workers=loader.persistent_workers if workers > 0 else False,
    )


def _all_reduce(value: torch.Tensor | float, ctx: DistributedContext, mean: bool) -> Any:
    if not ctx.enabled:
        return value
    is_tensor = isinstance(value, torch.Tensor)
    tensor = (
        value.detach().clone()
        if is_tensor
        else torch.tensor(float(value), dtype=torch.float64)
    )
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    if mean:
        tensor = tensor / ctx.world_size
    return tensor if is_tensor else float(tensor.item())


def all_reduce_mean(value: torch.Tensor | float, ctx: DistributedContext) -> Any:
    """Mean of ``value`` over all ranks (same type back); ``value`` itself when disabled.

    Every rank must call it, in the same order, for the same quantities.
    """
    return _all_reduce(value, ctx, mean=True)


def all_reduce_sum(value: torch.Tensor | float, ctx: DistributedContext) -> Any:
    """Sum of ``value`` over all ranks (e.g. items seen); ``value`` itself when disabled."""
    return _all_reduce(value, ctx, mean=False)


def sync_buffers(model: nn.Module, ctx: DistributedContext) -> None:
    """Copy rank 0's buffers (e.g. BatchNorm running statistics) to every rank.

    DDP keeps parameters identical, but each rank updates its running statistics on its own
    last batch; broadcasting them makes validation and the saved model the same everywhere.
    """
    if not ctx.enabled:
        return
    for buffer in model.buffers():
        dist.broadcast(buffer.data, src=0)
