"""The strategy registry and the contract between the engine and a strategy.

A strategy registers itself with :func:`register_strategy` when its module is imported. The
built-in strategies live in :mod:`med_unlearning.unlearning.strategies` (one file per method,
indexed in that package's docstring); the registry imports that package lazily, the first
time a name is looked up (:func:`load_strategies`), so the infrastructure (engine, grid,
requests, pairing, this module) never imports a strategy itself and a strategy registered
from any other module joins the same registry.

Which finished runs a strategy combines (model composition) is part of its registration
(:attr:`StrategySpec.combines`); :func:`combinable_runs` derives the runs a composition may
combine from the registry, so a new strategy can be composed without touching a list.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from pydantic import BaseModel
from torch import nn

from med_unlearning.task_names import TASKS
from med_unlearning.tasks.base import Task
from med_unlearning.training import LoopSettings

__all__ = [
    "STRATEGIES_PACKAGE",
    "CombinedRuns",
    "StrategyResult",
    "StrategySpec",
    "UnlearningRun",
    "available_strategies",
    "combinable_runs",
    "get_strategy",
    "load_strategies",
    "register_strategy",
]

#: The tasks a strategy can apply to (:data:`med_unlearning.task_names.TASKS`).
TASK_NAMES = frozenset(TASKS)

#: The package whose import registers the built-in strategies (:func:`load_strategies`).
STRATEGIES_PACKAGE = "med_unlearning.unlearning.strategies"


class _ModelBuiltOnFirstUse:
    """A model field that also takes a zero-argument builder, called on first access.

    Why: the frozen copy of the original costs a full model copy (0.1–0.2 s for the VarNet,
    paid by every run) and most strategies never read it. The builder must not touch the
    global RNG state a strategy's draws depend on (the engine builds inside ``fork_rng``).
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self._slot = f"_{name}"

    def __get__(self, run: Any, owner: type | None = None) -> nn.Module:
        if run is None:  # dataclasses ask for a default: there is none
            raise AttributeError(self._slot)
        value = run.__dict__[self._slot]
        if not isinstance(value, nn.Module):
            value = run.__dict__[self._slot] = value()
        return value

    def __set__(self, run: Any, value: nn.Module | Callable[[], nn.Module]) -> None:
        run.__dict__[self._slot] = value

    def built(self, run: Any) -> nn.Module | None:
        """The model if it exists (given, or built by an access), else ``None``; builds
        nothing."""
        value = run.__dict__.get(self._slot)
        return value if isinstance(value, nn.Module) else None


def built_frozen(run: UnlearningRun) -> nn.Module | None:
    """The run's frozen model if a strategy asked for it, else ``None`` (nothing is built)."""
    return vars(UnlearningRun)["frozen"].built(run)


@dataclass
class UnlearningRun:
    """Everything a strategy may use. Built by the engine; a strategy only reads it.

    Attributes:
        model: a working copy of the original model, on the device, in train mode: the
            strategy modifies and returns it (or another model).
        frozen: another copy of the original, on the device, eval mode, ``requires_grad``
            off: for targets, features and distillation. Never modified. Built on first
            access when given as a zero-argument builder (the engine does).
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
    frozen: _ModelBuiltOnFirstUse = _ModelBuiltOnFirstUse()
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

#: The finished runs a strategy combines: run names, or a function returning them when the
#: registry is complete (e.g. :func:`combinable_runs`, which needs every strategy registered).
CombinedRuns = tuple[str, ...] | Callable[[], tuple[str, ...]]


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
        combines: the finished runs (strategy main runs of the same task) whose models the
            strategy combines — the engine hands them over as :attr:`UnlearningRun.others`
            and the grid runs the strategy after them; empty for a strategy that combines
            nothing (every strategy but model composition). Read it with
            :meth:`combined_runs`.
        all_retain_of: the strategy this one is when run on all retain data (``full_ft`` is
            ``ft`` at ``retain_fraction`` 1): a retain-sweep run of that strategy whose
            settings equal this one's is the same run and is not trained twice.
    """

    name: str
    fn: StrategyFn
    params_model: type[BaseModel]
    tasks: frozenset[str]
    needs_retain: bool
    family: str
    description: str
    combines: CombinedRuns = ()
    all_retain_of: str | None = None

    def combined_runs(self) -> tuple[str, ...]:
        """The runs this strategy combines (:attr:`combines`, called when it is a function).

        Raises:
            ValueError: when the strategy would combine its own run.
        """
        runs = tuple(self.combines() if callable(self.combines) else self.combines)
        _check_not_own_run(self.name, runs)
        return runs

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


#: Registered strategies by name, in registration order (the order of :func:`combinable_runs`).
_REGISTRY: dict[str, StrategySpec] = {}


def _check_not_own_run(name: str, runs: tuple[str, ...]) -> None:
    if name in runs:
        raise ValueError(f"strategy {name!r} cannot combine its own run")


def register_strategy(
    name: str,
    params_model: type[BaseModel],
    *,
    tasks: Iterable[str] = TASK_NAMES,
    needs_retain: bool = True,
    family: str,
    description: str,
    combines: CombinedRuns = (),
    all_retain_of: str | None = None,
) -> Callable[[StrategyFn], StrategyFn]:
    """Decorator registering ``fn(run, params) -> StrategyResult`` under ``name``.

    ``combines`` names the finished runs the strategy combines (model composition; see
    :attr:`StrategySpec.combines`); leave it empty for a strategy that starts from the
    original alone, which also makes its run one a composition may combine
    (:func:`combinable_runs`). ``all_retain_of`` names the strategy this one equals on all
    retain data (:attr:`StrategySpec.all_retain_of`).
    """
    task_set = frozenset(tasks)
    unknown = task_set - TASK_NAMES
    if unknown:
        raise ValueError(f"Strategy {name!r}: unknown tasks {sorted(unknown)}")
    if not callable(combines):
        combines = tuple(combines)
        _check_not_own_run(name, combines)

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
            combines=combines,
            all_retain_of=all_retain_of,
        )
        return fn

    return decorator


@functools.cache
def load_strategies() -> None:
    """Import :data:`STRATEGIES_PACKAGE` so the built-in strategies register (once per
    process: parameter validation asks for strategies thousands of times). Called by every
    look-up below; nothing else in the infrastructure imports a strategy."""
    importlib.import_module(STRATEGIES_PACKAGE)


def available_strategies(task: str | None = None) -> list[str]:
    """Registered strategy names (for ``task`` only when given)."""
    load_strategies()
    return sorted(name for name, spec in _REGISTRY.items() if task is None or task in spec.tasks)


def get_strategy(name: str) -> StrategySpec:
    """The strategy registered as ``name``.

    Raises:
        ValueError: for an unknown name, listing the valid ones.
    """
    load_strategies()
    if name not in _REGISTRY:
        raise ValueError(f"Unknown unlearning strategy {name!r}; valid: {sorted(_REGISTRY)}")
    return _REGISTRY[name]


def combinable_runs(tasks: Iterable[str] = TASK_NAMES) -> tuple[str, ...]:
    """The runs a model composition may combine: the main run of every registered strategy
    that combines no runs itself and applies to every task of ``tasks`` (so the runs exist
    wherever the composition runs), in registration order.

    The built-ins register in the order of the index of
    :mod:`med_unlearning.unlearning.strategies`; this order is the order of the composition
    nodes' inputs.
    """
    load_strategies()
    wanted = frozenset(tasks)
    return tuple(
        name for name, spec in _REGISTRY.items() if not spec.combines and wanted <= spec.tasks
    )
