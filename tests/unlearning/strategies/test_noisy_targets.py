"""Tests for the target-learning strategies NL, NL-FT, Noisy Label, Retain Label
(med_unlearning.unlearning.strategies.{nl,nl_ft,noisy_label,retain_label}) and their shared
noisy targets (strategies._noisy_targets)."""

from __future__ import annotations

import zlib
from typing import Any

import pytest
import torch
from pydantic import ValidationError
from tiny_task import ScalarNet, TinyTask

from med_unlearning.unlearning.strategies._noisy_targets import (
    SeededGenerators,
    fixed_noisy_forget_target,
    item_batch,
    noisy_forget_target,
)
from med_unlearning.unlearning.strategies.nl import NLParams, nl
from med_unlearning.unlearning.strategies.nl_ft import NLFTParams, nl_ft
from med_unlearning.unlearning.strategies.noisy_label import NoisyLabelParams, noisy_label
from med_unlearning.unlearning.strategies.retain_label import (
    RetainLabelParams,
    retain_label,
    retain_label_target,
)

LR = 0.1


def _grad_towards(w: float, x: torch.Tensor, target: torch.Tensor) -> float:
    """d/dw of mean((w x − target)²) (targets fixed)."""
    weight = torch.tensor(w, requires_grad=True)
    ((weight * x - target) ** 2).flatten(1).mean(1).mean().backward()
    return float(weight.grad)


def test_noisy_target_is_target_plus_relative_noise_from_the_seeded_generator(
    scalar_batch: Any,
) -> None:
    batch = scalar_batch([1.0, 2.0], [3.0, -4.0])
    noisy = noisy_forget_target(TinyTask(), batch, 0.1, True, torch.Generator().manual_seed(7))
    noise = torch.randn((2, 1), generator=torch.Generator().manual_seed(7))
    expected = batch["target"] + 0.1 * torch.tensor([[3.0], [4.0]]) * noise
    assert torch.allclose(noisy, expected)
    absolute = noisy_forget_target(TinyTask(), batch, 0.1, False, torch.Generator().manual_seed(7))
    assert torch.allclose(absolute, batch["target"] + 0.1 * noise)


def test_nl_step_fits_the_noisy_forget_target(
    make_run: Any, scalar_batch: Any, exact_sgd: dict
) -> None:
    forget = scalar_batch([1.0, 2.0], [3.0, 4.0], "f")
    run = make_run(model=ScalarNet(1.0), forget=[forget], seed=5)
    nl(run, NLParams(noise_scale=0.5, resample_noise=True, **exact_sgd))
    noise = torch.randn((2, 1), generator=torch.Generator().manual_seed(5))
    target = forget["target"] + 0.5 * forget["max_value"][:, None] * noise
    expected = 1.0 - LR * _grad_towards(1.0, forget["x"], target)
    assert run.model.decoder.weight.item() == pytest.approx(expected, rel=1e-5)


def test_nl_ft_adds_the_weighted_retain_term(
    make_run: Any, scalar_batch: Any, exact_sgd: dict
) -> None:
    forget = scalar_batch([1.0, 2.0], [3.0, 4.0], "f")
    retain = scalar_batch([1.0], [0.5], "r")
    run = make_run(model=ScalarNet(1.0), forget=[forget], retain=[retain], seed=2)
    result = nl_ft(
        run,
        NLFTParams(
            noise_scale=0.2, forget_weight=0.5, retain_weight=3.0, resample_noise=True,
            **exact_sgd,
        ),
    )
    noise = torch.randn((2, 1), generator=torch.Generator().manual_seed(2))
    target = forget["target"] + 0.2 * forget["max_value"][:, None] * noise
    grad = 0.5 * _grad_towards(1.0, forget["x"], target) + 3.0 * _grad_towards(
        1.0, retain["x"], retain["target"]
    )
    assert run.model.decoder.weight.item() == pytest.approx(1.0 - LR * grad, rel=1e-5)
    assert {"forget_noisy_loss", "retain_loss"} <= set(result.history.columns)


def test_noisy_label_is_retain_plus_alpha_noisy_forget(
    make_run: Any, scalar_batch: Any, exact_sgd: dict
) -> None:
    forget = scalar_batch([1.0, 2.0], [3.0, 4.0], "f")
    retain = scalar_batch([1.0], [0.5], "r")
    run = make_run(
        task=TinyTask("segmentation"),
        model=ScalarNet(1.0),
        forget=[forget],
        retain=[retain],
        seed=4,
    )
    noisy_label(
        run,
        NoisyLabelParams(
            alpha=0.25, noise_scale=1.0, noise_relative=False, resample_noise=True, **exact_sgd
        ),
    )
    noise = torch.randn((2, 1), generator=torch.Generator().manual_seed(4))
    grad = _grad_towards(1.0, retain["x"], retain["target"]) + 0.25 * _grad_towards(
        1.0, forget["x"], forget["target"] + noise
    )
    assert run.model.decoder.weight.item() == pytest.approx(1.0 - LR * grad, rel=1e-5)


def test_retain_label_target_is_the_frozen_output_on_paired_retain_items(scalar_batch: Any) -> None:
    task = TinyTask()
    frozen = ScalarNet(2.0)
    forget = scalar_batch([1.0, 2.0, 3.0], [1.0, 1.0, 2.0], "f")
    retain = scalar_batch([0.5, 1.0], [1.0, 2.0], "r")
    target = retain_label_target(task, frozen, forget, retain)
    retain_output = torch.tensor([[1.0], [2.0], [1.0]])  # 2·x_r, items paired cyclically
    ratio = forget["max_value"] / torch.tensor([1.0, 2.0, 1.0])  # rescaled to the forget range
    assert torch.allclose(target, retain_output * ratio[:, None])
    assert not target.requires_grad


def test_retain_label_target_resizes_other_spatial_sizes() -> None:
    task = TinyTask()
    frozen = torch.nn.Identity()
    frozen.encoder = frozen.decoder = torch.nn.Identity()  # type: ignore[assignment]
    forget = {"x": torch.zeros(1, 4), "target": torch.zeros(1, 4), "max_value": torch.ones(1)}
    retain = {"x": torch.ones(1, 8), "target": torch.zeros(1, 8), "max_value": torch.ones(1)}
    target = retain_label_target(task, frozen, forget, retain)
    assert target.shape == (1, 4)
    assert torch.allclose(target, torch.ones(1, 4))


def test_retain_label_step(make_run: Any, scalar_batch: Any, exact_sgd: dict) -> None:
    forget = scalar_batch([1.0, 2.0], [3.0, 4.0], "f")
    retain = scalar_batch([1.0, 3.0], [0.5, 3.0], "r")
    run = make_run(
        task=TinyTask("segmentation"), model=ScalarNet(1.0), forget=[forget], retain=[retain]
    )
    frozen_before = run.frozen.decoder.weight.clone()
    retain_label(run, RetainLabelParams(alpha=0.5, **exact_sgd))
    target = retain_label_target(run.task, ScalarNet(1.0), forget, retain)
    grad = _grad_towards(1.0, retain["x"], retain["target"]) + 0.5 * _grad_towards(
        1.0, forget["x"], target
    )
    assert run.model.decoder.weight.item() == pytest.approx(1.0 - LR * grad, rel=1e-5)
    assert torch.equal(run.frozen.decoder.weight, frozen_before)


@pytest.mark.parametrize("resample", [False, True])
def test_noise_is_reproducible_for_a_seed(make_run: Any, resample: bool) -> None:
    params = NLParams(epochs=2, resample_noise=resample)
    first = nl(make_run(seed=3, epochs=2), params).model.state_dict()
    second = nl(make_run(seed=3, epochs=2), params).model.state_dict()
    third = nl(make_run(seed=4, epochs=2), params).model.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], third[k]) for k in first)


def test_fixed_noisy_target_depends_on_the_item_id_not_its_position(scalar_batch: Any) -> None:
    task = TinyTask()
    batch = scalar_batch([1.0, 2.0, 3.0], [3.0, 4.0, 5.0], "f")
    noisy = fixed_noisy_forget_target(task, batch, 0.5, True, seed=11)
    again = fixed_noisy_forget_target(task, batch, 0.5, True, seed=11)
    assert torch.equal(noisy, again)
    # the same items in another order and batch size keep their own noisy targets
    reordered = {
        "x": batch["x"][[2, 0]],
        "target": batch["target"][[2, 0]],
        "max_value": batch["max_value"][[2, 0]],
        "ids": [batch["ids"][2], batch["ids"][0]],
    }
    moved = fixed_noisy_forget_target(task, reordered, 0.5, True, seed=11)
    assert torch.equal(moved, noisy[[2, 0]])
    # different ids (and another seed) give different noise; the noise is scaled per item
    noise = (noisy - batch["target"]) / (0.5 * batch["max_value"][:, None])
    assert len({round(float(value), 6) for value in noise.flatten()}) == 3
    other_seed = fixed_noisy_forget_target(task, batch, 0.5, True, seed=12)
    assert not torch.equal(other_seed, noisy)
    expected = torch.randn(
        (1, 1), generator=torch.Generator().manual_seed(zlib.crc32(b"11:noisy_target:f_1"))
    )
    assert torch.allclose(noise[1], expected[0])


def test_fixed_noisy_target_without_ids_is_none(scalar_batch: Any) -> None:
    batch = scalar_batch([1.0], [2.0])
    del batch["ids"]
    assert fixed_noisy_forget_target(TinyTask(), batch, 0.5, True, seed=1) is None


def test_nl_fits_the_same_noisy_target_in_every_epoch(
    make_run: Any, scalar_batch: Any, exact_sgd: dict
) -> None:
    forget = scalar_batch([1.0, 2.0], [3.0, 4.0], "f")
    run = make_run(model=ScalarNet(1.0), forget=[forget], seed=5, epochs=2)
    nl(run, NLParams(noise_scale=0.5, epochs=2, **exact_sgd))
    target = fixed_noisy_forget_target(TinyTask(), forget, 0.5, True, seed=5)
    weight = 1.0
    for _ in range(2):  # both epochs step towards one and the same target
        weight -= LR * _grad_towards(weight, forget["x"], target)
    assert run.model.decoder.weight.item() == pytest.approx(weight, rel=1e-5)


def test_item_batch_slices_tensors_and_lists(scalar_batch: Any) -> None:
    batch = {**scalar_batch([1.0, 2.0], [3.0, 4.0], "f"), "note": "kept"}
    item = item_batch(batch, 1)
    assert item["ids"] == ["f_1"]
    assert torch.equal(item["x"], batch["x"][1:2])
    assert item["note"] == "kept"


def test_fixed_decoder_stays_bit_identical(make_run: Any) -> None:
    run = make_run(epochs=2)
    before = {k: v.clone() for k, v in run.model.state_dict().items()}
    noisy_label(run, NoisyLabelParams(trainable="encoder", epochs=2, lr=0.05))
    after = run.model.state_dict()
    assert torch.equal(after["decoder.weight"], before["decoder.weight"])
    assert not torch.equal(after["encoder.weight"], before["encoder.weight"])


def test_seeded_generators_one_per_device() -> None:
    cpu = torch.Generator().manual_seed(1)
    generators = SeededGenerators(1, cpu)
    assert generators.on(torch.device("cpu")) is cpu
    assert "cpu" in repr(generators)


@pytest.mark.parametrize(
    ("model", "key"),
    [
        (NLParams, "noise_scale"),
        (NLFTParams, "forget_weight"),
        (NoisyLabelParams, "alpha"),
        (RetainLabelParams, "alpha"),
    ],
)
def test_negative_weights_and_scales_are_rejected(model: type, key: str) -> None:
    with pytest.raises(ValidationError, match=key):
        model(**{key: -1.0})
