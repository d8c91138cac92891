"""The task protocol: what training, unlearning strategies and evaluation need from a task.

A *task* (reconstruction, segmentation) is one object that knows how to build its network
from parameters and how to score a network's output on a batch. Everything generic in the
project (the training loop, every unlearning strategy, membership-inference features) talks
to a model only through a task, so the same strategy code runs on both tasks.

Conventions shared by every task:

- A **batch** is a collated typed sample (:mod:`med_unlearning.data.samples`: a named tuple
  of tensors plus an ``ids`` field naming the items, which the training loop uses in error
  messages). Its fields are task-specific; code outside the task only reads it through the
  task's methods (and :func:`~med_unlearning.training.batches.batch_ids`).
- :meth:`Task.forward` returns the model's prediction in the *target's space* (recon: the
  image at the data's raw scale; segmentation: class logits).
- :meth:`Task.criterion` scores any output against any target (the batch's own, a noisy one,
  a pseudo-target from another model); :meth:`Task.loss` is the training objective on the
  batch's own target, i.e. ``criterion(forward(model, batch), target(batch), batch)``, and
  has the ``loss_fn(model, batch)`` signature of :func:`med_unlearning.training.train`.
- **Features** (for encoder/decoder strategies) are a tuple of tensors: whatever the
  decoder needs from the encoder (e.g. a U-Net's skip connections and bottleneck), so that
  ``decode(model, encode(model, batch), batch) == forward(model, batch)``.
- A **checkpoint** is rebuilt into a network by :meth:`Task.load_checkpoint` only (the
  engine, evaluation and inference all go through it); :func:`rebuild_model` is the
  default implementation a task whose ``build_model()`` needs no extra input can use.
- **Optional capabilities are methods that may answer** ``None``, never missing methods:
  :meth:`Task.data_range` is ``None`` for a task whose target has no intensity range
  (segmentation's class indices), so strategies test ``is not None`` instead of probing
  the task with ``getattr``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from med_unlearning.io.checkpoint import ModelCheckpoint

__all__ = [
    "Batch",
    "Features",
    "ModelParts",
    "Task",
    "output_as_target_by_shape",
    "rebuild_model",
    "soft_target",
]

#: A batch as the loaders of a task yield it (a collated ``ReconSample`` or
#: ``SegmentationSample``: tensors on the device, plus ``ids``; test tasks may use dicts).
Batch = Any

#: What the encoder hands the decoder; see :meth:`Task.encode`.
Features = tuple[torch.Tensor, ...]


@dataclass(frozen=True)
class ModelParts:
    """A split of a network into an encoder and a decoder/head.

    Attributes:
        encoder: the modules that map an input to features.
        decoder: the modules that map features to the output (the "head").

    Every parameter of the network belongs to exactly one of the two parts.
    """

    encoder: Sequence[nn.Module]
    decoder: Sequence[nn.Module]

    def encoder_parameters(self) -> list[nn.Parameter]:
        """The encoder's parameters (e.g. to optimise it alone with the decoder frozen)."""
        return [param for module in self.encoder for param in module.parameters()]

    def decoder_parameters(self) -> list[nn.Parameter]:
        """The decoder's parameters."""
        return [param for module in self.decoder for param in module.parameters()]

    def __repr__(self) -> str:
        def count(modules: Sequence[nn.Module]) -> int:
            return sum(param.numel() for module in modules for param in module.parameters())

        return (
            f"ModelParts(encoder={len(self.encoder)} modules/{count(self.encoder)} params, "
            f"decoder={len(self.decoder)} modules/{count(self.decoder)} params)"
        )


@runtime_checkable
class Task(Protocol):
    """The minimal interface every task implements (see the module docstring).

    Attributes:
        name: the task's name as used in catalog entries and checkpoint metadata
            (``recon``, ``segmentation``).
        architecture: the registry name of the network (:mod:`med_unlearning.models`).
        architecture_params: the factory's keyword arguments, stored in checkpoints.
    """

    name: str
    architecture: str
    architecture_params: dict[str, Any]

    def build_model(self) -> nn.Module:
        """A freshly initialised network (seed the RNG first for reproducible weights)."""
        ...

    def load_checkpoint(self, checkpoint: ModelCheckpoint) -> nn.Module:
        """The trained network stored in ``checkpoint`` (on the CPU, train mode).

        Building the network consumes torch's global RNG exactly like :meth:`build_model`,
        so callers keep their random streams by calling it at the same point.

        Raises:
            ValueError: the checkpoint belongs to another task or architecture.
        """
        ...

    def forward(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """The model's prediction for ``batch``, in the target's space."""
        ...

    def target(self, batch: Batch) -> torch.Tensor:
        """The batch's ground truth, in the same space and shape as :meth:`forward`."""
        ...

    def data_range(self, batch: Batch) -> torch.Tensor | None:
        """Each item's intensity range ``[B]`` (recon: the volume max, raw scale), or
        ``None`` when the target has none (segmentation: class indices).

        Strategies scale noise relative to it and rescale targets between items with it only
        when it is not ``None``; otherwise noise is absolute.
        """
        ...

    def criterion(
        self,
        output: torch.Tensor,
        target: torch.Tensor,
        batch: Batch,
        reduction: Literal["mean", "none"] = "mean",
    ) -> torch.Tensor:
        """The task loss of ``output`` against ``target`` (any target, e.g. a noisy one).

        ``reduction="none"`` returns one value per item of the batch (shape ``[B]``), for
        per-sample losses (membership inference); ``"mean"`` returns their mean.
        """
        ...

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """The training objective on the batch's own target (a scalar to minimise)."""
        ...

    def output_as_target(self, output: torch.Tensor, batch: Batch) -> torch.Tensor:
        """A (frozen) model's ``output`` on ``batch`` as a target :meth:`criterion` accepts
        (detached; e.g. the image itself, or class probabilities from logits)."""
        ...

    def noisy_target(
        self, batch: Batch, scale: float, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """A corrupted version of the batch's target, of strength ``scale``.

        Each task documents what ``scale`` means (recon: noise standard deviation in the
        data's raw units; segmentation: the fraction of randomised labels, or similar).
        """
        ...

    def parts(self, model: nn.Module) -> ModelParts:
        """Which modules of ``model`` form its encoder and which its decoder/head."""
        ...

    def encode(self, model: nn.Module, batch: Batch) -> Features:
        """Run the encoder part on ``batch`` and return what the decoder needs."""
        ...

    def decode(self, model: nn.Module, features: Features, batch: Batch) -> torch.Tensor:
        """Run the decoder part; ``decode(m, encode(m, b), b)`` equals ``forward(m, b)``."""
        ...

    def inputs(self, batch: Batch) -> torch.Tensor:
        """The network input of ``batch`` (the tensor an input perturbation changes)."""
        ...

    def with_inputs(self, batch: Batch, inputs: torch.Tensor) -> Batch:
        """A shallow copy of ``batch`` whose network input is replaced by ``inputs``."""
        ...


def rebuild_model(task: Task, checkpoint: ModelCheckpoint) -> nn.Module:
    """``task.build_model()`` loaded (strictly) with ``checkpoint``'s weights.

    The default :meth:`Task.load_checkpoint` of tasks whose network needs nothing but its
    architecture parameters (reconstruction, test tasks).

    Raises:
        ValueError: the checkpoint is another task's, or holds another architecture or
            other architecture parameters than ``task`` builds.
    """
    meta = checkpoint.metadata
    if meta.task != task.name:
        raise ValueError(
            f"checkpoint {checkpoint.content_hash[:12]} is a {meta.task!r} model, not {task.name!r}"
        )
    if meta.architecture != task.architecture or dict(meta.architecture_params) != dict(
        task.architecture_params
    ):
        raise ValueError(
            f"checkpoint {checkpoint.content_hash[:12]} holds {meta.architecture} "
            f"{meta.architecture_params} but the task builds {task.architecture} "
            f"{task.architecture_params}"
        )
    model = task.build_model()
    model.load_state_dict(checkpoint.state_dict, strict=True)
    return model


def soft_target(output: torch.Tensor) -> torch.Tensor:
    """Class logits ``[B, K, ...]`` as class probabilities (softmax over dim 1, float32):
    the target form of a classifier's output (see :meth:`Task.output_as_target`)."""
    return F.softmax(output.detach().float(), dim=1)


def output_as_target_by_shape(task: Task, output: torch.Tensor, batch: Batch) -> torch.Tensor:
    """A default :meth:`Task.output_as_target` that decides by shape (for small tasks).

    An output shaped like the task's target (an image) is used as is (detached); class
    logits (one more dimension than the class-index target, classes on dim 1) become class
    probabilities.

    Raises:
        ValueError: the output has neither shape.
    """
    output = output.detach()
    target = task.target(batch)
    if output.shape == target.shape:
        return output
    if output.dim() == target.dim() + 1:
        return F.softmax(output.float(), dim=1)
    raise ValueError(
        f"cannot use an output of shape {tuple(output.shape)} as a target for targets of "
        f"shape {tuple(target.shape)}; give the task its own output_as_target method"
    )
