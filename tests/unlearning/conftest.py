"""Fixtures for unlearning tests, built on the tiny fake task of ``tiny_task.py``.

Fixtures: ``tiny_task`` / ``any_task`` (a :class:`TinyTask` named recon, or each task name),
``tiny_model``, ``forget_batches`` / ``retain_batches`` (lists of batches used as loaders),
``loop_settings`` (CPU, one epoch, quiet), ``make_run`` (an
:class:`~med_unlearning.unlearning.registry.UnlearningRun` factory), ``exact_sgd`` (strategy
parameters for one plain SGD step, for sign checks) and ``scalar_batch`` (batches for
:class:`ScalarNet`). Reusable by every strategy test module under ``tests/unlearning/``.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from med_unlearning.tasks.base import Batch
from med_unlearning.training import LoopSettings


def _register_tiny_task() -> Any:
    """Import ``tiny_task.py`` as the top-level module ``tiny_task`` whatever pytest's import
    mode, so test modules here can ``from tiny_task import TinyTask``."""
    if "tiny_task" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "tiny_task", Path(__file__).with_name("tiny_task.py")
        )
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules["tiny_task"] = module
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    return sys.modules["tiny_task"]


_tiny = _register_tiny_task()
TinyNet, TinyTask, make_batches = _tiny.TinyNet, _tiny.TinyTask, _tiny.make_batches


@pytest.fixture
def tiny_task() -> TinyTask:
    """A :class:`TinyTask` named ``recon``."""
    return TinyTask("recon")


@pytest.fixture(params=["recon", "segmentation"])
def any_task(request: pytest.FixtureRequest) -> TinyTask:
    """A :class:`TinyTask` under each task name (strategies must run on both)."""
    return TinyTask(request.param)


@pytest.fixture
def tiny_model() -> nn.Module:
    """A seeded :class:`TinyNet`."""
    torch.manual_seed(0)
    return TinyNet()


@pytest.fixture
def forget_batches() -> list[Batch]:
    """Four forget items in two batches (targets offset by +2 from the retain items')."""
    return make_batches("f", 4, seed=1, offset=2.0)


@pytest.fixture
def retain_batches() -> list[Batch]:
    """Six retain items in three batches."""
    return make_batches("r", 6, seed=2)


@pytest.fixture
def loop_settings() -> LoopSettings:
    """CPU, fp32, one epoch, no progress bar."""
    return LoopSettings(epochs=1, device="cpu", progress=False, description="test")


@pytest.fixture
def make_run(
    tiny_model: nn.Module,
    forget_batches: list[Batch],
    retain_batches: list[Batch],
    loop_settings: LoopSettings,
) -> Callable[..., Any]:
    """Factory of :class:`~med_unlearning.unlearning.registry.UnlearningRun` on the tiny task.

    ``make_run(task=..., model=..., forget=..., retain=..., seed=..., epochs=...)``; the
    frozen copy is a deep copy of the model in eval mode with gradients off.
    """
    import copy
    import dataclasses

    from med_unlearning.unlearning.registry import UnlearningRun

    def factory(
        task: TinyTask | None = None,
        model: nn.Module | None = None,
        forget: Sequence[Batch] | None = None,
        retain: Sequence[Batch] | None = None,
        seed: int = 0,
        epochs: int = 1,
        others: dict[str, nn.Module] | None = None,
    ) -> UnlearningRun:
        working = copy.deepcopy(model if model is not None else tiny_model)
        working.train()
        frozen = copy.deepcopy(working).eval()
        frozen.requires_grad_(False)
        return UnlearningRun(
            model=working,
            frozen=frozen,
            task=task if task is not None else TinyTask("recon"),
            forget_loader=list(forget if forget is not None else forget_batches),
            retain_loader=list(retain if retain is not None else retain_batches),
            loop=dataclasses.replace(loop_settings, epochs=epochs),
            seed=seed,
            generator=torch.Generator().manual_seed(seed),
            others=dict(others or {}),
        )

    return factory


#: Optimiser settings making one step exactly ``θ ← θ − 0.1·∇L`` (for sign/weight checks).
EXACT_SGD = {
    "optimizer": "sgd",
    "lr": 0.1,
    "momentum": 0.0,
    "weight_decay": 0.0,
    "grad_clip_norm": None,
}


@pytest.fixture
def exact_sgd() -> dict[str, Any]:
    """Strategy parameters for one plain SGD step of lr 0.1 (no momentum, no clipping)."""
    return dict(EXACT_SGD)


@pytest.fixture
def scalar_batch() -> Callable[..., Batch]:
    """Batches for :class:`ScalarNet`: ``scalar_batch(x, target, prefix)``."""

    def factory(x: Sequence[float], target: Sequence[float], prefix: str = "item") -> Batch:
        inputs = torch.tensor(x, dtype=torch.float32)[:, None]
        targets = torch.tensor(target, dtype=torch.float32)[:, None]
        return {
            "x": inputs,
            "target": targets,
            "max_value": targets.abs().amax(dim=1),
            "ids": [f"{prefix}_{index}" for index in range(len(x))],
        }

    return factory
