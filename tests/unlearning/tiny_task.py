"""A tiny fake task for unlearning tests: the Task protocol on a tiny encoder/decoder net.

:class:`TinyTask` implements :class:`~med_unlearning.tasks.base.Task` on vector "images"
(``x [B, F]`` → ``target [B, F]``, mean-squared error), so every strategy runs in
milliseconds without MRI data. Its ``name`` is settable (``recon`` or ``segmentation``)
because strategies declare the tasks they apply to. :class:`ScalarNet` is a one-parameter
model for checking the sign of a strategy's update. Import as ``from tiny_task import …``
(``tests/unlearning`` is on ``sys.path`` under pytest's default import mode).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from torch import nn

from med_unlearning.io.checkpoint import CheckpointMetadata, ModelCheckpoint
from med_unlearning.tasks.base import (
    Batch,
    Features,
    ModelParts,
    output_as_target_by_shape,
    rebuild_model,
)

__all__ = ["FEATURES", "ScalarNet", "TinyNet", "TinyTask", "make_batches", "make_checkpoint"]

FEATURES = 4
HIDDEN = 3


class TinyNet(nn.Module):
    """``decoder(tanh(encoder(x)))``: an encoder and a decoder of one linear layer each."""

    def __init__(self, features: int = FEATURES, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.encoder = nn.Linear(features, hidden)
        self.decoder = nn.Linear(hidden, features)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.encoder(x))

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        return self.decoder(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class ScalarNet(nn.Module):
    """``w · x`` with one parameter ``w`` (decoder) and a parameter-free encoder."""

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        self.encoder = nn.Identity()
        self.decoder = nn.Linear(1, 1, bias=False)
        with torch.no_grad():
            self.decoder.weight.fill_(weight)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        return h * self.decoder.weight[0, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class TinyTask:
    """A regression task on ``{"x", "target", "max_value", "ids"}`` batches (MSE loss).

    Args:
        name: the task name strategies see (``recon`` or ``segmentation``).
        model_factory: builds a fresh network with ``encoder``/``decoder`` submodules and
            ``encode``/``decode`` methods (default :class:`TinyNet`).
    """

    architecture = "tiny"
    architecture_params: dict[str, Any] = {}

    def __init__(
        self,
        name: str = "recon",
        model_factory: Callable[[], nn.Module] = TinyNet,
    ) -> None:
        self.name = name
        self.model_factory = model_factory
        self.architecture_params = {}

    def __repr__(self) -> str:
        return f"TinyTask(name={self.name!r})"

    def build_model(self) -> nn.Module:
        return self.model_factory()

    def load_checkpoint(self, checkpoint: ModelCheckpoint) -> nn.Module:
        return rebuild_model(self, checkpoint)

    def forward(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return model(batch["x"])

    def target(self, batch: Batch) -> torch.Tensor:
        return batch["target"]

    def data_range(self, batch: Batch) -> torch.Tensor:
        return batch["max_value"]

    def output_as_target(self, output: torch.Tensor, batch: Batch) -> torch.Tensor:
        return output_as_target_by_shape(self, output, batch)

    def criterion(
        self,
        output: torch.Tensor,
        target: torch.Tensor,
        batch: Batch,
        reduction: Literal["mean", "none"] = "mean",
    ) -> torch.Tensor:
        per_item = ((output - target) ** 2).flatten(1).mean(dim=1)
        return per_item.mean() if reduction == "mean" else per_item

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return self.criterion(self.forward(model, batch), self.target(batch), batch)

    def noisy_target(
        self, batch: Batch, scale: Any, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        target = self.target(batch)
        noise = torch.randn(target.shape, generator=generator, dtype=target.dtype)
        return target + torch.as_tensor(scale, dtype=target.dtype) * noise.to(target.device)

    def parts(self, model: nn.Module) -> ModelParts:
        return ModelParts(encoder=[model.encoder], decoder=[model.decoder])

    def encode(self, model: nn.Module, batch: Batch) -> Features:
        return (model.encode(batch["x"]),)

    def decode(self, model: nn.Module, features: Features, batch: Batch) -> torch.Tensor:
        return model.decode(features[0])

    def inputs(self, batch: Batch) -> torch.Tensor:
        return batch["x"]

    def with_inputs(self, batch: Batch, inputs: torch.Tensor) -> Batch:
        return {**batch, "x": inputs}


def make_batches(
    prefix: str,
    n_items: int,
    batch_size: int = 2,
    *,
    seed: int = 0,
    features: int = FEATURES,
    offset: float = 0.0,
) -> list[Batch]:
    """A list of batches (a re-iterable "loader") of ``n_items`` random items.

    Items are named ``<prefix>_<i>``; targets are ``x + offset`` so retain and forget sets
    can be made to differ.
    """
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n_items, features, generator=generator)
    target = x + offset
    ids = [f"{prefix}_{index}" for index in range(n_items)]
    batches = []
    for start in range(0, n_items, batch_size):
        stop = min(start + batch_size, n_items)
        batches.append(
            {
                "x": x[start:stop],
                "target": target[start:stop],
                "max_value": target[start:stop].abs().amax(dim=1),
                "ids": ids[start:stop],
            }
        )
    return batches


def make_checkpoint(
    model: nn.Module,
    task_name: str = "recon",
    manifest: Sequence[str] = ("r_0", "r_1", "f_0"),
    **metadata: Any,
) -> ModelCheckpoint:
    """A checkpoint of ``model`` as the task pipelines write one (original model)."""
    state_dict = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
    return ModelCheckpoint(
        state_dict=state_dict,
        metadata=CheckpointMetadata(
            task=task_name,
            architecture="tiny",
            architecture_params={},
            data_manifest=list(manifest),
            **metadata,
        ),
    )
