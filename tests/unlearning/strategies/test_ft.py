"""Tests for the fine-tuning baselines FT and Full FT
(med_unlearning.unlearning.strategies.ft and .full_ft)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from pydantic import ValidationError
from tiny_task import ScalarNet, TinyTask

from med_unlearning.unlearning.strategies.ft import FineTuneParams, fine_tune
from med_unlearning.unlearning.strategies.full_ft import FullFineTuneParams, full_fine_tune


def test_ft_step_is_gradient_descent_on_the_retain_loss(
    make_run: Any, scalar_batch: Any, exact_sgd: dict
) -> None:
    forget = scalar_batch([1.0], [5.0], "f")
    retain = scalar_batch([1.0, 2.0], [0.5, 1.0], "r")
    run = make_run(model=ScalarNet(1.0), forget=[forget], retain=[retain])
    fine_tune(run, FineTuneParams(**exact_sgd))
    # L = mean((w x - t)^2) over retain; dL/dw at w=1: mean(2 (x - t) x) = (1 + 4) / 2 = 2.5
    assert run.model.decoder.weight.item() == pytest.approx(1.0 - 0.1 * 2.5)


def test_ft_with_fixed_decoder_keeps_the_decoder_bit_identical(make_run: Any) -> None:
    run = make_run(epochs=2)
    before = {k: v.clone() for k, v in run.model.state_dict().items()}
    result = fine_tune(run, FineTuneParams(trainable="encoder", epochs=2, lr=0.05))
    after = result.model.state_dict()
    assert torch.equal(after["decoder.weight"], before["decoder.weight"])
    assert torch.equal(after["decoder.bias"], before["decoder.bias"])
    assert not torch.equal(after["encoder.weight"], before["encoder.weight"])
    assert len(result.history) == 2


def test_ft_lowers_the_retain_loss_and_leaves_the_frozen_copy_alone(
    make_run: Any, any_task: TinyTask
) -> None:
    run = make_run(task=any_task, epochs=5)
    frozen = {k: v.clone() for k, v in run.frozen.state_dict().items()}

    def retain_loss(model: torch.nn.Module) -> float:
        with torch.no_grad():
            return float(sum(any_task.loss(model, batch) for batch in run.retain_loader))

    start = retain_loss(run.model)
    fine_tune(run, FineTuneParams(epochs=5, lr=0.05))
    assert retain_loss(run.model) < start
    assert all(torch.equal(frozen[k], v) for k, v in run.frozen.state_dict().items())


def test_full_ft_requires_all_retain_data(make_run: Any) -> None:
    assert FullFineTuneParams().retain_fraction == 1.0
    with pytest.raises(ValidationError, match="use the 'ft' strategy"):
        FullFineTuneParams(retain_fraction=0.5)
    result = full_fine_tune(make_run(), FullFineTuneParams())
    assert result.history["train_loss"].notna().all()


def test_ft_without_retain_data_is_an_error(make_run: Any) -> None:
    run = make_run()
    run.retain_loader = None
    with pytest.raises(ValueError, match="needs retain data"):
        fine_tune(run, FineTuneParams())
