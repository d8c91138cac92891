"""Strategies that *learn a substitute target* for the forget data.

- **NL** (reconstruction study): train on the forget data towards ``target + λ·noise``, the
  noise relative to the image (``λ·data_range``, ``noise_relative: true``) — the study's
  λ = 1e-5 on raw fastMRI scale is about 0.1 of a volume's max; forget data only.
- **NL-FT**: ``w_r·J(retain) + w_f·J(forget, target + λ·noise)`` in the same steps.
- **Noisy Label** (segmentation study, "learn noise"): ``J(retain) + α·J(forget, noisy)``;
  for segmentation the noisy target is random labels (``noise_scale`` = fraction of voxels
  relabelled, 1 = all), for reconstruction the image buried in noise.
- **Retain Label** (segmentation study, "learn others"): ``J(retain) + α·J(forget, f₀(x_r))``
  — the forget sample's target is the frozen original's output on the retain sample it is
  paired with (soft class probabilities for segmentation, the image for reconstruction).

Noisy targets come from :meth:`Task.noisy_target`, whose ``scale`` each task defines
(reconstruction: noise std in raw units; segmentation: fraction of random labels); see
:func:`noisy_forget_target`.

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
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from med_unlearning.tasks.base import Batch, Task
from med_unlearning.unlearning.common import (
    PairedParams,
    StrategyParams,
    TermTracker,
    optimise,
    optimise_paired,
    output_as_target,
    paired_batches,
)
from med_unlearning.unlearning.registry import StrategyResult, UnlearningRun, register_strategy

__all__ = [
    "NLFTParams",
    "NLParams",
    "NoisyLabelParams",
    "RetainLabelParams",
    "SeededGenerators",
    "fixed_noisy_forget_target",
    "item_batch",
    "noisy_forget_target",
    "noisy_label",
    "nl",
    "nl_ft",
    "retain_label",
    "retain_label_target",
]

logger = logging.getLogger(__name__)


class NLParams(StrategyParams):
    """NL.

    Attributes:
        noise_scale: λ. Reconstruction: noise std as a fraction of each volume's max with
            ``noise_relative`` (else in raw units). Segmentation: the fraction of forget
            voxels given random labels, in [0, 1].
        noise_relative: scale the noise by the task's per-item data range (tasks that have
            one: reconstruction); ignored by tasks without a data range.
        resample_noise: redraw the noise at every step (``true``) instead of fixing each
            forget item's noisy target by the run seed and the item id (``false``, the
            default: a corrupted label the model must fit; see the module docstring).
    """

    noise_scale: float = Field(default=0.1, ge=0)
    noise_relative: bool = True
    resample_noise: bool = False


class NLFTParams(PairedParams):
    """NL-FT: ``retain_weight·J(retain) + forget_weight·J(forget, target + λ·noise)``.

    ``noise_scale``, ``noise_relative`` and ``resample_noise`` as in :class:`NLParams`.
    """

    noise_scale: float = Field(default=0.1, ge=0)
    noise_relative: bool = True
    resample_noise: bool = False
    forget_weight: float = Field(default=1.0, ge=0)
    retain_weight: float = Field(default=1.0, ge=0)


class NoisyLabelParams(PairedParams):
    """Noisy Label: ``J(retain) + alpha·J(forget, noisy target)`` (α ≈ 0.1–0.25 in the study).

    ``noise_scale`` 1 = entirely random labels for segmentation; for reconstruction, noise
    of the volume's max (relative) buries the image. ``resample_noise`` as in
    :class:`NLParams` (segmentation patches are random crops, so a label field fixed per
    subject id does not stay attached to the anatomy: redraw it there).
    """

    alpha: float = Field(default=0.25, ge=0)
    noise_scale: float = Field(default=1.0, ge=0)
    noise_relative: bool = True
    resample_noise: bool = False


class RetainLabelParams(PairedParams):
    """Retain Label: ``J(retain) + alpha·J(forget, frozen original's output on retain)``."""

    alpha: float = Field(default=0.25, ge=0)


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
    ``s = scale · data_range`` per item when ``relative`` and the task has a
    ``data_range`` (reconstruction), else ``s = scale``."""
    data_range = getattr(task, "data_range", None)
    if relative and callable(data_range):
        target = task.target(batch)
        ranges = data_range(batch).to(target.dtype).reshape(-1, *([1] * (target.dim() - 1)))
        return task.noisy_target(batch, scale * ranges, generator)
    return task.noisy_target(batch, scale, generator)


def item_batch(batch: Batch, index: int) -> Batch:
    """Item ``index`` of a dict batch as a batch of one: tensors with the batch's leading size
    and lists/tuples of that length are sliced, anything else is kept as is."""
    size = len(batch["ids"])
    item: dict[str, object] = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == size:
            item[key] = value[index : index + 1]
        elif isinstance(value, (list, tuple)) and len(value) == size:
            item[key] = type(value)([value[index]])
        else:
            item[key] = value
    return item


def _item_ids(batch: Batch) -> list[str] | None:
    ids = batch.get("ids") if isinstance(batch, Mapping) else None
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


def _match_items(values: torch.Tensor, count: int, size: tuple[int, ...]) -> torch.Tensor:
    """Repeat/truncate ``values``' items to ``count`` and resize its trailing spatial
    dimensions to ``size`` when they differ (linear interpolation)."""
    if values.shape[0] != count:
        index = torch.arange(count, device=values.device) % values.shape[0]
        values = values[index]
    if size and tuple(values.shape[-len(size) :]) != size:
        leading = values.shape[: values.dim() - len(size)]
        flat = values.reshape(-1, 1, *values.shape[-len(size) :]).float()
        mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[len(size)]
        flat = F.interpolate(flat, size=size, mode=mode, align_corners=False)
        values = flat.reshape(*leading, *size).to(values.dtype)
    return values


def retain_label_target(
    task: Task, frozen: nn.Module, forget_batch: Batch, retain_batch: Batch
) -> torch.Tensor:
    """The Retain Label target of a forget batch: the frozen original's output on the paired
    retain batch, as a target (:func:`~med_unlearning.unlearning.common.output_as_target`:
    the image for reconstruction, class probabilities for segmentation).

    Items are paired in order (the retain batch is repeated or truncated to the forget
    batch's size); a retain output of another spatial size is resized to the forget
    target's; with a task ``data_range`` (reconstruction) the image is rescaled from the
    retain item's range to the forget item's, so the SSIM data range stays meaningful.
    """
    with torch.no_grad():
        target = output_as_target(task, task.forward(frozen, retain_batch), retain_batch)
    forget_target = task.target(forget_batch)
    count = forget_target.shape[0]
    size = tuple(forget_target.shape[1:])
    target = _match_items(target, count, size)
    data_range = getattr(task, "data_range", None)
    if callable(data_range) and target.shape == forget_target.shape and target.is_floating_point():
        retain_range = _match_items(data_range(retain_batch).reshape(-1), count, ())
        ratio = data_range(forget_batch).reshape(-1) / retain_range.clamp_min(1e-30)
        target = target * ratio.to(target.dtype).reshape(-1, *([1] * (target.dim() - 1)))
    return target.detach()


#: Non-empty once the missing-ids fallback was reported (warn once per process).
_WARNED_NO_IDS: list[bool] = []


def _noisy_term(
    task: Task,
    model: nn.Module,
    batch: Batch,
    params: NLParams | NLFTParams | NoisyLabelParams,
    generators: SeededGenerators,
) -> torch.Tensor:
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


@register_strategy(
    "nl",
    NLParams,
    needs_retain=False,
    family="recon_study",
    description="learn noise: fit forget data to target + noise (relative to the image)",
)
def nl(run: UnlearningRun, params: NLParams) -> StrategyResult:
    """NL: ``L = J(forget, target + λ·noise)`` on forget batches only."""
    tracker = TermTracker()
    generators = SeededGenerators(run.seed, run.generator)

    def loss_fn(model: nn.Module, batch: Batch) -> torch.Tensor:
        forget = _noisy_term(run.task, model, batch, params, generators)
        tracker.add("forget_noisy_loss", forget)
        return forget

    return optimise(run, params, run.forget_loader, loss_fn, "nl", tracker)


@register_strategy(
    "nl_ft",
    NLFTParams,
    family="recon_study",
    description="NL on forget data + fine-tuning on the retain subset in the same steps",
)
def nl_ft(run: UnlearningRun, params: NLFTParams) -> StrategyResult:
    """NL-FT: ``L = w_r·J(retain) + w_f·J(forget, target + λ·noise)`` on paired batches."""
    generators = SeededGenerators(run.seed, run.generator)
    return optimise_paired(
        run,
        params,
        "nl_ft",
        lambda model, batch: _noisy_term(run.task, model, batch, params, generators),
        lambda retain, forget: params.retain_weight * retain + params.forget_weight * forget,
        forget_name="forget_noisy_loss",
    )


@register_strategy(
    "noisy_label",
    NoisyLabelParams,
    family="segmentation_study",
    description="learn noise: retain loss + alpha * forget loss against random labels/noise",
)
def noisy_label(run: UnlearningRun, params: NoisyLabelParams) -> StrategyResult:
    """Noisy Label: ``L = J(retain) + α·J(forget, noisy target)`` on paired batches."""
    generators = SeededGenerators(run.seed, run.generator)
    return optimise_paired(
        run,
        params,
        "noisy_label",
        lambda model, batch: _noisy_term(run.task, model, batch, params, generators),
        lambda retain, forget: retain + params.alpha * forget,
        forget_name="forget_noisy_loss",
    )


@register_strategy(
    "retain_label",
    RetainLabelParams,
    family="segmentation_study",
    description="learn others: forget targets = the frozen original's outputs on retain samples",
)
def retain_label(run: UnlearningRun, params: RetainLabelParams) -> StrategyResult:
    """Retain Label: ``L = J(retain) + α·J(forget, f₀(retain))`` on paired batches."""
    tracker = TermTracker()
    task = run.task

    def loss_fn(model: nn.Module, pair: tuple[Batch, Batch]) -> torch.Tensor:
        forget_batch, retain_batch = pair
        target = retain_label_target(task, run.frozen, forget_batch, retain_batch)
        forget = task.criterion(task.forward(model, forget_batch), target, forget_batch)
        retain = task.loss(model, retain_batch)
        tracker.add("forget_other_loss", forget)
        tracker.add("retain_loss", retain)
        return retain + params.alpha * forget

    return optimise(
        run, params, paired_batches(run, params, "retain_label"), loss_fn, "retain_label", tracker
    )
