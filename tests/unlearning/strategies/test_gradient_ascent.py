"""Tests for the gradient-ascent strategies GA-ℓ1, GA-ℓ1-FT, NegGrad+ and Max Loss
(med_unlearning.unlearning.strategies.{ga_l1,ga_l1_ft,neggrad_plus,max_loss}).

The sign and weights of each objective are checked on a one-parameter model ``w·x`` with
one plain SGD step: the new weight must equal ``w − lr·∇L`` for the strategy's ``L``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from tiny_task import ScalarNet, TinyTask

from med_unlearning.unlearning.registry import UnlearningRun
from med_unlearning.unlearning.strategies.ga_l1 import GAL1Params, ga_l1
from med_unlearning.unlearning.strategies.ga_l1_ft import GAL1FTParams, ga_l1_ft
from med_unlearning.unlearning.strategies.max_loss import MaxLossParams, max_loss
from med_unlearning.unlearning.strategies.neggrad_plus import NegGradPlusParams, neggrad_plus

LR = 0.1


def _mse_grad(w: float, x: list[float], t: list[float]) -> float:
    """d/dw of mean((w x − t)²)."""
    return sum(2 * (w * xi - ti) * xi for xi, ti in zip(x, t, strict=True)) / len(x)


@pytest.fixture
def scalar_run(make_run: Any, scalar_batch: Any) -> Callable[..., UnlearningRun]:
    def factory(w: float = 1.0) -> UnlearningRun:
        return make_run(
            task=TinyTask("segmentation"),
            model=ScalarNet(w),
            forget=[scalar_batch([1.0, 2.0], [3.0, 4.0], "f")],
            retain=[scalar_batch([1.0], [0.5], "r")],
        )

    return factory


FORGET = ([1.0, 2.0], [3.0, 4.0])
RETAIN = ([1.0], [0.5])


def test_ga_moves_against_the_fine_tuning_direction(scalar_run: Any, exact_sgd: dict) -> None:
    run = scalar_run()
    ga_l1(run, GAL1Params(l1_weight=0.0, **exact_sgd))
    g_forget = _mse_grad(1.0, *FORGET)
    assert g_forget < 0  # descending would increase w towards the forget targets ...
    assert run.model.decoder.weight.item() == pytest.approx(
        1.0 + LR * g_forget
    )  # ... ascent lowers it


def test_ga_l1_adds_the_l1_subgradient(scalar_run: Any, exact_sgd: dict) -> None:
    run = scalar_run()
    result = ga_l1(run, GAL1Params(l1_weight=0.5, **exact_sgd))
    expected = 1.0 - LR * (-_mse_grad(1.0, *FORGET) + 0.5 * 1.0)
    assert run.model.decoder.weight.item() == pytest.approx(expected)
    assert result.history.loc[0, "l1_norm"] == pytest.approx(1.0)
    assert result.history.loc[0, "forget_loss"] == pytest.approx(4.0)


def test_ga_l1_ft_combines_both_terms_with_their_weights(scalar_run: Any, exact_sgd: dict) -> None:
    run = scalar_run()
    result = ga_l1_ft(
        run, GAL1FTParams(forget_weight=0.3, retain_weight=2.0, l1_weight=0.1, **exact_sgd)
    )
    grad = 2.0 * _mse_grad(1.0, *RETAIN) - 0.3 * _mse_grad(1.0, *FORGET) + 0.1
    assert run.model.decoder.weight.item() == pytest.approx(1.0 - LR * grad)
    assert {"forget_loss", "retain_loss", "l1_norm"} <= set(result.history.columns)


@pytest.mark.parametrize("beta", [0.0, 0.25, 1.0])
def test_neggrad_plus_weights_retain_by_beta(scalar_run: Any, exact_sgd: dict, beta: float) -> None:
    run = scalar_run()
    neggrad_plus(run, NegGradPlusParams(beta=beta, **exact_sgd))
    grad = beta * _mse_grad(1.0, *RETAIN) - (1 - beta) * _mse_grad(1.0, *FORGET)
    assert run.model.decoder.weight.item() == pytest.approx(1.0 - LR * grad)


def test_max_loss_subtracts_alpha_forget(scalar_run: Any, exact_sgd: dict) -> None:
    run = scalar_run()
    max_loss(run, MaxLossParams(alpha=0.2, **exact_sgd))
    grad = _mse_grad(1.0, *RETAIN) - 0.2 * _mse_grad(1.0, *FORGET)
    assert run.model.decoder.weight.item() == pytest.approx(1.0 - LR * grad)


def test_ascent_bound_stops_pushing_items_past_it(scalar_run: Any, exact_sgd: dict) -> None:
    run = scalar_run()
    # forget losses at w=1: (1-3)^2 = 4 and (2-4)^2 = 4; a bound of 1 caps both: no gradient
    ga_l1(run, GAL1Params(l1_weight=0.0, ascent_bound=1.0, **exact_sgd))
    assert run.model.decoder.weight.item() == pytest.approx(1.0)


def test_gradient_ascent_stays_finite_under_a_bound(make_run: Any) -> None:
    run = make_run(epochs=20)
    result = ga_l1(
        run, GAL1Params(epochs=20, lr=0.5, ascent_bound=50.0, l1_weight=0.0, grad_clip_norm=1.0)
    )
    assert (result.history["train_loss"] >= -50.0).all()  # the objective cannot pass −bound
    assert result.history["forget_loss"].iloc[-1] > result.history["forget_loss"].iloc[0]


def test_ga_with_fixed_encoder_keeps_it_bit_identical(make_run: Any) -> None:
    run = make_run(epochs=2)
    before = {k: v.clone() for k, v in run.model.state_dict().items()}
    ga_l1(run, GAL1Params(trainable="decoder", epochs=2, l1_weight=1e-3))
    after = run.model.state_dict()
    assert torch.equal(after["encoder.weight"], before["encoder.weight"])
    assert not torch.equal(after["decoder.weight"], before["decoder.weight"])


def test_paired_strategies_need_retain_data(make_run: Any) -> None:
    run = make_run()
    run.retain_loader = None
    for strategy, params in (
        (ga_l1_ft, GAL1FTParams()),
        (neggrad_plus, NegGradPlusParams()),
        (max_loss, MaxLossParams()),
    ):
        with pytest.raises(ValueError, match="needs retain data"):
            strategy(run, params)


@pytest.mark.parametrize(
    ("model", "kwargs"),
    [
        (NegGradPlusParams, {"beta": 1.5}),
        (MaxLossParams, {"alpha": -0.1}),
        (GAL1Params, {"l1_weight": -1.0}),
        (GAL1Params, {"ascent_bound": 0.0}),
    ],
)
def test_out_of_range_parameters_are_rejected(model: type, kwargs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        model(**kwargs)
