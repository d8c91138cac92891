"""The shared training loop."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from med_unlearning.training import (
    LoopSettings,
    NonFiniteLossError,
    describe_batch,
    make_loader,
    move_to_device,
    seed_everything,
    train,
)


class _LineDataset(Dataset):
    """y = 3x - 1 with named items."""

    def __init__(self, size: int = 32) -> None:
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(size, 1, generator=generator)
        self.y = 3 * self.x - 1

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> dict:
        return {"x": self.x[index], "y": self.y[index], "ids": f"item_{index}"}


def _mse(model: nn.Module, batch: dict) -> torch.Tensor:
    return nn.functional.mse_loss(model(batch["x"]), batch["y"])


def _fit(seed: int, epochs: int = 5, **settings_kwargs):
    seed_everything(seed)
    model = nn.Linear(1, 1)
    loader = make_loader(_LineDataset(), batch_size=8, shuffle=True, seed=seed, device="cpu")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    settings = LoopSettings(epochs=epochs, device="cpu", progress=False, **settings_kwargs)
    return model, train(model, loader, _mse, optimizer, settings)


def test_loss_decreases_and_history_has_one_row_per_epoch() -> None:
    _, result = _fit(seed=0, epochs=6)
    history = result.history
    assert list(history["epoch"]) == [1, 2, 3, 4, 5, 6]
    assert history["train_loss"].iloc[-1] < 0.1 * history["train_loss"].iloc[0]
    assert (history["items"] == 32).all()
    assert result.wall_time_s > 0
    assert {"lr", "epoch_time_s", "data_time_s", "steps"} <= set(history.columns)


def test_same_seed_same_numbers_on_cpu() -> None:
    model_a, result_a = _fit(seed=3)
    model_b, result_b = _fit(seed=3)
    assert result_a.history["train_loss"].tolist() == result_b.history["train_loss"].tolist()
    assert torch.equal(model_a.weight, model_b.weight)


def test_deterministic_mode_does_not_nan_fill_new_tensors() -> None:
    seed_everything(0, deterministic=True)
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.utils.deterministic.fill_uninitialized_memory is False


def test_different_seed_different_order() -> None:
    _, result_a = _fit(seed=3)
    _, result_b = _fit(seed=4)
    assert result_a.history["train_loss"].tolist() != result_b.history["train_loss"].tolist()


def test_non_finite_loss_names_epoch_and_items() -> None:
    def broken_loss(model: nn.Module, batch: dict) -> torch.Tensor:
        return _mse(model, batch) * float("nan")

    model = nn.Linear(1, 1)
    loader = make_loader(_LineDataset(8), batch_size=4, shuffle=False, seed=0, device="cpu")
    settings = LoopSettings(epochs=2, device="cpu", progress=False, description="toy")
    with pytest.raises(NonFiniteLossError, match=r"toy: loss is nan at epoch 1, step 1.*item_0"):
        train(model, loader, broken_loss, torch.optim.SGD(model.parameters(), lr=0.1), settings)


def test_gradient_clipping_bounds_the_update() -> None:
    model = nn.Linear(1, 1, bias=False)
    nn.init.constant_(model.weight, 0.0)
    batch = [{"x": torch.tensor([[100.0]]), "y": torch.tensor([[-1e4]]), "ids": ["big"]}]
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    settings = LoopSettings(epochs=1, device="cpu", progress=False, grad_clip_norm=0.5)
    train(model, batch, _mse, optimizer, settings)
    assert abs(model.weight.item()) == pytest.approx(0.5, rel=1e-5)


def test_plateau_scheduler_reads_the_named_metric() -> None:
    model = nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.1, patience=0)
    loader = make_loader(_LineDataset(8), batch_size=8, shuffle=False, seed=0, device="cpu")
    settings = LoopSettings(
        epochs=3, device="cpu", progress=False, plateau_metric="val_constant"
    )
    result = train(
        model,
        loader,
        _mse,
        optimizer,
        settings,
        scheduler=scheduler,
        validate=lambda m: {"val_constant": 1.0},
    )
    # epoch 1 sets the best value; each later epoch fails to improve and cuts the lr after it
    assert result.history["lr"].tolist() == pytest.approx([0.1, 0.1, 0.01])
    assert (result.history["val_constant"] == 1.0).all()


def test_progress_is_logged_per_epoch(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="med_unlearning.training"):
        _fit(seed=0, epochs=2, description="demo")
    lines = [record.getMessage() for record in caplog.records]
    assert any("demo epoch 1/2" in line and "ETA" in line and "train_loss" in line for line in lines)
    assert any("demo epoch 2/2" in line for line in lines)


def test_move_to_device_and_describe_nested_batches() -> None:
    batch = ({"x": torch.ones(1), "ids": ["a", "b"]}, [torch.zeros(2)])
    moved = move_to_device(batch, torch.device("cpu"))
    assert isinstance(moved, tuple) and torch.equal(moved[0]["x"], torch.ones(1))
    assert describe_batch(batch) == "a, b"
    assert describe_batch(torch.ones(1)) == "unnamed items"


def test_zero_epochs_is_an_error() -> None:
    model = nn.Linear(1, 1)
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        train(model, [], _mse, torch.optim.SGD(model.parameters(), lr=0.1), LoopSettings(epochs=0))
