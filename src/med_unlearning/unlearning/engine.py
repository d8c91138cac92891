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
5. return an :class:`UnlearningResult`: a new
   :class:`~med_unlearning.io.checkpoint.ModelCheckpoint`
   whose metadata records the lineage (parent hash, forget ids, the retain ids used as
   ``data_manifest``, strategy, parameters, wall time, epochs, seed), the strategy's
   history, and an *erasure-request record* (a JSON-ready dict a user can file with the
   request: selector and resolved ids, parent/new hashes, strategy and parameters, time,
   and the cost as a fraction of retraining when the oracle's wall time is known).

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

import copy
import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
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
from med_unlearning.training import LoopSettings, seed_everything
from med_unlearning.unlearning.registry import StrategySpec, UnlearningRun, get_strategy
from med_unlearning.unlearning.requests import (
    ForgetRequest,
    ForgetRequestError,
    ParentMismatchError,
    ResolvedRequest,
    check_parent_manifest,
    resolve_request,
    sample_retain_subset,
    with_roles,
)

__all__ = [
    "RECORD_SCHEMA",
    "RunCost",
    "StrategyParameterError",
    "UnlearningOutcome",
    "UnlearningPlan",
    "UnlearningResult",
    "UnlearningSettings",
    "alias_outcome",
    "alias_target",
    "combined_runs",
    "model_from_checkpoint",
    "plan_unlearning",
    "prepare_strategy",
    "run_unlearning",
]

logger = logging.getLogger(__name__)

#: Identifies the erasure-request record format (bump when its keys change).
RECORD_SCHEMA = "med_unlearning.erasure_request/1"

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


@dataclass(frozen=True)
class UnlearningPlan:
    """Which items one run forgets and which retain items it uses.

    Attributes:
        resolved: the resolved request (forget ids, retain pool).
        retain_ids: the retain subset the run uses (empty when the strategy needs none).
        retain_fraction: the fraction that subset was drawn with (``None`` without retain).
    """

    resolved: ResolvedRequest
    retain_ids: list[str]
    retain_fraction: float | None

    @classmethod
    def from_ids(
        cls, forget_ids: Sequence[str], retain_ids: Sequence[str] = ()
    ) -> UnlearningPlan:
        """A plan that forgets ``forget_ids`` and retains on all of ``retain_ids`` (a request
        by ids, already resolved: for library callers that know their items; the pipeline
        resolves requests with :func:`plan_unlearning`)."""
        request = ForgetRequest(ids=tuple(map(str, forget_ids)))
        retain = [str(item) for item in retain_ids]
        resolved = ResolvedRequest(request, [str(item) for item in forget_ids], retain)
        return cls(resolved, retain, 1.0 if retain else None)

    @property
    def forget_ids(self) -> list[str]:
        """The items to forget."""
        return self.resolved.forget_ids

    def request_record(self) -> dict[str, Any]:
        """The request part of the erasure record (selector, resolved ids, retain subset)."""
        return {
            **self.resolved.to_record(),
            "retain_fraction": self.retain_fraction,
            "n_retain_used": len(self.retain_ids),
        }

    def __repr__(self) -> str:
        return (
            f"UnlearningPlan({self.resolved.request.describe()}: forget {len(self.forget_ids)}, "
            f"retain {len(self.retain_ids)} of {len(self.resolved.retain_ids)})"
        )


def plan_unlearning(
    request: ForgetRequest,
    metadata: pd.DataFrame,
    splits: pd.DataFrame | None,
    manifest: Sequence[str],
    *,
    id_column: str,
    needs_retain: bool,
    retain_fraction: float | None,
    seed: int,
    group_column: str | None = None,
    expected_manifest: Sequence[str] | None = None,
    parent: str = "the original checkpoint",
) -> UnlearningPlan:
    """Resolve a request against the parent and draw the run's retain subset.

    Args:
        request: what to forget.
        metadata: one row per item (the splits table's ``role`` is joined, so a request
            can select ``role == forget_train``).
        splits: the task's splits table (or ``None``).
        manifest: the parent checkpoint's ``data_manifest``.
        id_column: ``volume_id`` / ``subject_id``.
        needs_retain: whether the strategy uses retain data.
        retain_fraction: fraction of the retain pool to use (``None`` = all).
        seed: seed of the retain subset.
        group_column: metadata column whose groups are sampled together (e.g. patient).
        expected_manifest: the items the parent should have trained on (checked when given).
        parent: the parent's name in messages.

    Raises:
        ForgetRequestError / ParentMismatchError: see
            :func:`~med_unlearning.unlearning.requests.resolve_request`.
    """
    table = with_roles(metadata, splits, id_column)
    check_parent_manifest(manifest, table[id_column], expected_manifest, parent=parent)
    resolved = resolve_request(request, table, manifest, id_column=id_column, parent=parent)
    if not needs_retain:
        return UnlearningPlan(resolved, [], None)
    fraction = 1.0 if retain_fraction is None else float(retain_fraction)
    groups = None
    if group_column is not None:
        if group_column not in table.columns:
            raise ForgetRequestError(
                f"group_column {group_column!r} is not a metadata column; "
                f"columns: {list(table.columns)}"
            )
        groups = dict(zip(table[id_column], table[group_column].astype(str), strict=True))
    retain = sample_retain_subset(resolved.retain_ids, fraction, seed, groups)
    return UnlearningPlan(resolved, retain, fraction)


def alias_target(
    variant: str,
    fractions: Mapping[str, float],
    retain_ids_for: Callable[[float], Sequence[str]],
) -> str | None:
    """The smallest retain-sweep variant whose retain subset equals ``variant``'s, if any.

    Two fractions of a small retain pool can resolve to the same items (e.g. 1 % and 5 % of
    20 volumes are both one volume); the larger one would then repeat the smaller one's run
    exactly. Deterministic: it depends only on the fractions and ``retain_ids_for`` (the
    seeded subset drawn for a fraction).

    Args:
        variant: the variant being run (``r5``).
        fractions: every variant's fraction, in the sweep's order.
        retain_ids_for: the retain ids a fraction resolves to.

    Returns:
        The variant to alias (``r1``), or ``None`` when ``variant``'s subset is new.
    """
    order = list(fractions)
    own = float(fractions[variant])
    own_ids = sorted(map(str, retain_ids_for(own)))
    smaller = sorted(
        (name for name in order if name != variant and (
            float(fractions[name]) < own
            or (float(fractions[name]) == own and order.index(name) < order.index(variant))
        )),
        key=lambda name: (float(fractions[name]), order.index(name)),
    )
    for name in smaller:
        if sorted(map(str, retain_ids_for(float(fractions[name])))) == own_ids:
            return name
    return None


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
        "unlearning.%s.%s: same retain subset as run %s; not run again (alias, cost 0)",
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


def _frozen_copy(model: nn.Module) -> nn.Module:
    frozen = copy.deepcopy(model).eval()
    frozen.requires_grad_(False)
    return frozen


def _jsonable(value: Any) -> Any:
    """``value`` with numpy/torch scalars, tuples and sets made JSON-friendly (NaN → None)."""
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(item) for item in value]
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _last_row(history: pd.DataFrame) -> dict[str, Any]:
    if history.empty:
        return {}
    return _jsonable(history.iloc[-1].to_dict())


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
            self._models[name] = _frozen_copy(model_from_checkpoint(self._task, checkpoint)).to(
                self._device
            )
        return self._models[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._checkpoints)

    def __len__(self) -> int:
        return len(self._checkpoints)

    def __repr__(self) -> str:
        return f"_LazyModels(runs={sorted(self._checkpoints)}, built={sorted(self._models)})"


@dataclass(frozen=True)
class UnlearningSettings:
    """How one unlearning run is done and named: everything but the plan, the models and
    the data.

    Attributes:
        strategy: the registered strategy name.
        params: its parameters (raw mapping or its typed model; ``None`` = defaults).
        seed: the run's seed.
        loop: device, precision and progress of the strategy's loops.
        run_name: the run's name (default: the strategy's), e.g. ``nl_ft_r10``.
        variant: the sweep variant, if any (``r10``, ``long``…).
        deterministic: ask torch for deterministic kernels.
        catalog_names: dataset names for the record (``parent``, ``checkpoint``,
            ``reference``).
    """

    strategy: str
    params: Mapping[str, Any] | BaseModel | None = None
    seed: int = 0
    loop: LoopSettings = field(default_factory=lambda: LoopSettings(epochs=1))
    run_name: str | None = None
    variant: str | None = None
    deterministic: bool = True
    catalog_names: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunCost:
    """What a run cost (see the module docstring's cost rule).

    Attributes:
        own_wall_time_s: the strategy's own optimisation wall time.
        component_wall_time_s: the finished runs a combining strategy used, by run name.
        setup_time_s: rebuilding the models before the strategy ran (not part of the cost).
        reference_wall_time_s: the oracle's (retraining's) wall time, when known.
    """

    own_wall_time_s: float
    component_wall_time_s: dict[str, float] = field(default_factory=dict)
    setup_time_s: float = 0.0
    reference_wall_time_s: float | None = None

    @property
    def wall_time_s(self) -> float:
        """The run's cost: its own time plus its components'."""
        return self.own_wall_time_s + sum(self.component_wall_time_s.values())

    @property
    def fraction_of_retraining(self) -> float | None:
        """The cost as a fraction of retraining (``None`` without a reference time)."""
        reference = self.reference_wall_time_s
        return self.wall_time_s / reference if reference else None


@dataclass
class UnlearningResult:
    """What one unlearning run produced; its checkpoint and record are built from it.

    Attributes:
        task_name: the task.
        spec: the strategy.
        params: its typed parameters.
        plan: what was forgotten and which retain items were planned.
        original: the parent checkpoint (never modified).
        run_name: the run's name.
        variant: the sweep variant, if any.
        seed: the run's seed.
        retain_used: the retain items the strategy was given (the new ``data_manifest``).
        retain_fraction: the retain fraction the strategy used (``None`` without retain).
        cost: what the run cost.
        history: the strategy's per-epoch record (with ``run`` and ``strategy`` columns).
        state_dict: the unlearned weights (CPU; empty for an alias).
        epochs: epochs the strategy ran.
        final: the history's last row.
        strategy_extras: what the strategy reported besides the model.
        combined_runs: hashes of the finished runs a combining strategy was given.
        reference_hash: the oracle checkpoint's hash, when it was given whole.
        device: where the strategy ran.
        catalog_names: dataset names for the record.
        alias_of: the run this one repeats (an alias is not run; cost 0).
        checkpoint: the unlearned checkpoint (:meth:`lineage` as metadata), built once.
        record: the erasure-request record (:meth:`erasure_record`), built once.
    """

    task_name: str
    spec: StrategySpec
    params: BaseModel
    plan: UnlearningPlan
    original: ModelCheckpoint
    run_name: str
    variant: str | None
    seed: int
    retain_used: list[str]
    retain_fraction: float | None
    cost: RunCost
    history: pd.DataFrame
    state_dict: dict[str, torch.Tensor] = field(default_factory=dict)
    epochs: int = 0
    final: dict[str, Any] = field(default_factory=dict)
    strategy_extras: dict[str, Any] = field(default_factory=dict)
    combined_runs: dict[str, str] = field(default_factory=dict)
    reference_hash: str | None = None
    device: str = "cpu"
    catalog_names: Mapping[str, str] = field(default_factory=dict)
    alias_of: str | None = None
    checkpoint: ModelCheckpoint = field(init=False)
    record: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.checkpoint = ModelCheckpoint(state_dict=self.state_dict, metadata=self.lineage())
        self.record = self.erasure_record()

    def summary(self) -> dict[str, Any]:
        """The checkpoint's ``extra["unlearning"]`` block."""
        if self.alias_of is not None:
            return {
                "run": self.run_name,
                "variant": self.variant,
                "family": self.spec.family,
                "alias_of": self.alias_of,
                "retain_fraction": self.retain_fraction,
            }
        return {
            "run": self.run_name,
            "variant": self.variant,
            "family": self.spec.family,
            "retain_fraction": self.retain_fraction,
            "setup_time_s": self.cost.setup_time_s,
            "own_wall_time_s": self.cost.own_wall_time_s,
            "component_wall_time_s": self.cost.component_wall_time_s,
            "reference_wall_time_s": self.cost.reference_wall_time_s,
            "fraction_of_retraining": self.cost.fraction_of_retraining,
            "final": self.final,
            "strategy_extras": self.strategy_extras,
            "combined_runs": self.combined_runs,
        }

    def lineage(self) -> CheckpointMetadata:
        """The new checkpoint's metadata: the original's architecture and ``extra`` (so task
        code rebuilds it like the original), the unlearning summary under
        ``extra["unlearning"]`` (and ``extra["alias_of"]`` for an alias)."""
        original = self.original.metadata
        extra = dict(original.extra)
        for key in ("run", "model"):  # the task pipelines' run-name keys
            if key in extra:
                extra[key] = self.run_name
        extra["unlearning"] = self.summary()
        metadata = CheckpointMetadata(
            task=original.task,
            architecture=original.architecture,
            architecture_params=dict(original.architecture_params),
            data_manifest=[str(item) for item in self.retain_used],
            parent_hash=self.original.content_hash,
            strategy=self.spec.name,
            strategy_params=_jsonable(self.params.model_dump(mode="json")),
            forget_ids=[str(item) for item in self.plan.forget_ids],
            wall_time_s=float(self.cost.wall_time_s),
            epochs=self.epochs,
            seed=int(self.seed),
            extra=_jsonable(extra),
        )
        if self.alias_of is not None:
            metadata.extra["alias_of"] = self.alias_of
        return metadata

    def erasure_record(self) -> dict[str, Any]:
        """The JSON-ready erasure-request record (schema :data:`RECORD_SCHEMA`)."""
        if self.alias_of is not None:
            return self._alias_record()
        meta = self.checkpoint.metadata
        original = self.original.metadata
        names = self.catalog_names
        cost = self.cost
        return _jsonable(
            {
                "schema": RECORD_SCHEMA,
                "task": self.task_name,
                "run": self.run_name,
                "strategy": self.spec.name,
                "variant": self.variant,
                "family": self.spec.family,
                "strategy_description": self.spec.description,
                "request": self.plan.request_record(),
                "forget_ids": meta.forget_ids,
                "retain_ids": meta.data_manifest,
                "retain_fraction": self.retain_fraction,
                "parent": {
                    "catalog": names.get("parent"),
                    "hash": meta.parent_hash,
                    "trained_on": len(original.data_manifest),
                    "wall_time_s": original.wall_time_s,
                },
                "unlearned": {
                    "catalog": names.get("checkpoint"),
                    "hash": self.checkpoint.content_hash,
                    "epochs": meta.epochs,
                    "wall_time_s": meta.wall_time_s,
                    "final": self.final,
                },
                "reference": {
                    "catalog": names.get("reference"),
                    "hash": self.reference_hash,
                    "wall_time_s": cost.reference_wall_time_s,
                },
                "cost": {
                    "wall_time_s": meta.wall_time_s,
                    "own_wall_time_s": cost.own_wall_time_s,
                    "component_wall_time_s": cost.component_wall_time_s,
                    "setup_time_s": cost.setup_time_s,
                    "retraining_wall_time_s": cost.reference_wall_time_s,
                    "fraction_of_retraining": cost.fraction_of_retraining,
                },
                "params": meta.strategy_params,
                "seed": meta.seed,
                "device": self.device,
                "created_at": meta.created_at,
                "library_versions": meta.library_versions,
                "verification": None,
            }
        )

    def _alias_record(self) -> dict[str, Any]:
        return _jsonable({
            "schema": RECORD_SCHEMA,
            "task": self.task_name,
            "run": self.run_name,
            "strategy": self.spec.name,
            "variant": self.variant,
            "alias_of": self.alias_of,
            "request": self.plan.request_record(),
            "forget_ids": list(map(str, self.plan.forget_ids)),
            "retain_ids": list(map(str, self.retain_used)),
            "parent": {"hash": self.original.content_hash},
            "cost": {"wall_time_s": 0.0},
            "params": self.params.model_dump(mode="json"),
            "seed": int(self.seed),
            "verification": None,
        })

    def __repr__(self) -> str:
        return (
            f"UnlearningResult({self.run_name!r}: {self.checkpoint!r}, "
            f"{len(self.history)} history rows, {self.cost.wall_time_s:.2f}s)"
        )


#: The former name of :class:`UnlearningResult`.
UnlearningOutcome = UnlearningResult


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
            (:func:`plan_unlearning`, or :meth:`UnlearningPlan.from_ids`).
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
    frozen = _frozen_copy(working)
    run = UnlearningRun(
        model=working,
        frozen=frozen,
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
    if state_dict_hash(frozen.state_dict()) != parent_hash:
        raise RuntimeError(
            f"{description}: strategy {spec.name!r} modified the frozen copy of the original; "
            "strategies must only read UnlearningRun.frozen"
        )
    reference_meta = reference.metadata if isinstance(reference, ModelCheckpoint) else reference
    history = outcome.history.copy()
    final = _last_row(history)
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
        strategy_extras=_jsonable(outcome.extras),
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
