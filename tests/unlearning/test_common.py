"""Tests for med_unlearning.unlearning.common."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from tiny_task import TinyNet, TinyTask

from med_unlearning.tasks.base import output_as_target_by_shape
from med_unlearning.training import LoopSettings
from med_unlearning.unlearning.common import (
    StrategyParams,
    TermTracker,
    bounded_ascent,
    l1_norm,
    loop_for,
    make_optimizer,
    trainable_parameters,
)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("retain_fraction", 0.0),
        ("retain_fraction", 1.2),
        ("lr", -1.0),
        ("epochs", 0),
        ("grad_clip_norm", 0.0),
    ],
)
def test_out_of_range_common_parameters_are_rejected(key: str, value: float) -> None:
    with pytest.raises(ValidationError, match=key):
        StrategyParams(**{key: value})


def test_unknown_keys_are_rejected() -> None:
    with pytest.raises(ValidationError, match="lambda"):
        StrategyParams.model_validate({"lambda": 1.0})


@pytest.mark.parametrize(
    ("trainable", "frozen_part"), [("encoder", "decoder"), ("decoder", "encoder")]
)
def test_trainable_part_only_gets_gradients(trainable: str, frozen_part: str) -> None:
    model = TinyNet()
    kept = trainable_parameters(TinyTask(), model, trainable)  # type: ignore[arg-type]
    assert {id(p) for p in kept} == {id(p) for p in getattr(model, trainable).parameters()}
    assert not any(p.requires_grad for p in getattr(model, frozen_part).parameters())
    assert all(p.requires_grad for p in trainable_parameters(TinyTask(), model, "all"))


def test_head_lr_multiplier_makes_two_groups() -> None:
    model = TinyNet()
    params = StrategyParams(optimizer="sgd", lr=0.01, head_lr_multiplier=100.0)
    optimizer = make_optimizer(TinyTask(), model, params)
    assert isinstance(optimizer, torch.optim.SGD)
    assert [group["lr"] for group in optimizer.param_groups] == pytest.approx([0.01, 1.0])
    adam = make_optimizer(TinyTask(), model, StrategyParams())
    assert isinstance(adam, torch.optim.Adam) and len(adam.param_groups) == 1
    assert adam.defaults["foreach"] is True  # batched updates, not PyTorch's per-tensor CPU loop


def test_loop_for_takes_the_strategy_settings() -> None:
    base = LoopSettings(epochs=9, device="cpu", description="unlearning.recon.ft")
    loop = loop_for(
        base, StrategyParams(epochs=3, grad_clip_norm=None, max_steps_per_epoch=2), "ft"
    )
    assert (loop.epochs, loop.grad_clip_norm, loop.max_steps_per_epoch) == (3, None, 2)
    assert loop.description == "unlearning.recon.ft:ft" and loop.device == "cpu"


def test_bounded_ascent_caps_items_and_stops_their_gradient() -> None:
    losses = torch.tensor([1.0, 5.0], requires_grad=True)
    term = bounded_ascent(losses, bound=2.0)
    assert term.item() == pytest.approx(1.5)
    term.backward()
    assert losses.grad.tolist() == [0.5, 0.0]
    assert bounded_ascent(torch.tensor([1.0, 5.0]), None).item() == pytest.approx(3.0)


def test_l1_norm_counts_trainable_parameters_only() -> None:
    model = TinyNet()
    trainable_parameters(TinyTask(), model, "encoder")
    expected = sum(float(p.detach().abs().sum()) for p in model.encoder.parameters())
    assert l1_norm(model.parameters()).item() == pytest.approx(float(expected))


class _LogitsTask(TinyTask):
    def target(self, batch):  # type: ignore[no-untyped-def]
        return batch["labels"]


def test_output_as_target_by_shape_images_pass_logits_become_probabilities() -> None:
    image = torch.randn(2, 4)
    batch = {"target": torch.zeros(2, 4)}
    assert torch.equal(TinyTask().output_as_target(image, batch), image)
    logits = torch.randn(2, 3, 5)
    probabilities = output_as_target_by_shape(
        _LogitsTask(), logits, {"labels": torch.zeros(2, 5, dtype=torch.long)}
    )
    assert torch.allclose(probabilities, torch.softmax(logits, dim=1))
    with pytest.raises(ValueError, match="output_as_target"):
        output_as_target_by_shape(TinyTask(), torch.randn(2, 3, 4, 5), batch)


def test_term_tracker_reports_epoch_means_and_resets() -> None:
    tracker = TermTracker()
    tracker.add("forget_loss", torch.tensor(1.0))
    tracker.add("forget_loss", 3.0)
    assert tracker() == {"forget_loss": 2.0}
    assert tracker() == {}
