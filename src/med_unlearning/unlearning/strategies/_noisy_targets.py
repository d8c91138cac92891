"""Noisy forget targets, shared by the strategies that *learn a substitute target* for the
forget data with noise: NL (:mod:`~med_unlearning.unlearning.strategies.nl`), NL-FT
(:mod:`~med_unlearning.unlearning.strategies.nl_ft`) and Noisy Label
(:mod:`~med_unlearning.unlearning.strategies.noisy_label`).

Noisy targets come from :meth:`Task.noisy_target`, whose ``scale`` each task defines
(reconstruction: noise std in raw units; segmentation: fraction of random labels); see
:func:`noisy_forget_target`. With ``noise_relative`` the scale is relative to each item's
data range (reconstruction: λ·data_range).

By default the noisy target is a fixed *label* per forget item (``resample_noise: false``):
its noise is drawn from a generator seeded by the run seed and the item's id
(:func:`fixed_noisy_forget_target`), so a slice gets the same corrupted target in every step
and epoch whatever the batch order, and the model is trained to fit a corrupted image. With
``resample_noise: true`` the noise is redrawn at every step from the run's seeded generator;
fitting fresh zero-mean noise is regression to the mean (in expectation the clean target),
i.e. more training on the forget data rather than forgetting it.
"""

from __future__ import annotations

import logging
import zlib
from typing import Protocol

import torch
from torch import nn

from med_unlearning.tasks.base import Batch, Task
from med_unlearning.training.batches import batch_ids

__all__ = [
    "NoisyTargetSettings",
    "SeededGenerators",
    "fixed_noisy_forget_target",
    "item_batch",
    "noisy_forget_target",
    "noisy_term",
]

logger = logging.getLogger(__name__)


class NoisyTargetSettings(Protocol):
    """The noise keys of a noisy-target strategy's parameters (NL, NL-FT, Noisy Label).

    Attributes:
        noise_scale: λ (reconstruction: noise std, relative to each item's data range with
            ``noise_relative``; segmentation: the fraction of voxels given random labels).
        noise_relative: scale the noise by the task's per-item data range, when it has one.
        resample_noise: redraw the noise at every step instead of fixing it per item.
    """

    noise_scale: float
    noise_relative: bool
    resample_noise: bool


class SeededGenerators:
    """One torch generator per device, each seeded with the run's seed (reproducible noise).

    Tasks draw their random targets on the batch's device; a CPU generator cannot serve a
    CUDA tensor, so a generator is created (once) for each device that asks.
    """

    def __init__(self, seed: int, cpu: torch.Generator | None = None) -> None:
        self.seed = seed
        self._generators: dict[str, torch.Generator] = {}
        if cpu is not None:
            self._generators["cpu"] = cpu

    def on(self, device: torch.device) -> torch.Generator:
        """The generator for ``device``."""
        key = str(device)
        if key not in self._generators:
            generator = torch.Generator(device=device)
            generator.manual_seed(self.seed)
            self._generators[key] = generator
        return self._generators[key]

    def __repr__(self) -> str:
        return f"SeededGenerators(seed={self.seed}, devices={sorted(self._generators)})"


def noisy_forget_target(
    task: Task,
    batch: Batch,
    scale: float,
    relative: bool,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """The forget batch's noisy target: ``task.noisy_target(batch, s)`` with
    ``s = scale · data_range`` per item when ``relative`` and the task's ``data_range`` is
    not ``None`` (reconstruction), else ``s = scale`` (segmentation: no data range)."""
    data_range = task.data_range(batch) if relative else None
    if data_range is not None:
        target = task.target(batch)
        ranges = data_range.to(target.dtype).reshape(-1, *([1] * (target.dim() - 1)))
        return task.noisy_target(batch, scale * ranges, generator)
    return task.noisy_target(batch, scale, generator)


def _item_value(value: object, index: int, size: int) -> object:
    """Row ``index`` of one batch field, kept as a batch of one (see :func:`item_batch`)."""
    if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == size:
        return value[index : index + 1]
    if isinstance(value, (list, tuple)) and len(value) == size:
        return type(value)([value[index]])
    return value


def item_batch(batch: Batch, index: int) -> Batch:
    """Item ``index`` of a batch (a typed sample or a dict, with ``ids``) as a batch of one:
    tensors with the batch's leading size and lists/tuples of that length are sliced,
    anything else is kept as is."""
    size = len(batch_ids(batch))
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(_item_value(value, index, size) for value in batch))
    return {key: _item_value(value, index, size) for key, value in batch.items()}


def _item_ids(batch: Batch) -> list[str] | None:
    ids = batch_ids(batch)
    if ids is None or isinstance(ids, (str, bytes)):
        return None
    return [str(item) for item in ids]


def fixed_noisy_forget_target(
    task: Task,
    batch: Batch,
    scale: float,
    relative: bool,
    seed: int,
    salt: str = "noisy_target",
) -> torch.Tensor | None:
    """The forget batch's noisy target with noise *fixed per item*: item ``i`` draws from a
    generator seeded by ``(seed, salt, id_i)`` on the target's device, so the same item gets
    the same noisy target in every step, epoch and batch position. ``None`` when the batch
    has no ``ids`` (the caller then falls back to per-step noise)."""
    ids = _item_ids(batch)
    if ids is None:
        return None
    rows = []
    for index, item_id in enumerate(ids):
        item = item_batch(batch, index)
        generator = torch.Generator(device=task.target(item).device)
        generator.manual_seed(zlib.crc32(f"{seed}:{salt}:{item_id}".encode()))
        rows.append(noisy_forget_target(task, item, scale, relative, generator))
    return torch.cat(rows)


#: Non-empty once the missing-ids fallback was reported (warn once per process).
_WARNED_NO_IDS: list[bool] = []


def noisy_term(
    task: Task,
    model: nn.Module,
    batch: Batch,
    params: NoisyTargetSettings,
    generators: SeededGenerators,
) -> torch.Tensor:
    """The forget batch's loss against its noisy target: ``J(forget, target + λ·noise)``.

    The noise is fixed per item (:func:`fixed_noisy_forget_target`) unless
    ``params.resample_noise`` or the batch carries no item ids (then drawn per step from
    ``generators``; the missing ids are reported once).
    """
    target = None
    if not params.resample_noise:
        target = fixed_noisy_forget_target(
            task, batch, params.noise_scale, params.noise_relative, generators.seed
        )
        if target is None and not _WARNED_NO_IDS:
            _WARNED_NO_IDS.append(True)
            logger.warning("forget batches carry no item ids: noise is redrawn at every step")
    if target is None:
        device = task.target(batch).device
        target = noisy_forget_target(
            task, batch, params.noise_scale, params.noise_relative, generators.on(device)
        )
    return task.criterion(task.forward(model, batch), target, batch)
