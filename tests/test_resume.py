"""Long runs resume: a run that stops continues from its last epoch checkpoint and ends with
the same weights as an uninterrupted run (CPU)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from tests.tasks.test_recon import MASK, TINY_VARNET, tiny_volume
from tests.tasks.test_segmentation import make_task, subjects  # noqa: F401 (fixture)
from torch import nn
from torch.utils.data import TensorDataset

from med_unlearning.data.splits import FORGET_TRAIN, RETAIN_TRAIN, RETAIN_VAL
from med_unlearning.io.checkpoint import temporary_path
from med_unlearning.params.recon import ReconParams
from med_unlearning.params.runtime import RuntimeParams
from med_unlearning.pipelines.recon.nodes import train_recon_run
from med_unlearning.tasks.segmentation import SegmentationTrainingSettings, train_segmentation
from med_unlearning.training import (
    LoopSettings,
    ResumeSettings,
    ResumeStateError,
    make_loader,
    seed_everything,
    train,
)


class Crash(Exception):
    """Stands for the process dying (pre-emption, out of time) in the middle of a run."""


def _generic_run(
    epochs: int, resume: ResumeSettings | None, crash_in_epoch: int | None = None
) -> tuple[nn.Module, pd.DataFrame | None]:
    """A loop that uses every source of randomness: init, dropout, shuffling, torch, numpy
    and python RNGs inside the loss, and a plateau scheduler that changes the lr."""
    seed_everything(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.Dropout(0.3), nn.ReLU(), nn.Linear(16, 1))
    generator = torch.Generator().manual_seed(1)
    data = TensorDataset(
        torch.randn(24, 4, generator=generator), torch.randn(24, 1, generator=generator)
    )
    loader = make_loader(data, 4, shuffle=True, seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, patience=0, factor=0.5, threshold=0.9  # "no improvement": lr halves
    )
    epoch = {"n": 0}

    def loss_fn(module: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        inputs, targets = batch
        jitter = 0.01 * (torch.randn(()) + np.random.randn() + random.random())
        return ((module(inputs) - targets) ** 2).mean() + jitter

    def validate(_: nn.Module) -> dict[str, float]:
        epoch["n"] += 1
        if epoch["n"] == crash_in_epoch:
            raise Crash
        return {}

    settings = LoopSettings(epochs=epochs, progress=False, resume=resume)
    try:
        result = train(model, loader, loss_fn, optimizer, settings, scheduler=scheduler,
                       validate=validate)
    except Crash:
        return model, None
    return model, result.history


def _same_weights(first: nn.Module, second: nn.Module) -> bool:
    a, b = first.state_dict(), second.state_dict()
    return a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


def test_loop_resumed_after_a_crash_ends_with_the_uninterrupted_weights(tmp_path: Path) -> None:
    reference, history = _generic_run(3, None)
    state = ResumeSettings(path=tmp_path / "run" / "state.pt", every=1, key="k")
    crashed, _ = _generic_run(3, state, crash_in_epoch=2)  # dies during epoch 2
    assert not _same_weights(crashed, reference)
    assert torch.load(state.path, weights_only=True)["epoch"] == 1
    resumed, resumed_history = _generic_run(3, state)
    assert _same_weights(resumed, reference)
    columns = ["epoch", "train_loss", "lr", "steps", "items"]
    assert resumed_history[columns].equals(history[columns])
    assert history["lr"].nunique() > 1  # the scheduler's state mattered
    assert [p.name for p in state.path.parent.iterdir()] == ["state.pt"]  # no temp files left


def test_resume_without_restoring_the_rngs_would_differ(tmp_path: Path, monkeypatch) -> None:
    """The test above is not vacuous: dropping the RNG restore breaks the equality."""
    from med_unlearning.training import resume

    reference, _ = _generic_run(3, None)
    state = ResumeSettings(path=tmp_path / "state.pt", every=1, key="k")
    _generic_run(3, state, crash_in_epoch=2)
    monkeypatch.setattr(resume, "_set_rng_state", lambda _state: None)
    resumed, _ = _generic_run(3, state)
    assert not _same_weights(resumed, reference)


def test_state_file_is_weights_only_and_keyed(tmp_path: Path) -> None:
    state = ResumeSettings(path=tmp_path / "state.pt", every=2, key="run-a")
    _generic_run(3, state)
    payload = torch.load(state.path, weights_only=True)
    assert payload["epoch"] == 3  # every 2 epochs and after the last
    assert {"model", "optimizer", "scheduler", "rng", "loader_generator", "history"} <= set(payload)
    assert len(payload["history"]) == 3
    other = ResumeSettings(path=state.path, key="run-b")
    with pytest.raises(ResumeStateError, match=r"state\.pt.*another run"):
        _generic_run(3, other)
    with pytest.raises(ResumeStateError, match="past the 2 epochs"):
        _generic_run(2, state)
    state.path.write_bytes(b"not a torch file")
    with pytest.raises(ResumeStateError, match="cannot be read"):
        _generic_run(3, state)
    # resume: false starts afresh and overwrites the state
    _generic_run(1, ResumeSettings(path=state.path, every=1, resume=False, key="run-c"))
    assert torch.load(state.path, weights_only=True)["key"] == "run-c"


def _recon_inputs() -> tuple[dict, pd.DataFrame]:
    volumes = {f"v{index}": tiny_volume(index) for index in range(4)}
    splits = pd.DataFrame(
        {
            "volume_id": ["v0", "v1", "v2", "v3"],
            "anatomy": ["brain", "brain", "knee", "brain"],
            "role": [RETAIN_TRAIN, RETAIN_TRAIN, FORGET_TRAIN, RETAIN_VAL],
        }
    )
    return volumes, splits


def _recon_params(epochs: int, lr: float = 3e-3) -> ReconParams:
    return ReconParams.model_validate(
        {
            "mask": MASK,
            "model": {"varnet": TINY_VARNET},
            "training": {
                "epochs": epochs, "batch_size": 2, "lr": lr, "cache_volumes": True,
                "scheduler": {"patience": 0},
            },
        }
    )


def test_recon_training_node_resumes_to_the_uninterrupted_weights(tmp_path: Path) -> None:
    volumes, splits = _recon_inputs()
    plain = RuntimeParams(device="cpu", progress=False)
    reference, history = train_recon_run("original", volumes, splits, _recon_params(3), plain)
    resumable = RuntimeParams(
        device="cpu", progress=False, checkpoint_every=1, resume=True,
        resume_dir=str(tmp_path / "resume"),
    )
    # one epoch, then the run "stops"; the state is under resume_dir/<task>/<run>.pt
    first, _ = train_recon_run("original", volumes, splits, _recon_params(1), resumable)
    state_file = tmp_path / "resume" / "recon" / "original.pt"
    assert torch.load(state_file, weights_only=True)["epoch"] == 1
    resumed, resumed_history = train_recon_run(
        "original", volumes, splits, _recon_params(3), resumable
    )
    for name, tensor in reference.state_dict.items():
        assert torch.equal(tensor, resumed.state_dict[name]), name
    assert not all(torch.equal(t, first.state_dict[n]) for n, t in reference.state_dict.items())
    columns = ["epoch", "train_loss", "lr", "val_loss", "val_psnr", "val_ssim"]
    assert resumed_history[columns].equals(history[columns])
    assert resumed.metadata.epochs == 3
    # another recipe (here the lr) must not continue this state
    with pytest.raises(ResumeStateError, match="another run"):
        train_recon_run("original", volumes, splits, _recon_params(3, lr=1e-3), resumable)


def test_segmentation_training_resumes_and_keeps_the_validation_epochs(
    subjects: dict, tmp_path: Path  # noqa: F811
) -> None:
    task = make_task()
    state = ResumeSettings(path=tmp_path / "seg.pt", every=1, key="seg")

    def run(epochs: int, resume: ResumeSettings | None) -> tuple[nn.Module, pd.DataFrame]:
        seed_everything(0)
        model = task.build_model()
        result = train_segmentation(
            task,
            model,
            [subjects["1"], subjects["4"]],
            SegmentationTrainingSettings(
                epochs=epochs,
                batch_size=2,
                patch_size=(16, 16, 8),
                samples_per_subject=2,
                pos_fraction=0.8,
                learning_rate=0.02,
                head_lr_multiplier=5,
                momentum=0.9,
                weight_decay=1e-3,
                lr_decay_gamma=0.9,
                progress=False,
                validation_interval=2,
                resume=resume,
            ),
            validation_subjects={"retain_train": [subjects["1"]]},
        )
        return model, result.history

    reference, history = run(3, None)
    run(1, state)
    resumed, resumed_history = run(3, state)
    assert _same_weights(resumed, reference)
    assert resumed_history["dice_retain_train"].notna().tolist() == [False, True, False]
    pd.testing.assert_series_equal(resumed_history["train_loss"], history["train_loss"])


def test_a_killed_state_write_is_cleaned_up_by_the_next_one(tmp_path: Path, caplog) -> None:
    """``kill -9`` during a state write leaves its temporary file; the next write removes it
    (only a temporary file of this state written by a dead process of this host)."""
    state = ResumeSettings(path=tmp_path / "state.pt", every=1, key="k")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    own = temporary_path(state.path)
    killed = own.with_name(own.name.replace(f"-{os.getpid()}-", f"-{child.pid}-"))
    killed.write_bytes(b"half a state")
    live = temporary_path(state.path)  # a running writer's: kept
    live.write_bytes(b"being written")
    with caplog.at_level("WARNING"):
        _generic_run(1, state)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, "state.pt"])
    assert killed.name in caplog.text
