"""Tests of model composition (body + head of two runs) and weight interpolation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from med_unlearning.unlearning.registry import get_strategy
from med_unlearning.unlearning.strategies.composition import (
    CompositionParams,
    compose_parts,
    composition,
)
from med_unlearning.unlearning.strategies.interpolation import (
    InterpolationParams,
    interpolate_weights,
    interpolation,
)


class NormNet(nn.Module):
    """A tiny net whose encoder and decoder both hold BatchNorm buffers."""

    def __init__(self, hidden: int = 3) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, hidden), nn.BatchNorm1d(hidden))
        self.decoder = nn.Sequential(nn.BatchNorm1d(hidden), nn.Linear(hidden, 4))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        return self.decoder(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


def _seeded(factory: Callable[[], nn.Module], seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = factory()
    with torch.no_grad():  # distinct buffers too, so provenance of every tensor is checkable
        for _name, buffer in model.named_buffers():
            if buffer.is_floating_point():
                buffer.copy_(torch.rand(buffer.shape) + seed)
            else:
                buffer.fill_(seed)
    return model


def _state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in module.state_dict().items()}


def _equal(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> bool:
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


# ---- compose_parts ----------------------------------------------------------------------


def test_compose_takes_encoder_from_body_and_decoder_from_head(tiny_task: Any) -> None:
    task = tiny_task
    body, head = _seeded(NormNet, 1), _seeded(NormNet, 2)
    body_state, head_state = _state(body), _state(head)
    composed = compose_parts(task, body, head)
    assert _equal(_state(composed.encoder), _state(body.encoder))
    assert _equal(_state(composed.decoder), _state(head.decoder))
    assert not _equal(_state(composed.encoder), _state(head.encoder))
    assert not _equal(_state(composed.decoder), _state(body.decoder))
    # inputs untouched and not shared with the result
    assert _equal(_state(body), body_state) and _equal(_state(head), head_state)
    assert composed.encoder[0].weight.data_ptr() != body.encoder[0].weight.data_ptr()


def test_compose_rejects_different_architectures(tiny_task: Any) -> None:
    with pytest.raises(ValueError, match="different architectures"):
        compose_parts(tiny_task, NormNet(), NormNet(hidden=5))


# ---- interpolate_weights ----------------------------------------------------------------


def test_interpolation_end_points_are_exact() -> None:
    start, end = _seeded(NormNet, 1), _seeded(NormNet, 2)
    assert _equal(_state(interpolate_weights(start, end, 0.0)), _state(start))
    assert _equal(_state(interpolate_weights(start, end, 1.0)), _state(end))


def test_interpolation_is_linear_in_every_float_tensor() -> None:
    start, end = _seeded(NormNet, 1), _seeded(NormNet, 2)
    mixed = _state(interpolate_weights(start, end, 0.25))
    for key, value in start.state_dict().items():
        if value.is_floating_point():
            assert torch.allclose(mixed[key], 0.75 * value + 0.25 * end.state_dict()[key]), key
        else:  # num_batches_tracked from the nearer end
            assert torch.equal(mixed[key], value), key
    late = _state(interpolate_weights(start, end, 0.75))
    key = "encoder.1.num_batches_tracked"
    assert torch.equal(late[key], end.state_dict()[key])


def test_interpolation_rejects_bad_t_and_architectures() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        interpolate_weights(NormNet(), NormNet(), 1.5)
    with pytest.raises(ValueError, match="different architectures"):
        interpolate_weights(NormNet(), NormNet(hidden=5), 0.5)


# ---- the strategies ---------------------------------------------------------------------


def test_composition_strategy_combines_named_runs(
    tiny_model: nn.Module, make_run: Callable[..., Any]
) -> None:
    net_class = type(tiny_model)
    retainer, forgetter = _seeded(net_class, 3), _seeded(net_class, 4)
    run = make_run(others={"ft": retainer, "noisy_label": forgetter})
    params = CompositionParams(body_from="ft", head_from="noisy_label")
    assert params.required_runs() == ("ft", "noisy_label")
    result = composition(run, params)
    assert _equal(_state(result.model.encoder), _state(retainer.encoder))
    assert _equal(_state(result.model.decoder), _state(forgetter.decoder))
    assert result.extras == {"body_from": "ft", "head_from": "noisy_label", "finetuned": False}
    assert all(param.requires_grad for param in result.model.parameters())


def test_composition_with_the_original_model(
    tiny_model: nn.Module, make_run: Callable[..., Any]
) -> None:
    forgetter = _seeded(type(tiny_model), 4)
    run = make_run(others={"boundary": forgetter})
    params = CompositionParams(body_from="original", head_from="boundary")
    assert params.required_runs() == ("boundary",)
    result = composition(run, params)
    assert _equal(_state(result.model.encoder), _state(run.frozen.encoder))
    assert _equal(_state(result.model.decoder), _state(forgetter.decoder))
    assert all(param.requires_grad for param in result.model.parameters())


def test_composition_finetune_trains_only_the_chosen_part(
    tiny_model: nn.Module, make_run: Callable[..., Any]
) -> None:
    net_class = type(tiny_model)
    retainer, forgetter = _seeded(net_class, 3), _seeded(net_class, 4)
    run = make_run(others={"ft": retainer, "nl_ft": forgetter})
    params = CompositionParams(
        body_from="ft", head_from="nl_ft", finetune=True, epochs=3, lr=0.05, trainable="decoder",
        grad_clip_norm=None,
    )
    result = composition(run, params)
    assert len(result.history) == 3 and result.extras["finetuned"]
    assert _equal(_state(result.model.encoder), _state(retainer.encoder))
    assert not _equal(_state(result.model.decoder), _state(forgetter.decoder))


def test_composition_names_missing_runs(
    tiny_model: nn.Module, make_run: Callable[..., Any]
) -> None:
    run = make_run(others={"ft": _seeded(type(tiny_model), 3)})
    with pytest.raises(ValueError, match=r"'max_loss'.*\['ft', 'original'\]"):
        composition(run, CompositionParams(body_from="ft", head_from="max_loss"))


def test_interpolation_strategy(tiny_model: nn.Module, make_run: Callable[..., Any]) -> None:
    other = _seeded(type(tiny_model), 5)
    run = make_run(others={"ga_l1": other})
    at_start = interpolation(run, InterpolationParams(end_run="ga_l1", t=0.0)).model
    at_end = interpolation(run, InterpolationParams(end_run="ga_l1", t=1.0)).model
    middle = interpolation(run, InterpolationParams(end_run="ga_l1", t=0.5)).model
    assert _equal(_state(at_start), _state(run.frozen))
    assert _equal(_state(at_end), _state(other))
    expected = 0.5 * run.frozen.encoder.weight + 0.5 * other.encoder.weight
    assert torch.allclose(middle.encoder.weight, expected)
    assert InterpolationParams(end_run="ga_l1").required_runs() == ("ga_l1",)


def test_parameters_are_checked() -> None:
    defaults = CompositionParams()
    assert defaults.required_runs() == ("ft", "noisy_label") and not defaults.finetune
    assert InterpolationParams().required_runs() == ("noisy_label",)
    with pytest.raises(ValidationError):
        CompositionParams(body_from="")
    with pytest.raises(ValidationError, match="not a combinable run"):
        CompositionParams(body_from="ft", head_from="no_such_run")
    with pytest.raises(ValidationError, match="not a combinable run"):
        InterpolationParams(start_run="composition", end_run="ft")
    with pytest.raises(ValidationError):
        InterpolationParams(end_run="ft", t=-0.1)
    with pytest.raises(ValidationError):
        InterpolationParams(end_run="ft", t=1.1)


#: The runs composition and interpolation combined before the registry derived them (the
#: hand-kept list of the redesign's starting point): the composition nodes' inputs, in order.
PINNED_COMBINABLE_RUNS = (
    "ft",
    "full_ft",
    "ga_l1",
    "ga_l1_ft",
    "nl",
    "nl_ft",
    "neggrad_plus",
    "max_loss",
    "noisy_label",
    "retain_label",
    "random_encoder",
    "fix_decoder",
    "boundary",
    "ssd",
)


def test_registered_and_wired_to_the_combinable_runs() -> None:
    from med_unlearning.unlearning.engine import combined_runs
    from med_unlearning.unlearning.registry import available_strategies, combinable_runs

    assert get_strategy("composition").needs_retain
    assert not get_strategy("interpolation").needs_retain
    assert get_strategy("interpolation").tasks == {"recon", "segmentation"}
    # derived from the registry, and still exactly (and in the order of) the built-in list
    assert combinable_runs() == PINNED_COMBINABLE_RUNS
    assert combined_runs("composition") == combined_runs("interpolation") == combinable_runs()
    # every combinable run is a registered strategy on both tasks (else the grid drops us)
    for task in ("recon", "segmentation"):
        assert set(combinable_runs()) <= set(available_strategies(task))


def test_a_new_strategy_becomes_combinable_by_registering(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from med_unlearning.unlearning import registry

    registry.load_strategies()
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    both = registry.register_strategy(
        "extra_both", CompositionParams, family="baseline", description="test"
    )
    one = registry.register_strategy(
        "extra_recon", CompositionParams, tasks=["recon"], family="baseline", description="test"
    )
    both(lambda run, params: None)  # type: ignore[arg-type,return-value]
    one(lambda run, params: None)  # type: ignore[arg-type,return-value]
    assert registry.combinable_runs() == (*PINNED_COMBINABLE_RUNS, "extra_both")
    assert registry.combinable_runs(["recon"])[-2:] == ("extra_both", "extra_recon")
    assert get_strategy("composition").combined_runs()[-1] == "extra_both"
    assert InterpolationParams(end_run="extra_both").required_runs() == ("extra_both",)
    with pytest.raises(ValidationError, match="not a combinable run"):
        InterpolationParams(end_run="extra_recon")  # it would not exist for segmentation
