"""Tests of the feature-space strategies Random Encoder and Fix Decoder and their shared code
(med_unlearning.unlearning.strategies.{random_encoder,fix_decoder,_features})."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from med_unlearning.data.samples import SegmentationSample
from med_unlearning.unlearning.registry import get_strategy
from med_unlearning.unlearning.strategies._features import (
    FeatureStatistics,
    feature_statistics,
    features_mse,
    input_matched_noise,
    item_generators,
    matched_feature_noise,
)
from med_unlearning.unlearning.strategies.fix_decoder import FixDecoderParams, fix_decoder
from med_unlearning.unlearning.strategies.random_encoder import RandomEncoderParams, random_encoder

STRATEGIES = {"random_encoder": (random_encoder, RandomEncoderParams),
              "fix_decoder": (fix_decoder, FixDecoderParams)}


class NormNet(nn.Module):
    """Encoder Linear+BatchNorm; decoder BatchNorm+Linear (buffers that train mode would move)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
        self.decoder = nn.Sequential(nn.BatchNorm1d(3), nn.Linear(3, 4))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.encoder(x))

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        return self.decoder(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


def _state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in module.state_dict().items()}


# ---- statistics and noise ---------------------------------------------------------------


def test_feature_statistics_are_per_channel_mean_and_std(
    tiny_task: Any, tiny_model: nn.Module, forget_batches: list[Any], retain_batches: list[Any]
) -> None:
    batches = forget_batches + retain_batches
    statistics = feature_statistics(tiny_task, tiny_model.eval(), batches)
    with torch.no_grad():
        features = torch.cat([tiny_model.encode(batch["x"]) for batch in batches])
    assert statistics.items == sum(len(batch["ids"]) for batch in batches)
    assert torch.allclose(statistics.means[0], features.mean(0), atol=1e-6)
    assert torch.allclose(statistics.stds[0], features.std(0, unbiased=False), atol=1e-6)


def test_matched_feature_noise_has_the_statistics() -> None:
    statistics = FeatureStatistics(
        means=(torch.tensor([-2.0, 0.0, 5.0]),), stds=(torch.tensor([0.5, 1.0, 3.0]),), items=1
    )
    template = (torch.zeros(4000, 3, 6),)
    generator = torch.Generator().manual_seed(0)
    (noise,) = matched_feature_noise(template, statistics, generator=generator)
    assert noise.shape == template[0].shape
    per_channel = noise.movedim(1, -1).reshape(-1, 3)
    assert torch.allclose(per_channel.mean(0), statistics.means[0], atol=0.05)
    assert torch.allclose(per_channel.std(0), statistics.stds[0], rtol=0.03)


def test_item_noise_is_fixed_per_item_whatever_the_batch() -> None:
    statistics = FeatureStatistics(means=(torch.zeros(3),), stds=(torch.ones(3),), items=1)
    template = (torch.zeros(2, 3),)
    def noise(ids: list[str], seed: int) -> tuple[torch.Tensor, ...]:
        gens = item_generators({"ids": ids}, seed, "s")
        return matched_feature_noise(template, statistics, item_gens=gens)

    first, swapped, other_seed = noise(["a", "b"], 0), noise(["b", "a"], 0), noise(["a", "b"], 1)
    assert torch.equal(first[0][0], swapped[0][1]) and torch.equal(first[0][1], swapped[0][0])
    assert not torch.equal(first[0], other_seed[0])
    assert item_generators({"x": torch.zeros(2)}, 0, "s") is None


def test_input_matched_noise_has_each_items_channel_statistics() -> None:
    generator = torch.Generator().manual_seed(1)
    inputs = torch.stack(
        [
            torch.randn(2, 40, 40, generator=generator) * 3 + 7,
            torch.rand(2, 40, 40, generator=generator),
        ]
    )
    noise = input_matched_noise(inputs, generator=torch.Generator().manual_seed(2))
    assert noise.shape == inputs.shape
    expected_mean = inputs.mean(dim=(2, 3))
    expected_std = inputs.std(dim=(2, 3), unbiased=False)
    assert torch.allclose(noise.mean(dim=(2, 3)), expected_mean, atol=0.1 * expected_std.max())
    assert torch.allclose(noise.std(dim=(2, 3)), expected_std, rtol=0.06)


def test_features_mse_averages_over_tensors() -> None:
    features = (torch.zeros(2, 3), torch.zeros(2, 5))
    targets = (torch.ones(2, 3), torch.full((2, 5), 3.0))
    assert features_mse(features, targets).item() == pytest.approx((1.0 + 9.0) / 2)
    with pytest.raises(ValueError, match="feature tensors"):
        features_mse(features, targets[:1])


def test_scaled_features_mse_divides_each_tensor() -> None:
    features = (torch.zeros(2, 3), torch.zeros(2, 5))
    targets = (torch.ones(2, 3), torch.full((2, 5), 3.0))
    scaled = features_mse(features, targets, scales=(2.0, 9.0)).item()
    assert scaled == pytest.approx((1.0 / 2.0 + 9.0 / 9.0) / 2)
    with pytest.raises(ValueError, match="scales"):
        features_mse(features, targets, scales=(1.0,))


def test_statistics_variances_pool_the_channels() -> None:
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(50, 3, 7, generator=generator) * torch.tensor([1.0, 2.0, 0.5])[:, None]
    features = features + torch.tensor([0.0, 3.0, -1.0])[:, None]
    task = _FeatureOnlyTask()
    batches = [{"x": features[:20]}, {"x": features[20:]}]
    statistics = feature_statistics(task, nn.Identity(), batches)
    assert statistics.variances()[0] == pytest.approx(features.var(unbiased=False).item(), rel=1e-5)


class _FeatureOnlyTask:
    """The least a task needs for :func:`feature_statistics`: ``encode`` and ``inputs``."""

    def encode(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return (model(batch["x"]),)

    def inputs(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return batch["x"]


# ---- the strategies ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_decoder_bit_identical_and_encoder_changes(
    name: str, any_task: Any, make_run: Callable[..., Any]
) -> None:
    strategy, params_model = STRATEGIES[name]
    run = make_run(task=any_task, epochs=2)
    decoder_before = _state(run.model.decoder)
    encoder_before = _state(run.model.encoder)
    result = strategy(run, params_model(epochs=2, lr=0.05))
    for key, value in _state(result.model.decoder).items():
        assert torch.equal(value, decoder_before[key]), key
    assert any(
        not torch.equal(value, encoder_before[key])
        for key, value in _state(result.model.encoder).items()
    )
    assert list(result.history["epoch"]) == [1, 2]
    assert {"forget_feature_mse", "retain_feature_mse"} <= set(result.history.columns)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_decoder_normalisation_buffers_stay_fixed(
    name: str, tiny_task: Any, make_run: Callable[..., Any]
) -> None:
    strategy, params_model = STRATEGIES[name]
    torch.manual_seed(3)
    model = NormNet()
    task = type(tiny_task)("segmentation", model_factory=NormNet)
    run = make_run(task=task, model=model, epochs=2)
    decoder_before = _state(run.model.decoder)
    encoder_before = _state(run.model.encoder)
    result = strategy(run, params_model(epochs=2, lr=0.05, retain_task_weight=1.0))
    for key, value in _state(result.model.decoder).items():
        assert torch.equal(value, decoder_before[key]), key
    # the encoder's BatchNorm statistics do move (train mode), proving the check can fail
    assert not torch.equal(result.model.encoder[1].running_mean, encoder_before["1.running_mean"])


@pytest.mark.parametrize("normalise, lr", [(True, 0.01), (False, 0.1)])
@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_forget_features_move_towards_their_target(
    name: str, normalise: bool, lr: float, make_run: Callable[..., Any]
) -> None:
    strategy, params_model = STRATEGIES[name]
    run = make_run(epochs=30)
    params = params_model(
        epochs=30, lr=lr, alpha=1.0, retain_feature_weight=0.0, momentum=0.0,
        normalise_features=normalise,
    )
    forget = strategy(run, params).history["forget_feature_mse"]
    assert forget.iloc[-1] < 0.5 * forget.iloc[0]


def test_retain_features_are_held(make_run: Callable[..., Any]) -> None:
    """With only the retain term the encoder stays where it is on retain data."""
    run = make_run(epochs=5)
    frozen = copy.deepcopy(run.frozen)
    result = random_encoder(run, RandomEncoderParams(epochs=5, lr=0.1, alpha=0.0, weight_decay=0.0))
    assert result.history["retain_feature_mse"].max() == pytest.approx(0.0, abs=1e-12)
    for key, value in _state(result.model).items():
        assert torch.equal(value, frozen.state_dict()[key]), key


def test_random_encoder_targets_follow_the_frozen_statistics(make_run: Callable[..., Any]) -> None:
    run = make_run()
    result = random_encoder(run, RandomEncoderParams(epochs=1))
    (summary,) = result.extras["feature_statistics"]
    statistics = feature_statistics(run.task, run.frozen, run.forget_loader)
    assert summary["mean"] == pytest.approx(float(statistics.means[0].mean()))
    assert summary["std"] == pytest.approx(float(statistics.stds[0].mean()))


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_same_seed_same_model(name: str, make_run: Callable[..., Any]) -> None:
    strategy, params_model = STRATEGIES[name]
    params = params_model(epochs=2, lr=0.05)
    first = strategy(make_run(seed=7, epochs=2), params).model.state_dict()
    second = strategy(make_run(seed=7, epochs=2), params).model.state_dict()
    other = strategy(make_run(seed=8, epochs=2), params).model.state_dict()
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert any(not torch.equal(first[key], other[key]) for key in first)


def test_parameters_are_checked() -> None:
    with pytest.raises(ValidationError, match="decoder is frozen"):
        RandomEncoderParams(trainable="all")
    with pytest.raises(ValidationError):
        FixDecoderParams(alpha=-0.1)
    with pytest.raises(ValidationError):
        RandomEncoderParams(unknown_key=1)


def test_missing_retain_data_is_an_error(make_run: Callable[..., Any]) -> None:
    run = make_run()
    run.retain_loader = None
    with pytest.raises(ValueError, match="needs retain data"):
        fix_decoder(run, FixDecoderParams(epochs=1))


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_registered_for_both_tasks(name: str) -> None:
    spec = get_strategy(name)
    assert spec.tasks == {"recon", "segmentation"}
    assert spec.needs_retain and spec.family == "segmentation_study"


# ---- on the real segmentation network ---------------------------------------------------


def _segmentation_run(make_run: Callable[..., Any]) -> Any:
    from med_unlearning.data.labels import get_label_mapping
    from med_unlearning.tasks.segmentation import InferenceSettings, SegmentationTask

    task = SegmentationTask(
        architecture="med3d_resnet10",
        architecture_params={
            "in_channels": 1, "num_classes": 4, "base_width": 2, "head_channels": 4
        },
        label_mapping=get_label_mapping("tissues_3"),
        modalities=["T1"],
        inference=InferenceSettings(roi_size=(16, 16, 16)),
        device="cpu",
    )
    torch.manual_seed(0)
    model = task.build_model()
    generator = torch.Generator().manual_seed(0)

    def batch(prefix: str) -> SegmentationSample:
        return SegmentationSample(
            image=torch.randn(2, 1, 16, 16, 16, generator=generator),
            label=torch.randint(0, 4, (2, 16, 16, 16), generator=generator),
            ids=(f"{prefix}_0", f"{prefix}_1"),
        )

    return make_run(task=task, model=model, forget=[batch("f")], retain=[batch("r")], epochs=2)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_med3d_head_stays_bit_identical(name: str, make_run: Callable[..., Any]) -> None:
    strategy, params_model = STRATEGIES[name]
    run = _segmentation_run(make_run)
    head_before = _state(run.model.conv_seg)
    encoder_before = _state(run.model.layer4)
    result = strategy(run, params_model(epochs=2, lr=0.01, retain_task_weight=0.5))
    for key, value in _state(result.model.conv_seg).items():
        assert torch.equal(value, head_before[key]), key
    layer4 = _state(result.model.layer4)
    assert any(not torch.equal(value, encoder_before[key]) for key, value in layer4.items())
