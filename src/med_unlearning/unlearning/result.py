"""The typed result of one unlearning run, and the records built from it.

:class:`UnlearningSettings` says how a run is done and named, :class:`RunCost` what it
cost (the cost rule is in :mod:`med_unlearning.unlearning.engine`), :class:`UnlearningResult`
what it produced; the result builds, once, the new checkpoint's lineage
(:meth:`UnlearningResult.lineage`) and the JSON-ready erasure-request record
(:meth:`UnlearningResult.erasure_record`, schema :data:`RECORD_SCHEMA`). Nothing here runs a
model: :func:`~med_unlearning.unlearning.engine.run_unlearning` fills the result in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from pydantic import BaseModel

from med_unlearning.io.checkpoint import CheckpointMetadata, ModelCheckpoint
from med_unlearning.jsonable import jsonable
from med_unlearning.training import LoopSettings
from med_unlearning.unlearning.planning import UnlearningPlan
from med_unlearning.unlearning.registry import StrategySpec

__all__ = [
    "RECORD_SCHEMA",
    "RunCost",
    "UnlearningOutcome",
    "UnlearningResult",
    "UnlearningSettings",
    "final_row",
    "jsonable",
]

#: Identifies the erasure-request record format (bump when its keys change).
RECORD_SCHEMA = "med_unlearning.erasure_request/1"


def final_row(history: pd.DataFrame) -> dict[str, Any]:
    """The history's last row, JSON-ready (``{}`` for an empty history): a result's ``final``."""
    if history.empty:
        return {}
    return jsonable(history.iloc[-1].to_dict())


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
            strategy_params=jsonable(self.params.model_dump(mode="json")),
            forget_ids=[str(item) for item in self.plan.forget_ids],
            wall_time_s=float(self.cost.wall_time_s),
            epochs=self.epochs,
            seed=int(self.seed),
            extra=jsonable(extra),
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
        return jsonable(
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
        return jsonable(
            {
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
            }
        )

    def __repr__(self) -> str:
        return (
            f"UnlearningResult({self.run_name!r}: {self.checkpoint!r}, "
            f"{len(self.history)} history rows, {self.cost.wall_time_s:.2f}s)"
        )


#: The former name of :class:`UnlearningResult`.
UnlearningOutcome = UnlearningResult
