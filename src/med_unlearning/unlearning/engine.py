"""The unlearning engine: run one registered strategy on a copy of an original model.

:func:`run_unlearning` is what every unlearning run goes through, whatever the task or the
strategy:

1. look the strategy up (unknown names list the valid ones), validate its parameters with
   its typed model, and check it applies to the task (:func:`prepare_strategy`);
2. check the forget ids were in the original's training manifest;
3. rebuild the original *twice* from its checkpoint — a working copy the strategy changes
   and a frozen copy (eval mode, no gradients) for targets and distillation — so the
   original checkpoint itself is never touched;
4. seed everything, build the :class:`~med_unlearning.unlearning.registry.UnlearningRun`,
   time the strategy (wall clock, CUDA synchronised);
5. return an :class:`~med_unlearning.unlearning.result.UnlearningResult`: a new
   :class:`~med_unlearning.io.checkpoint.ModelCheckpoint`
   whose metadata records the lineage (parent hash, forget ids, the retain ids used as
   ``data_manifest``, strategy, parameters, wall time, epochs, seed), the strategy's
   history, and an *erasure-request record* (a JSON-ready dict a user can file with the
   request: selector and resolved ids, parent/new hashes, strategy and parameters, time,
   and the cost as a fraction of retraining when the oracle's wall time is known).

The plan a run carries out comes from :mod:`~med_unlearning.unlearning.planning`; the
settings, the cost, the result and the records built from it live in
:mod:`~med_unlearning.unlearning.result`. This module is the run itself.

Strategies that combine finished runs (model composition) declare which runs they need when
they register (:attr:`~med_unlearning.unlearning.registry.StrategySpec.combines`, read with
:func:`combined_runs`); the pipeline feeds those runs' checkpoints as ``others``.

**Cost rule** (every run, both sides of the comparison): a run's cost ``wall_time_s`` is
its optimisation wall time — the strategy's own loop, after the models are built, without
validation or evaluation (training likewise excludes per-epoch validation,
:class:`~med_unlearning.training.TrainingResult`). A strategy that combines finished runs
(composition, interpolation) needs them, so its cost adds theirs (the original excluded:
it exists anyway). A retain-sweep variant whose retain subset equals a smaller fraction's
is not run again: :func:`alias_outcome` records it as an alias (cost 0).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import pandas as pd
import torch
from pydantic import BaseModel, ValidationError
from torch import nn

from med_unlearning.device import resolve_device
from med_unlearning.io.checkpoint import (
    CheckpointMetadata,
    ModelCheckpoint,
    state_dict_hash,
)
from med_unlearning.tasks.base import Task
from med_unlearning.training import seed_everything
from med_unlearning.unlearning.planning import UnlearningPlan
from med_unlearning.unlearning.registry import (
    StrategySpec,
    UnlearningRun,
    built_frozen,
    get_strategy,
)
from med_unlearning.unlearning.requests import ParentMismatchError
from med_unlearning.unlearning.result import (
    RunCost,
    UnlearningResult,
    UnlearningSettings,
    final_row,
    jsonable,
)

__all__ = [
    "StrategyParameterError",
    "alias_outcome",
    "combined_runs",
    "model_from_checkpoint",
    "prepare_strategy",
    "run_unlearning",
]

logger = logging.getLogger(__name__)


class StrategyParameterError(ValueError):
    """A strategy's parameters are invalid; the message names the strategy and each key."""


def combined_runs(strategy: str) -> tuple[str, ...]:
    """The runs ``strategy`` combines, as its registration declares them
    (:meth:`~med_unlearning.unlearning.registry.StrategySpec.combined_runs`; empty for most
    strategies)."""
    return get_strategy(strategy).combined_runs()


def prepare_strategy(
    name: str, params: Mapping[str, Any] | BaseModel | None, task_name: str
) -> tuple[StrategySpec, BaseModel]:
    """Look up, validate and check a strategy before anything runs.

    Raises:
        ValueError: unknown strategy (listing the valid ones), or a strategy that does not
            apply to ``task_name`` (saying why).
        StrategyParameterError: invalid parameters, naming ``<strategy>.<key>``.
    """
    spec = get_strategy(name)
    spec.check_applies_to(task_name)
    try:
        typed = spec.validate_params(params)
    except ValidationError as error:
        problems = "\n".join(
            f"  {name}.{'.'.join(str(part) for part in item['loc'])}: {item['msg']}"
            + ("" if isinstance(item.get("input"), Mapping) else f" (got {item.get('input')!r})")
            for item in error.errors()
        )
        raise StrategyParameterError(
            f"Invalid parameters for strategy {name!r} ({spec.params_model.__name__}):\n{problems}"
        ) from None
    return spec, typed


def model_from_checkpoint(task: Task, checkpoint: ModelCheckpoint) -> nn.Module:
    """Rebuild the network stored in ``checkpoint`` with ``task.load_checkpoint``.

    Raises:
        ValueError: the checkpoint belongs to another task or architecture.
    """
    meta = checkpoint.metadata
    if meta.task != task.name:
        raise ValueError(
            f"checkpoint {checkpoint.content_hash[:12]} is a {meta.task!r} model, not {task.name!r}"
        )
    return task.load_checkpoint(checkpoint)


def alias_outcome(
    plan: UnlearningPlan,
    settings: UnlearningSettings,
    original: ModelCheckpoint,
    *,
    task_name: str,
    alias_of: str,
) -> UnlearningResult:
    """The result of a run that was not trained because it equals run ``alias_of``.

    The checkpoint holds no weights (use ``alias_of``'s) and a lineage whose
    ``extra["alias_of"]`` names that run; its cost is 0. The evaluation leaves alias runs
    out of the results and costs and labels the run they merge into (``r1 = r5``).
    ``settings.variant`` is the sweep variant the alias stands for.
    """
    spec = get_strategy(settings.strategy)
    params = settings.params
    typed = params if isinstance(params, BaseModel) else spec.validate_params(params)
    run_name = settings.run_name or spec.name
    logger.info(
        "unlearning.%s.%s: the same run as %s (same retain subset and settings); not run "
        "again (alias, cost 0)",
        task_name, run_name, alias_of,
    )
    history = pd.DataFrame({"run": [run_name], "strategy": [spec.name], "alias_of": [alias_of]})
    return UnlearningResult(
        task_name=task_name,
        spec=spec,
        params=typed,
        plan=plan,
        original=original,
        run_name=run_name,
        variant=str(settings.variant),
        seed=settings.seed,
        retain_used=list(plan.retain_ids),
        retain_fraction=getattr(typed, "retain_fraction", None),
        cost=RunCost(own_wall_time_s=0.0),
        history=history,
        alias_of=alias_of,
    )


def _frozen(model: nn.Module) -> nn.Module:
    """``model`` (a fresh one, shared with nobody) in eval mode without gradients."""
    model.eval().requires_grad_(False)
    return model


def _frozen_original(task: Task, original: ModelCheckpoint, device: torch.device) -> nn.Module:
    """A frozen copy of ``original`` on ``device``, built without moving the global RNG (a
    strategy asks for it mid-run; building initialises weights before loading them)."""
    with torch.random.fork_rng(devices=[]):
        model = model_from_checkpoint(task, original)
    return _frozen(model.to(device))


class _LazyModels(Mapping[str, nn.Module]):
    """Finished runs' models by run name, rebuilt (frozen, on the device) on first access.

    A composition may be offered many runs but use two; only those are rebuilt.
    """

    def __init__(
        self, task: Task, checkpoints: Mapping[str, ModelCheckpoint], device: torch.device
    ) -> None:
        self._task = task
        self._checkpoints = dict(checkpoints)
        self._device = device
        self._models: dict[str, nn.Module] = {}

    def __getitem__(self, name: str) -> nn.Module:
        if name not in self._models:
            checkpoint = self._checkpoints[name]
            model = model_from_checkpoint(self._task, checkpoint)
            self._models[name] = _frozen(model.to(self._device))
        return self._models[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._checkpoints)

    def __len__(self) -> int:
        return len(self._checkpoints)

    def __repr__(self) -> str:
        return f"_LazyModels(runs={sorted(self._checkpoints)}, built={sorted(self._models)})"


def run_unlearning(
    plan: UnlearningPlan,
    settings: UnlearningSettings,
    task: Task,
    original: ModelCheckpoint,
    forget_loader: Iterable[Any],
    retain_loader: Iterable[Any] | None = None,
    *,
    others: Mapping[str, ModelCheckpoint] | None = None,
    reference: ModelCheckpoint | CheckpointMetadata | None = None,
) -> UnlearningResult:
    """Run ``settings.strategy`` on a copy of ``original`` to carry out ``plan``.

    Args:
        plan: what to forget (``forget_ids``, in ``original``'s training manifest), the
            retain items behind ``retain_loader`` and the request
            (:func:`~med_unlearning.unlearning.planning.plan_unlearning`, or
            :meth:`~med_unlearning.unlearning.planning.UnlearningPlan.from_ids`).
        settings: the strategy, its parameters, the seed, the loop and the names.
        task: the task object (its ``name`` must match the checkpoint's task).
        original: the trained model to unlearn from; never modified.
        forget_loader: batches of the forget items.
        retain_loader: batches of the retain subset (``None`` for strategies that declare
            ``needs_retain=False``).
        others: finished runs' checkpoints a composition strategy combines, by run name.
        reference: the oracle (retrained) checkpoint or its metadata, for the cost ratio.

    Returns:
        The typed result: new checkpoint, history, erasure-request record and what they
        are built from.

    Raises:
        ValueError: unknown strategy, a strategy not applicable to the task, missing
            retain data, or a checkpoint of another task/architecture.
        StrategyParameterError: invalid parameters.
        ParentMismatchError: forget ids the original was never trained on.
    """
    spec, typed = prepare_strategy(settings.strategy, settings.params, task.name)
    run_name = settings.run_name or spec.name
    description = f"unlearning.{task.name}.{run_name}"
    _check_run_inputs(description, spec, original, plan.forget_ids, retain_loader)

    setup_start = time.perf_counter()
    generator = seed_everything(settings.seed, deterministic=settings.deterministic)
    device = resolve_device(settings.loop.device)
    parent_hash = original.content_hash
    working = model_from_checkpoint(task, original).to(device).train()
    run = UnlearningRun(
        model=working,
        frozen=lambda: _frozen_original(task, original, device),
        task=task,
        forget_loader=forget_loader,
        retain_loader=retain_loader,
        loop=dataclasses.replace(settings.loop, device=device, description=description),
        seed=settings.seed,
        generator=generator,
        others=_LazyModels(task, others or {}, device),  # type: ignore[arg-type]
    )
    setup_time = time.perf_counter() - setup_start
    logger.info(
        "%s: %s on %d forget / %d retain items from parent %s (%s)",
        description,
        spec.name,
        len(plan.forget_ids),
        len(plan.retain_ids),
        parent_hash[:12],
        spec.description,
    )
    start = time.perf_counter()
    outcome = spec.fn(run, typed)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    own_time = time.perf_counter() - start
    frozen = built_frozen(run)
    if frozen is not None and state_dict_hash(frozen.state_dict()) != parent_hash:
        raise RuntimeError(
            f"{description}: strategy {spec.name!r} modified the frozen copy of the original; "
            "strategies must only read UnlearningRun.frozen"
        )
    reference_meta = reference.metadata if isinstance(reference, ModelCheckpoint) else reference
    history = outcome.history.copy()
    final = final_row(history)
    epochs = int(len(history)) if not history.empty else int(getattr(typed, "epochs", 0) or 0)
    history.insert(0, "strategy", spec.name)
    history.insert(0, "run", run_name)
    result = UnlearningResult(
        task_name=task.name,
        spec=spec,
        params=typed,
        plan=plan,
        original=original,
        run_name=run_name,
        variant=settings.variant,
        seed=settings.seed,
        retain_used=list(plan.retain_ids) if retain_loader is not None else [],
        retain_fraction=getattr(typed, "retain_fraction", None) if retain_loader else None,
        cost=RunCost(
            own_wall_time_s=own_time,
            component_wall_time_s=_component_costs(params=typed, others=others or {}),
            setup_time_s=setup_time,
            reference_wall_time_s=(
                reference_meta.wall_time_s if reference_meta is not None else None
            ),
        ),
        history=history,
        state_dict={
            k: v.detach().to("cpu").clone() for k, v in outcome.model.state_dict().items()
        },
        epochs=epochs,
        final=final,
        strategy_extras=jsonable(outcome.extras),
        combined_runs={name: ckpt.content_hash for name, ckpt in (others or {}).items()},
        reference_hash=reference.content_hash if isinstance(reference, ModelCheckpoint) else None,
        device=str(device),
        catalog_names=dict(settings.catalog_names),
    )
    fraction = result.cost.fraction_of_retraining
    logger.info(
        "%s done in %.2fs%s: %s -> %s",
        description,
        result.cost.wall_time_s,
        f" ({100 * fraction:.1f}% of retraining)" if fraction is not None else "",
        parent_hash[:12],
        result.checkpoint.content_hash[:12],
    )
    return result


def _component_costs(
    params: BaseModel, others: Mapping[str, ModelCheckpoint]
) -> dict[str, float]:
    """The costs of the finished runs a combining strategy used (by run name).

    The runs are those its parameters require (``required_runs()``), else every run it was
    given; the original is never one of them.
    """
    required = getattr(params, "required_runs", None)
    names = list(required()) if callable(required) else list(others)
    costs = {}
    for name in names:
        if name not in others:
            continue
        wall_time = others[name].metadata.wall_time_s
        costs[name] = float(wall_time) if wall_time is not None else 0.0
    return costs


def _check_run_inputs(
    description: str,
    spec: StrategySpec,
    original: ModelCheckpoint,
    forget_ids: Sequence[str],
    retain_loader: Iterable[Any] | None,
) -> None:
    """Forget ids present and trained on; retain data when the strategy needs it."""
    if not forget_ids:
        raise ValueError(f"{description}: no forget ids given")
    not_trained = sorted(set(map(str, forget_ids)) - set(original.metadata.data_manifest))
    if not_trained:
        raise ParentMismatchError(
            f"{description}: forget ids {not_trained} are not in the original checkpoint's "
            "training manifest; it was trained on other data than the request names"
        )
    if spec.needs_retain and retain_loader is None:
        raise ValueError(
            f"{description}: strategy {spec.name!r} needs retain data; pass a retain loader"
        )
