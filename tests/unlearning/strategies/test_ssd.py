"""Tests of Selective Synaptic Dampening (SSD; med_unlearning.unlearning.strategies.ssd)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from med_unlearning.unlearning.registry import get_strategy
from med_unlearning.unlearning.strategies.ssd import (
    SSDParams,
    apply_dampening,
    dampening_factors,
    diagonal_fisher,
    selective_synaptic_dampening,
)


def _state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in module.state_dict().items()}


def _manual_importance(task: Any, model: nn.Module, batches: list[Any]) -> dict[str, torch.Tensor]:
    model = copy.deepcopy(model).eval()
    sums = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    for batch in batches:
        model.zero_grad()
        task.loss(model, batch).backward()
        for name, param in model.named_parameters():
            sums[name] += param.grad.square()
    return {name: total / len(batches) for name, total in sums.items()}


def test_diagonal_fisher_is_the_mean_squared_gradient(
    tiny_task: Any, tiny_model: nn.Module, retain_batches: list[Any]
) -> None:
    batches = retain_batches
    importance = diagonal_fisher(tiny_task, tiny_model, batches)
    expected = _manual_importance(tiny_task, tiny_model, batches)
    assert importance.batches == len(batches) > 1
    for name, value in importance.mean().items():
        assert torch.allclose(value, expected[name], atol=1e-7), name
    assert all(param.grad is None for param in tiny_model.parameters())
    capped = diagonal_fisher(tiny_task, tiny_model, batches, max_batches=1)
    assert capped.batches == 1


def test_dampening_factors_follow_the_rule() -> None:
    forget = {"w": torch.tensor([1.0, 5.0, 20.0, 0.0, 3.0])}
    reference = {"w": torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0])}
    factors = dampening_factors(forget, reference, alpha=2.0, lam=1.5)["w"]
    # 1 <= 2·1: kept; 5 > 2: min(1.5/5, 1); 20 > 2: 1.5/20; 0 > 0 false: kept; 3 > 0: 0
    assert torch.allclose(factors, torch.tensor([1.0, 0.3, 0.075, 1.0, 0.0]))
    capped = dampening_factors(forget, reference, alpha=2.0, lam=100.0)["w"]
    assert torch.equal(capped[:3], torch.ones(3))  # min(λ·r/f, 1) never amplifies


def test_apply_dampening_changes_only_selected_elements() -> None:
    parameter = nn.Parameter(torch.tensor([2.0, -4.0, 6.0]))
    counts = apply_dampening({"p": parameter}, {"p": torch.tensor([1.0, 0.5, 0.0])})
    assert torch.equal(parameter.data, torch.tensor([2.0, -2.0, 0.0]))
    assert counts == {"p": 2}


@pytest.mark.parametrize("reference", ["retain", "retain_and_forget"])
def test_identical_forget_and_retain_data_touch_nothing(
    make_run: Callable[..., Any], forget_batches: list[Any], reference: str
) -> None:
    run = make_run(forget=forget_batches, retain=forget_batches)
    before = _state(run.model)
    result = selective_synaptic_dampening(run, SSDParams(selection_alpha=1.0, reference=reference))
    assert _state(result.model).keys() == before.keys()
    assert all(torch.equal(value, before[key]) for key, value in _state(result.model).items())
    assert result.extras["dampened_parameters"] == 0


def test_ssd_dampens_exactly_the_selected_parameters(make_run: Callable[..., Any]) -> None:
    run = make_run()
    before = {name: p.detach().clone() for name, p in run.model.named_parameters()}
    forget = _manual_importance(run.task, run.model, run.forget_loader)
    retain = _manual_importance(run.task, run.model, run.retain_loader)
    alpha, lam = 2.0, 0.5
    params = SSDParams(selection_alpha=alpha, dampening_lambda=lam)
    result = selective_synaptic_dampening(run, params)
    dampened = 0
    for name, param in result.model.named_parameters():
        selected = forget[name] > alpha * retain[name]
        factor = torch.clamp(lam * retain[name] / forget[name].clamp_min(1e-30), max=1.0)
        expected = torch.where(selected, before[name] * factor, before[name])
        assert torch.allclose(param, expected, rtol=1e-5, atol=1e-8), name
        assert torch.equal(param[~selected], before[name][~selected]), name
        dampened += int((selected & (factor < 1)).sum())
    assert dampened > 0
    assert result.extras["dampened_parameters"] == dampened
    assert result.history["dampened_parameters"].iloc[0] == dampened
    assert all(param.requires_grad for param in result.model.parameters())


def test_ssd_leaves_the_frozen_part_and_buffers(
    tiny_task: Any, make_run: Callable[..., Any]
) -> None:
    class NormNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
            self.decoder = nn.Linear(3, 4)

        def encode(self, x: torch.Tensor) -> torch.Tensor:
            return self.encoder(x)

        def decode(self, h: torch.Tensor) -> torch.Tensor:
            return self.decoder(h)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.decode(self.encode(x))

    torch.manual_seed(0)
    run = make_run(task=type(tiny_task)(model_factory=NormNet), model=NormNet())
    encoder_before = _state(run.model.encoder)
    decoder_before = _state(run.model.decoder)
    result = selective_synaptic_dampening(run, SSDParams(selection_alpha=0.5, trainable="decoder"))
    assert all(torch.equal(v, encoder_before[k]) for k, v in _state(result.model.encoder).items())
    decoder_after = _state(result.model.decoder)
    assert any(not torch.equal(value, decoder_before[key]) for key, value in decoder_after.items())


def test_parameters_are_checked() -> None:
    for bad in ({"selection_alpha": 0.0}, {"dampening_lambda": -1.0}, {"reference": "all"}):
        with pytest.raises(ValidationError):
            SSDParams(**bad)
    assert (SSDParams().selection_alpha, SSDParams().dampening_lambda) == (10.0, 1.0)


def test_registered() -> None:
    spec = get_strategy("ssd")
    assert spec.needs_retain and spec.family == "baseline"
    assert spec.tasks == {"recon", "segmentation"}
