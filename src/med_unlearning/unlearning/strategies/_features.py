"""Feature-space unlearning, shared by the segmentation study's Random Encoder
(:mod:`~med_unlearning.unlearning.strategies.random_encoder`) and Fix Decoder
(:mod:`~med_unlearning.unlearning.strategies.fix_decoder`).

Both freeze the decoder/head (its parameters *and* normalisation statistics stay
bit-identical) and tune only the encoder, in feature space (docs/studies.md §2); they differ only
in the forget features' target:

- **Random Encoder**: the encoder's features of forget inputs are pushed (MSE) towards noise
  whose per-channel mean and standard deviation are those of the *frozen* encoder's features
  on the forget set; retain features are held to the frozen encoder's (MSE).
- **Fix Decoder**: the features of forget inputs are pushed towards the frozen encoder's
  features of a *noise input* (per item and channel, noise with the input's own mean and
  standard deviation); retain features are held.

Loss per step (:func:`train_encoder`), on a forget batch paired with a retain batch:
``α · MSE(E(x_f), target_f) + w_r · MSE(E(x_r), E₀(x_r)) [+ w_t · L_task(D₀(E(x_r)), y_r)]``
with ``E`` the trained encoder, ``E₀`` the frozen one and ``D₀`` the frozen decoder. Each
feature tensor's MSE is divided by that tensor's variance under the frozen encoder on the
forget set by default (``normalise_features``), so the terms are scale-free on every network.

The noise targets are fixed per item by default (seeded by the run seed and the item id, so
each forget item always maps to the same noise whatever the batch order); with
``resample_noise`` they are redrawn at every step (the encoder then learns the noise's mean).

Forget and retain batches are paired by :class:`~med_unlearning.unlearning.pairing.PairedBatches`;
the optimiser covers the encoder only (``trainable`` is fixed to ``encoder``).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import nn

from med_unlearning.device import full_precision, resolve_device
from med_unlearning.tasks.base import Batch, Features, Task
from med_unlearning.training import move_to_device, train
from med_unlearning.training.batches import batch_ids
from med_unlearning.unlearning.common import (
    PairedParams,
    TermTracker,
    Trainable,
    loop_for,
    make_optimizer,
    model_device,
)
from med_unlearning.unlearning.pairing import PairedBatches
from med_unlearning.unlearning.registry import StrategyResult, UnlearningRun

__all__ = [
    "FeatureStatistics",
    "FeatureUnlearningParams",
    "ForgetTargetFn",
    "feature_statistics",
    "features_mse",
    "input_matched_noise",
    "item_generators",
    "matched_feature_noise",
    "noise_generator",
    "train_encoder",
]

logger = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------
# Feature statistics and noise targets
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureStatistics:
    """Per-channel mean and standard deviation of each feature tensor.

    Attributes:
        means: one ``[C]`` tensor per feature tensor (channel = dimension 1).
        stds: likewise.
        items: how many items the statistics were computed on.
    """

    means: tuple[torch.Tensor, ...]
    stds: tuple[torch.Tensor, ...]
    items: int

    def variances(self) -> tuple[float, ...]:
        """Each feature tensor's overall variance (all channels pooled), floored at a tiny
        positive value: the natural scale of an MSE on that tensor."""
        floor = float(torch.finfo(torch.float32).tiny)
        values = []
        for mean, std in zip(self.means, self.stds, strict=True):
            mean, std = mean.double(), std.double()
            pooled = (std.square() + mean.square()).mean() - mean.mean().square()
            values.append(max(float(pooled), floor))
        return tuple(values)

    def summary(self) -> list[dict[str, float]]:
        """JSON-friendly overview (channel-averaged mean and std per feature tensor)."""
        return [
            {"channels": int(mean.numel()), "mean": float(mean.mean()), "std": float(std.mean())}
            for mean, std in zip(self.means, self.stds, strict=True)
        ]


def _channels_last_flat(tensor: torch.Tensor) -> torch.Tensor:
    """``[B, C, …]`` → ``[B·…, C]`` (a 1-D tensor counts as one channel)."""
    if tensor.dim() < 2:
        return tensor.reshape(-1, 1)
    return tensor.movedim(1, -1).reshape(-1, tensor.shape[1])


@torch.no_grad()
def feature_statistics(
    task: Task, model: nn.Module, loader: Iterable[Batch], device: torch.device | str = "cpu"
) -> FeatureStatistics:
    """Per-channel mean/std of ``task.encode(model, batch)`` over every batch of ``loader``.

    Accumulated in float64 over all items and positions; the model is used as it is (put
    the frozen original in eval mode first).

    Raises:
        ValueError: for an empty loader, or feature tensors whose channel count changes.
    """
    device = resolve_device(device)
    sums: list[torch.Tensor] = []
    squares: list[torch.Tensor] = []
    counts: list[int] = []
    items = 0
    for batch in loader:
        batch = move_to_device(batch, device)
        features = task.encode(model, batch)
        for index, tensor in enumerate(features):
            flat = _channels_last_flat(tensor.detach().double())
            if index == len(sums):
                sums.append(torch.zeros(flat.shape[1], dtype=torch.float64, device=device))
                squares.append(torch.zeros_like(sums[-1]))
                counts.append(0)
            if flat.shape[1] != sums[index].numel():
                raise ValueError(
                    f"Feature tensor {index} has {flat.shape[1]} channels in one batch and "
                    f"{sums[index].numel()} in another"
                )
            sums[index] += flat.sum(0)
            squares[index] += (flat * flat).sum(0)
            counts[index] += flat.shape[0]
        items += int(task.inputs(batch).shape[0])
    if not sums:
        raise ValueError("Cannot compute feature statistics: the loader yielded no batch")
    means = tuple(total / count for total, count in zip(sums, counts, strict=True))
    stds = tuple(
        (square / count - mean * mean).clamp_min(0).sqrt()
        for square, count, mean in zip(squares, counts, means, strict=True)
    )
    return FeatureStatistics(
        tuple(mean.float() for mean in means), tuple(std.float() for std in stds), items
    )


def item_generators(batch: Batch, seed: int, salt: str) -> list[torch.Generator] | None:
    """One CPU generator per item, seeded by ``(seed, salt, item id)``; ``None`` without ids.

    The same item gets the same random numbers in every pass and batch position.
    """
    ids = batch_ids(batch)
    if ids is None or isinstance(ids, (str, bytes)):
        return None
    generators = []
    for item_id in ids:
        generator = torch.Generator()
        generator.manual_seed(zlib.crc32(f"{seed}:{salt}:{item_id}".encode()))
        generators.append(generator)
    return generators


def _standard_normal(
    shape: torch.Size,
    item_gens: Sequence[torch.Generator] | None,
    fallback: torch.Generator,
    device: torch.device,
    dtype: torch.dtype,
) -> torch.Tensor:
    """``N(0, 1)`` of ``shape`` ``[B, …]``: per item from ``item_gens`` or from ``fallback``."""
    if item_gens is not None:
        if len(item_gens) != shape[0]:
            raise ValueError(f"{len(item_gens)} item ids for a batch of {shape[0]} items")
        noise = torch.stack([torch.randn(shape[1:], generator=g) for g in item_gens])
    else:
        noise = torch.randn(shape, generator=fallback, device=fallback.device)
    return noise.to(device=device, dtype=dtype)


def _channel_view(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape per-channel ``[C]`` values to broadcast over ``like`` ``[B, C, …]``."""
    if like.dim() < 2:
        return values.reshape(())
    return values.reshape(1, -1, *([1] * (like.dim() - 2)))


def matched_feature_noise(
    template: Features,
    statistics: FeatureStatistics,
    *,
    item_gens: Sequence[torch.Generator] | None = None,
    generator: torch.Generator | None = None,
) -> Features:
    """Gaussian noise shaped like ``template`` with the statistics' per-channel mean and std.

    Args:
        template: features whose shapes (and device/dtype) the noise takes.
        statistics: per-channel mean/std per feature tensor (:func:`feature_statistics`).
        item_gens: one generator per item (fixed noise per item), or ``None``.
        generator: used when ``item_gens`` is ``None`` (default: a fresh unseeded one).
    """
    if len(template) != len(statistics.means):
        raise ValueError(
            f"{len(template)} feature tensors but statistics for {len(statistics.means)}"
        )
    fallback = generator if generator is not None else torch.Generator()
    noise = []
    for index, tensor in enumerate(template):
        mean = _channel_view(statistics.means[index].to(tensor.device, tensor.dtype), tensor)
        std = _channel_view(statistics.stds[index].to(tensor.device, tensor.dtype), tensor)
        z = _standard_normal(tensor.shape, item_gens, fallback, tensor.device, tensor.dtype)
        noise.append(mean + std * z)
    return tuple(noise)


def input_matched_noise(
    inputs: torch.Tensor,
    *,
    item_gens: Sequence[torch.Generator] | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Gaussian noise shaped like ``inputs`` ``[B, C, …]`` with each item's per-channel
    mean and standard deviation (so a z-scored volume gets ~N(0, 1) noise, raw k-space
    noise of its own magnitude)."""
    data = inputs.detach()
    dims = tuple(range(2, data.dim())) if data.dim() > 2 else (1,)
    mean = data.mean(dim=dims, keepdim=True)
    if data[0].numel() > 1:
        std = data.std(dim=dims, keepdim=True, unbiased=False)
    else:
        std = torch.zeros_like(mean)
    fallback = generator if generator is not None else torch.Generator()
    z = _standard_normal(data.shape, item_gens, fallback, data.device, data.dtype)
    return mean + std * z


@full_precision
def features_mse(
    features: Features, targets: Features, scales: Sequence[float] | None = None
) -> torch.Tensor:
    """Mean over feature tensors of the mean squared error (in float32).

    Args:
        features: the trained encoder's features.
        targets: their targets (no gradient flows into them).
        scales: one positive divisor per tensor (e.g. :meth:`FeatureStatistics.variances`),
            so tensors at very different scales weigh alike (VarNet: raw-scale k-space
            ~1e-4 next to unit-norm sensitivity maps); ``None`` = plain MSE.
    """
    if len(features) != len(targets):
        raise ValueError(f"{len(features)} feature tensors against {len(targets)} targets")
    if scales is not None and len(scales) != len(features):
        raise ValueError(f"{len(scales)} scales for {len(features)} feature tensors")
    losses = []
    for index, (feature, target) in enumerate(zip(features, targets, strict=True)):
        loss = F.mse_loss(feature.float(), target.detach().float())
        if scales is not None:
            loss = loss / scales[index]
        losses.append(loss)
    return torch.stack(losses).mean()


# ------------------------------------------------------------------------------------------
# The shared parameters and training loop
# ------------------------------------------------------------------------------------------


class FeatureUnlearningParams(PairedParams):
    """Parameters shared by Random Encoder and Fix Decoder (plus the common strategy keys).

    Defaults follow the segmentation study: SGD, momentum 0.9, weight decay 1e-3, 20 epochs.

    Attributes:
        alpha: weight α of the forget term (the study: 0.1–0.25).
        retain_feature_weight: weight of the retain feature-preservation MSE.
        retain_task_weight: weight of an optional task loss on retain data through the
            frozen decoder (0 = features only, as in the study).
        resample_noise: redraw the noise every step instead of fixing it per item.
        normalise_features: divide each feature tensor's MSE by that tensor's variance
            under the frozen encoder on the forget set (tensors at different scales weigh
            alike); false = plain MSE.
        trainable: always ``encoder`` (the decoder is fixed by definition).
    """

    epochs: int = Field(default=20, ge=1)
    optimizer: Literal["adam", "sgd"] = "sgd"
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=1e-3, ge=0)
    grad_clip_norm: float | None = Field(default=None, gt=0)
    trainable: Trainable = "encoder"
    alpha: float = Field(default=0.25, ge=0)
    retain_feature_weight: float = Field(default=1.0, ge=0)
    retain_task_weight: float = Field(default=0.0, ge=0)
    resample_noise: bool = False
    normalise_features: bool = True

    @field_validator("trainable")
    @classmethod
    def _encoder_only(cls, value: str) -> str:
        if value != "encoder":
            raise ValueError(
                f"the decoder is frozen by definition in this strategy, so trainable must be "
                f"'encoder' (got {value!r})"
            )
        return value


#: ``target(forget_batch, trained_features) -> target features`` (computed without gradient).
ForgetTargetFn = Callable[[Batch, Features], Features]


def _module_states(modules: Sequence[nn.Module]) -> dict[str, torch.Tensor]:
    """Copies of the parameters and buffers of ``modules``, keyed ``<index>.<name>``."""
    return {
        f"{index}.{key}": value.detach().clone()
        for index, module in enumerate(modules)
        for key, value in module.state_dict().items()
    }


def train_encoder(
    run: UnlearningRun,
    params: FeatureUnlearningParams,
    forget_target: ForgetTargetFn,
    strategy: str,
    statistics: FeatureStatistics | None = None,
) -> StrategyResult:
    """Tune the encoder with the feature loss of the module docstring; decoder frozen.

    ``forget_target`` gives each forget batch's target features (the strategy's choice).

    ``statistics`` (the frozen encoder's on the forget set) give the MSE scales; they are
    computed here when needed and not given.
    """
    task, model, frozen = run.task, run.model, run.frozen
    if run.retain_loader is None:
        raise ValueError(f"Strategy {strategy!r} needs retain data but the run has none")
    decoder_modules = list(task.parts(model).decoder)
    decoder_before = _module_states(decoder_modules)
    tracker = TermTracker()
    scales = None
    if params.normalise_features:
        if statistics is None:
            statistics = feature_statistics(task, frozen, run.forget_loader, model_device(model))
        scales = statistics.variances()

    def loss_fn(trained: nn.Module, pair: tuple[Batch, Batch]) -> torch.Tensor:
        forget_batch, retain_batch = pair
        for module in decoder_modules:  # normalisation statistics of the head stay fixed
            module.eval()
        forget_features = task.encode(trained, forget_batch)
        with torch.no_grad():
            target = forget_target(forget_batch, forget_features)
            held = task.encode(frozen, retain_batch)
        forget_term = features_mse(forget_features, target, scales)
        retain_features = task.encode(trained, retain_batch)
        retain_term = features_mse(retain_features, held, scales)
        tracker.add("forget_feature_mse", forget_term)
        tracker.add("retain_feature_mse", retain_term)
        loss = params.alpha * forget_term + params.retain_feature_weight * retain_term
        if params.retain_task_weight > 0:
            output = task.decode(trained, retain_features, retain_batch)
            task_loss = task.criterion(output, task.target(retain_batch), retain_batch)
            tracker.add("retain_loss", task_loss)
            loss = loss + params.retain_task_weight * task_loss
        return loss

    optimizer = make_optimizer(task, model, params)  # encoder only; decoder requires_grad off
    pairs = PairedBatches(run.forget_loader, run.retain_loader, drive=params.pairing)
    result = train(
        model, pairs, loss_fn, optimizer, loop_for(run.loop, params, strategy), validate=tracker
    )
    after = _module_states(decoder_modules)
    changed = [key for key, value in after.items() if not torch.equal(value, decoder_before[key])]
    if changed:  # pragma: no cover - a broken freeze must never pass silently
        raise RuntimeError(f"{strategy}: the frozen decoder changed in {changed}")
    logger.info("%s: encoder tuned for %d epochs, decoder unchanged", strategy, params.epochs)
    return StrategyResult(
        model=model,
        history=result.history,
        extras={"trained_part": "encoder", "loop_wall_time_s": result.wall_time_s},
    )


def noise_generator(run: UnlearningRun, offset: int) -> torch.Generator:
    """A CPU generator for per-step noise, seeded by the run seed and a per-strategy
    ``offset`` (the fallback when batches carry no item ids, or with ``resample_noise``)."""
    generator = torch.Generator()
    generator.manual_seed(run.seed * 1_000_003 + offset)
    return generator
