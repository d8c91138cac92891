"""Tests of boundary unlearning (perturbed sign gradient): inner step, targets, outer loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from torch import nn

from med_unlearning.data.labels import IGNORE_INDEX
from med_unlearning.tasks.base import Batch, Features, ModelParts, soft_target
from med_unlearning.unlearning.registry import get_strategy
from med_unlearning.unlearning.strategies.boundary import (
    BoundaryParams,
    boundary,
    boundary_inputs,
    boundary_target,
    nearest_wrong_class,
)

CLASSES = 4
VOXELS = 5


class VoxelNet(nn.Module):
    """``[B, 4]`` inputs → per-"voxel" logits ``[B, CLASSES, VOXELS]``."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(4, 6)
        self.decoder = nn.Linear(6, CLASSES * VOXELS)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.encoder(x))

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        return self.decoder(h).reshape(-1, CLASSES, VOXELS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class VoxelTask:
    """A segmentation-like task: class-index targets ``[B, VOXELS]``, cross-entropy."""

    name = "segmentation"
    architecture = "voxel"
    architecture_params: dict[str, Any] = {}

    def build_model(self) -> nn.Module:
        return VoxelNet()

    def forward(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return model(batch["image"])

    def target(self, batch: Batch) -> torch.Tensor:
        return batch["label"]

    def criterion(
        self,
        output: torch.Tensor,
        target: torch.Tensor,
        batch: Batch,
        reduction: Literal["mean", "none"] = "mean",
    ) -> torch.Tensor:
        if target.is_floating_point():
            per_voxel = -(target * F.log_softmax(output, dim=1)).sum(1)
        else:
            per_voxel = F.cross_entropy(output, target, ignore_index=IGNORE_INDEX, reduction="none")
        per_item = per_voxel.mean(1)
        return per_item.mean() if reduction == "mean" else per_item

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return self.criterion(self.forward(model, batch), self.target(batch), batch)

    def noisy_target(self, batch: Batch, scale: float, generator: Any = None) -> torch.Tensor:
        raise NotImplementedError

    def data_range(self, batch: Batch) -> None:
        return None

    def output_as_target(self, output: torch.Tensor, batch: Batch) -> torch.Tensor:
        return soft_target(output)

    def parts(self, model: nn.Module) -> ModelParts:
        return ModelParts(encoder=[model.encoder], decoder=[model.decoder])

    def encode(self, model: nn.Module, batch: Batch) -> Features:
        return (model.encode(batch["image"]),)

    def decode(self, model: nn.Module, features: Features, batch: Batch) -> torch.Tensor:
        return model.decode(features[0])

    def inputs(self, batch: Batch) -> torch.Tensor:
        return batch["image"]

    def with_inputs(self, batch: Batch, inputs: torch.Tensor) -> Batch:
        return {**batch, "image": inputs}


def _voxel_batches(prefix: str, n_items: int, seed: int) -> list[Batch]:
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for start in range(0, n_items, 2):
        size = min(2, n_items - start)
        batches.append(
            {
                "image": torch.rand(size, 4, generator=generator),
                "label": torch.randint(0, CLASSES, (size, VOXELS), generator=generator),
                "ids": [f"{prefix}_{start + i}" for i in range(size)],
            }
        )
    return batches


@pytest.fixture
def voxel_run(make_run: Callable[..., Any]) -> Callable[..., Any]:
    def factory(epochs: int = 1, seed: int = 0) -> Any:
        torch.manual_seed(1)
        return make_run(
            task=VoxelTask(),
            model=VoxelNet(),
            forget=_voxel_batches("f", 4, 1),
            retain=_voxel_batches("r", 6, 2),
            epochs=epochs,
            seed=seed,
        )

    return factory


# ---- nearest wrong class ----------------------------------------------------------------


def test_nearest_wrong_class_is_the_best_other_class() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, CLASSES, 7, generator=generator)
    labels = logits.argmax(1)  # the true class is the top class: the answer is the runner-up
    labels[0, 0] = IGNORE_INDEX
    wrong = nearest_wrong_class(logits, labels)
    runner_up = logits.topk(2, dim=1).indices[:, 1]
    valid = labels != IGNORE_INDEX
    assert torch.equal(wrong[valid], runner_up[valid])
    assert wrong[0, 0] == IGNORE_INDEX
    assert not (wrong[valid] == labels[valid]).any()


def test_nearest_wrong_class_keeps_the_top_class_when_it_is_wrong() -> None:
    logits = torch.tensor([[[5.0], [1.0], [3.0]]])  # [1, 3 classes, 1 voxel]
    assert nearest_wrong_class(logits, torch.tensor([[1]])).item() == 0
    assert nearest_wrong_class(logits, torch.tensor([[0]])).item() == 2


def test_soft_wrong_class_targets_exclude_the_true_class() -> None:
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(2, CLASSES, 6, generator=generator)
    labels = torch.randint(0, CLASSES, (2, 6), generator=generator)
    soft = nearest_wrong_class(logits, labels, soft=True)
    assert soft.shape == logits.shape
    assert torch.allclose(soft.sum(1), torch.ones(2, 6))
    assert torch.equal(soft.gather(1, labels[:, None]), torch.zeros(2, 1, 6))
    assert torch.equal(soft.argmax(1), nearest_wrong_class(logits, labels))


# ---- inner step -------------------------------------------------------------------------


def test_inner_step_follows_the_frozen_gradient_sign_inside_the_ball(
    voxel_run: Callable[..., Any],
) -> None:
    run = voxel_run()
    batch = run.forget_loader[0]
    params = BoundaryParams(epsilon=0.1, closeness=0.0, noise_scale=0.0)
    perturbed = boundary_inputs(run.task, run.frozen, batch, params, closeness=0.0)
    x = batch["image"].clone().requires_grad_(True)
    loss = run.task.criterion(run.frozen(x), batch["label"], batch)
    (gradient,) = torch.autograd.grad(loss, x)
    scale = (batch["image"].amax(1) - batch["image"].amin(1))[:, None]
    assert torch.allclose(perturbed - batch["image"], 0.1 * scale * gradient.sign(), atol=1e-6)
    # the step raises the frozen model's loss on the true labels (towards the boundary)
    with torch.no_grad():
        assert run.task.criterion(run.frozen(perturbed), batch["label"], batch) > loss


@pytest.mark.parametrize("distribution", ["gaussian", "laplace", "cauchy", "uniform"])
def test_inner_step_with_noise_and_pull_stays_in_the_ball(
    voxel_run: Callable[..., Any], distribution: str
) -> None:
    run = voxel_run()
    batch = run.forget_loader[0]
    params = BoundaryParams(
        epsilon=0.05, step_size=0.2, closeness=0.5, noise_scale=1.0, noise_distribution=distribution
    )
    generator = torch.Generator().manual_seed(0)
    perturbed = boundary_inputs(run.task, run.frozen, batch, params, 0.5, generator)
    scale = (batch["image"].amax(1) - batch["image"].amin(1))[:, None]
    assert ((perturbed - batch["image"]).abs() <= 0.05 * scale + 1e-6).all()
    assert not torch.equal(perturbed, batch["image"])


def test_segmentation_target_is_the_frozen_best_wrong_class_at_the_perturbed_input(
    voxel_run: Callable[..., Any],
) -> None:
    run = voxel_run()
    batch = run.forget_loader[0]
    perturbed = batch["image"] + 0.05
    target = boundary_target(run.task, run.frozen, batch, perturbed)
    with torch.no_grad():
        logits = run.frozen(perturbed)
    masked = logits.clone()
    masked.scatter_(1, batch["label"][:, None], float("-inf"))
    assert torch.equal(target, masked.argmax(1))
    assert not (target == batch["label"]).any()


def test_reconstruction_target_is_the_frozen_output_at_the_perturbed_input(
    make_run: Callable[..., Any],
) -> None:
    run = make_run()
    batch = run.forget_loader[0]
    perturbed = batch["x"] * 1.1
    target = boundary_target(run.task, run.frozen, batch, perturbed)
    with torch.no_grad():
        assert torch.equal(target, run.frozen(perturbed))


# ---- the strategy -----------------------------------------------------------------------


def test_boundary_runs_on_segmentation_targets(voxel_run: Callable[..., Any]) -> None:
    run = voxel_run(epochs=3)
    before = {key: value.clone() for key, value in run.model.state_dict().items()}
    params = BoundaryParams(epochs=3, lr=0.05, closeness=0.4, closeness_schedule="inverse")
    result = boundary(run, params)
    after = result.model.state_dict()
    assert any(not torch.equal(value, before[key]) for key, value in after.items())
    assert result.extras["closeness_per_pass"] == pytest.approx([0.4, 0.2, 0.4 / 3])
    assert list(result.history["closeness"]) == pytest.approx([0.4, 0.2, 0.4 / 3])
    assert {"forget_loss", "retain_loss"} <= set(result.history.columns)


def test_boundary_forget_term_decreases_towards_wrong_classes(
    voxel_run: Callable[..., Any],
) -> None:
    run = voxel_run(epochs=15)

    def wrong_fraction(model: nn.Module) -> float:
        with torch.no_grad():
            return torch.cat(
                [
                    (model(b["image"]).argmax(1) != b["label"]).float().flatten()
                    for b in run.forget_loader
                ]
            ).mean().item()

    before = wrong_fraction(run.frozen)
    result = boundary(run, BoundaryParams(epochs=15, lr=1.0, retain_weight=0.0, noise_scale=0.0))
    forget = result.history["forget_loss"]
    assert forget.iloc[-1] < 0.2 * forget.iloc[0]
    # the forget voxels end up predicted as a wrong class
    assert before < 0.8
    assert wrong_fraction(result.model) > 0.95


def test_boundary_runs_on_reconstruction_targets(
    tiny_task: Any, make_run: Callable[..., Any]
) -> None:
    run = make_run(task=tiny_task, epochs=2)
    before = {key: value.clone() for key, value in run.model.state_dict().items()}
    result = boundary(run, BoundaryParams(epochs=2, lr=0.01, soft_targets=True))
    after = result.model.state_dict()
    assert any(not torch.equal(value, before[key]) for key, value in after.items())
    assert len(result.history) == 2


def test_distillation_retain_term_matches_the_frozen_model(make_run: Callable[..., Any]) -> None:
    labels = boundary(make_run(), BoundaryParams(epochs=1, retain_mode="labels"))
    distil = boundary(make_run(), BoundaryParams(epochs=1, retain_mode="distillation"))
    # the working copy starts as the frozen model, and lr 1e-5 barely moves it
    assert distil.history["retain_loss"].iloc[0] < 1e-6
    assert labels.history["retain_loss"].iloc[0] > 1e-2


def test_forget_only_when_retain_weight_is_zero(make_run: Callable[..., Any]) -> None:
    run = make_run()
    run.retain_loader = None
    result = boundary(run, BoundaryParams(epochs=1, retain_weight=0.0))
    assert "retain_loss" not in result.history.columns
    run = make_run()
    run.retain_loader = None
    with pytest.raises(ValueError, match="needs retain data"):
        boundary(run, BoundaryParams(epochs=1))


def test_same_seed_same_model(voxel_run: Callable[..., Any]) -> None:
    params = BoundaryParams(epochs=2, lr=0.05, noise_scale=0.5, noise_distribution="laplace")
    first = boundary(voxel_run(epochs=2, seed=3), params).model.state_dict()
    second = boundary(voxel_run(epochs=2, seed=3), params).model.state_dict()
    assert all(torch.equal(first[key], second[key]) for key in first)


def test_parameters_are_range_checked() -> None:
    for bad in ({"epsilon": -0.1}, {"closeness": -1.0}, {"noise_scale": -0.5},
                {"closeness_decay": 0.0}, {"noise_distribution": "poisson"},
                {"closeness_schedule": "cosine"}, {"retain_mode": "other"}):
        with pytest.raises(ValidationError):
            BoundaryParams(**bad)
    params = BoundaryParams()
    assert (params.lr, params.momentum, params.epochs, params.epsilon) == (1e-5, 0.9, 10, 0.1)
    assert params.optimizer == "sgd" and params.pairing == "forget"


def test_registered_for_both_tasks() -> None:
    spec = get_strategy("boundary")
    assert spec.tasks == {"recon", "segmentation"} and spec.family == "bilevel_study"

