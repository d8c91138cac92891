"""Seeding and seeded DataLoaders: a run's randomness depends only on its seed.

:func:`seed_everything` seeds python, numpy and torch (and asks for deterministic kernels);
:func:`make_loader` builds a DataLoader whose shuffling and worker randomness come from its
own seeded generator, so two runs with the same seed read the same batches.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from med_unlearning.device import resolve_device

__all__ = ["make_loader", "seed_everything"]


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
    """Seed numpy and python in a DataLoader worker from torch's per-worker seed."""
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
