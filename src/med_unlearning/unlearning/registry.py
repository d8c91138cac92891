"""The strategy registry and the contract between the engine and a strategy."""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from pydantic import BaseModel
from torch import nn

from med_unlearning.tasks.base import Task
from med_unlearning.training import LoopSettings

__all__ = [
    "StrategyResult",
    "StrategySpec",
    "UnlearningRun",
    "available_strategies",
    "get_strategy",
    "register_strategy",
]

TASK_NAMES = frozenset({"recon", "segmentation"})


@dataclass
class UnlearningRun:
    """Everything a strategy may use. Built by the engine; a strategy only reads it.

    Attributes:
        model: a working copy of the original model, on the device, in train mode: the
            strategy modifies and returns it (or another model).
        frozen: another copy of the original, on the device, eval mode, ``requires_grad``
            off: for targets, features and distillation. Never modified.
        task: the task object (loss, criterion, targets, encoder/decoder parts).
        forget_loader: batches of the forget set (task batch format).
        retain_loader: batches of the retain subset, or ``None`` when the strategy declared
            ``needs_retain=False`` and no retain data was given.
        loop: the loop settings (device, precision, progress, description); strategies set
            ``epochs`` with ``dataclasses.replace(run.loop, epochs=...)``.
        seed: the run's seed; use :attr:`generator` for any randomness.
        generator: a torch generator seeded with :attr:`seed` (CPU).
        others: finished runs a composition strategy combines, by name (empty otherwise).
    """

    model: nn.Module
    frozen: nn.Module
    task: Task
    forget_loader: Iterable[Any]
    retain_loader: Iterable[Any] | None
    loop: LoopSettings
    seed: int
    generator: torch.Generator
    others: dict[str, nn.Module] = field(default_factory=dict)


@dataclass
class StrategyResult:
    """What a strategy returns.

    Attributes:
        model: the unlearned model.
        history: per-epoch (or per-pass) record, e.g. from :func:`med_unlearning.training.train`.
        extras: anything worth recording in the checkpoint's metadata (JSON-serialisable).
    """

    model: nn.Module
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    extras: dict[str, Any] = field(default_factory=dict)


StrategyFn = Callable[[UnlearningRun, Any], StrategyResult]


@dataclass(frozen=True)
class StrategySpec:
    """A registered strategy.

    Attributes:
        name: registry name (``nl_ft``, ``noisy_label``…), also the pipeline namespace.
        fn: ``fn(run, params) -> StrategyResult``.
        params_model: the pydantic model of its parameters block.
        tasks: the tasks it applies to.
        needs_retain: whether it uses retain data.
        family: the study it comes from (``recon_study``, ``segmentation_study``,
            ``bilevel_study``, ``baseline``).
        description: one line for reports and error messages.
    """

    name: str
    fn: StrategyFn
    params_model: type[BaseModel]
    tasks: frozenset[str]
    needs_retain: bool
    family: str
    description: str

    def validate_params(self, raw: dict[str, Any] | BaseModel | None) -> BaseModel:
        """Typed parameters from a raw mapping (pydantic raises naming the bad key)."""
        if isinstance(raw, self.params_model):
            return raw
        if isinstance(raw, BaseModel):
            raw = raw.model_dump()
        return self.params_model.model_validate(dict(raw or {}))

    def check_applies_to(self, task_name: str) -> None:
        """Raise a clear error when this strategy cannot run on ``task_name``."""
        if task_name not in self.tasks:
            raise ValueError(
                f"Strategy {self.name!r} does not apply to task {task_name!r}: it is defined "
                f"for {sorted(self.tasks)} only ({self.description})"
            )


_REGISTRY: dict[str, StrategySpec] = {}


def register_strategy(
    name: str,
    params_model: type[BaseModel],
    *,
    tasks: Iterable[str] = TASK_NAMES,
    needs_retain: bool = True,
    family: str,
    description: str,
) -> Callable[[StrategyFn], StrategyFn]:
    """Decorator registering ``fn(run, params) -> StrategyResult`` under ``name``."""
    task_set = frozenset(tasks)
    unknown = task_set - TASK_NAMES
    if unknown:
        raise ValueError(f"Strategy {name!r}: unknown tasks {sorted(unknown)}")

    def decorator(fn: StrategyFn) -> StrategyFn:
        if name in _REGISTRY and _REGISTRY[name].fn is not fn:
            raise ValueError(f"Strategy {name!r} is registered twice")
        _REGISTRY[name] = StrategySpec(
            name=name,
            fn=fn,
            params_model=params_model,
            tasks=task_set,
            needs_retain=needs_retain,
            family=family,
            description=description,
        )
        return fn

    return decorator


@functools.cache
def _import_strategy_modules() -> None:
    """Import every module of :mod:`med_unlearning.unlearning` so strategies register
    (once per process: parameter validation asks for strategies thousands of times)."""
    package = importlib.import_module("med_unlearning.unlearning")
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"med_unlearning.unlearning.{module.name}")


def available_strategies(task: str | None = None) -> list[str]:
    """Registered strategy names (for ``task`` only when given)."""
    _import_strategy_modules()
    return sorted(name for name, spec in _REGISTRY.items() if task is None or task in spec.tasks)


def get_strategy(name: str) -> StrategySpec:
    """The strategy registered as ``name``.

    Raises:
        ValueError: for an unknown name, listing the valid ones.
    """
    _import_strategy_modules()
    if name not in _REGISTRY:
        raise ValueError(f"Unknown unlearning strategy {name!r}; valid: {sorted(_REGISTRY)}")
    return _REGISTRY[name]
