"""One run of the study grid, from the ``unlearning`` parameters to its result.

The Kedro node of a grid run (:mod:`med_unlearning.pipelines.unlearning.nodes`) only wires
datasets to these two calls:

1. :func:`prepare_grid_run` types the parameters (applying a tuning selection over the conf
   values), picks the run's seed, refuses an original and an oracle from different runs,
   plans the run (forget request resolved against the original's manifest, seeded retain
   subset: :func:`~med_unlearning.unlearning.planning.plan_unlearning`), names it
   (:class:`~med_unlearning.unlearning.result.UnlearningSettings`) and decides whether it
   repeats another run (an *alias*, not run again);
2. :func:`carry_out` runs it: the alias's record (cost 0), or the task and its loaders from
   the library (:mod:`med_unlearning.tasks.builders`) handed to
   :func:`~med_unlearning.unlearning.engine.run_unlearning`.

Nothing here needs Kedro; the random streams are drawn in the order the node always drew
them (plan, then seed, then task and loaders, then the run).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from med_unlearning.data.splits import FORGET_TRAIN, RETAIN_TRAIN, ids_with_roles
from med_unlearning.io.checkpoint import ModelCheckpoint
from med_unlearning.io.lineage import check_pair_with_split
from med_unlearning.params.base import typed_params
from med_unlearning.params.recon import ReconParams
from med_unlearning.params.runtime import RuntimeParams
from med_unlearning.params.segmentation import SegmentationParams
from med_unlearning.params.unlearning import TaskUnlearningParams, UnlearningParams
from med_unlearning.task_names import ID_COLUMNS
from med_unlearning.tasks.builders import task_for_checkpoint, unlearning_loaders
from med_unlearning.training import LoopSettings, seed_everything
from med_unlearning.tuning.selection import apply_selection, settings_source
from med_unlearning.unlearning.engine import alias_outcome, run_unlearning
from med_unlearning.unlearning.grid import RETAIN_SWEEP, UnlearningRunSpec
from med_unlearning.unlearning.planning import UnlearningPlan, alias_target, plan_unlearning
from med_unlearning.unlearning.registry import get_strategy
from med_unlearning.unlearning.result import UnlearningResult, UnlearningSettings

__all__ = ["ID_COLUMNS", "GridRun", "carry_out", "prepare_grid_run", "typed_unlearning"]

logger = logging.getLogger(__name__)

#: The id column of each task's metadata and splits tables.


@dataclass(frozen=True)
class GridRun:
    """A grid run planned and named, before any model is built.

    Attributes:
        spec: the run in the grid (task, strategy, variant, namespace).
        task_params: the task's typed ``unlearning`` settings.
        runtime: the typed runtime settings.
        plan: what the run forgets and the retain items it uses.
        settings: the strategy, its parameters, the seed, the loop and the record's names.
        alias_of: the run this one repeats (not run again), or ``None``.
        settings_source: which data selected the run's settings (see
            :func:`~med_unlearning.tuning.selection.settings_source`).
    """

    spec: UnlearningRunSpec
    task_params: TaskUnlearningParams
    runtime: RuntimeParams
    plan: UnlearningPlan
    settings: UnlearningSettings
    alias_of: str | None
    settings_source: str


def typed_unlearning(
    unlearning: UnlearningParams | Mapping[str, Any], selection: Mapping[str, Any] | None
) -> UnlearningParams:
    """The typed ``unlearning`` section, with a tuning ``selection`` applied over its values."""
    if selection:
        raw = unlearning.model_dump() if isinstance(unlearning, UnlearningParams) else unlearning
        unlearning = apply_selection(raw, selection)
    return typed_params(UnlearningParams, unlearning)


def prepare_grid_run(
    spec: UnlearningRunSpec,
    metadata: pd.DataFrame,
    splits: pd.DataFrame,
    original: ModelCheckpoint,
    oracle: ModelCheckpoint | None,
    unlearning: UnlearningParams | Mapping[str, Any],
    runtime: RuntimeParams | Mapping[str, Any],
    *,
    selection: Mapping[str, Any] | None = None,
    record: Mapping[str, Any] | None = None,
) -> GridRun:
    """Type, check, plan and name one grid run (see the module docstring).

    The run's seed is ``unlearning.<task>.seed`` (else ``runtime.seed``) plus the offset of
    a seed repeat; ``record`` is the recorded tuning run the shipped defaults come from.

    Raises:
        ParentMismatchError / ForgetRequestError: see
            :func:`~med_unlearning.unlearning.planning.plan_unlearning`; a mismatched
            original/oracle pair (:func:`~med_unlearning.io.lineage.check_pair_with_split`).
    """
    task_params = typed_unlearning(unlearning, selection).for_task(spec.task)
    runtime = typed_params(RuntimeParams, runtime)
    typed = task_params.strategy_params(spec)
    source = settings_source(
        spec.task, spec.strategy, task_params.strategies.get(spec.strategy) or {}, selection, record
    )
    seed = task_params.run_seed(spec, runtime.seed)
    if oracle is not None:  # refuse an original and an oracle from different runs
        check_pair_with_split(
            spec.task,
            original,
            oracle,
            splits,
            ID_COLUMNS[spec.task],
            check_roles=task_params.check_splits,
        )
    plan_for = _planner(spec, task_params, metadata, splits, original, seed)
    plan = plan_for(task_params.retain_fraction(typed))
    logger.info("%s: %r", spec.namespace, plan)
    return GridRun(
        spec=spec,
        task_params=task_params,
        runtime=runtime,
        plan=plan,
        settings=_settings(spec, typed, seed, runtime),
        alias_of=_alias_name(spec, task_params, plan_for),
        settings_source=source,
    )


def carry_out(
    run: GridRun,
    raw_data: Mapping[str, Any],
    original: ModelCheckpoint,
    oracle: ModelCheckpoint | None,
    task_section: ReconParams | SegmentationParams | Mapping[str, Any],
    others: Mapping[str, ModelCheckpoint] | None = None,
) -> UnlearningResult:
    """Run a prepared grid run (or record its alias), its settings' source in its outputs.

    The checkpoint's ``extra["settings_source"]`` and the record's ``settings_source`` say
    which data selected the run's settings.
    """
    spec, runtime, seed = run.spec, run.runtime, run.settings.seed
    if run.alias_of is not None:
        result = alias_outcome(
            run.plan, run.settings, original, task_name=spec.task, alias_of=run.alias_of
        )
    else:
        seed_everything(seed, deterministic=runtime.deterministic)
        task = task_for_checkpoint(spec.task, original, task_section, runtime)
        forget_loader, retain_loader = unlearning_loaders(
            task, raw_data, run.plan, original, task_section, run.task_params.data, runtime, seed
        )
        result = run_unlearning(
            run.plan,
            run.settings,
            task,
            original,
            forget_loader,
            retain_loader,
            others=others,
            reference=oracle,
        )
    result.checkpoint.metadata.extra["settings_source"] = run.settings_source
    result.record = {**result.record, "settings_source": run.settings_source}
    return result


def _planner(
    spec: UnlearningRunSpec,
    task_params: TaskUnlearningParams,
    metadata: pd.DataFrame,
    splits: pd.DataFrame,
    original: ModelCheckpoint,
    seed: int,
) -> Callable[[float | None], UnlearningPlan]:
    """The run's plan for a retain fraction (a retain-sweep variant compares several)."""
    id_column = ID_COLUMNS[spec.task]
    expected = (
        ids_with_roles(splits, [RETAIN_TRAIN, FORGET_TRAIN], id_column)
        if task_params.check_splits
        else None
    )
    needs_retain = get_strategy(spec.strategy).needs_retain

    def plan_for(fraction: float | None) -> UnlearningPlan:
        return plan_unlearning(
            task_params.request.to_request(),
            metadata,
            splits,
            original.metadata.data_manifest,
            id_column=id_column,
            needs_retain=needs_retain,
            retain_fraction=fraction,
            seed=seed,
            group_column=task_params.group_column,
            expected_manifest=expected,
            parent=f"{spec.task}.original.checkpoint",
        )

    return plan_for


def _settings(
    spec: UnlearningRunSpec, typed: Any, seed: int, runtime: RuntimeParams
) -> UnlearningSettings:
    """How the run is done and named: its strategy parameters, seed, loop and dataset names."""
    return UnlearningSettings(
        strategy=spec.strategy,
        params=typed,
        seed=seed,
        loop=LoopSettings(
            epochs=1,
            device=runtime.device,
            precision=runtime.precision,
            progress=runtime.progress,
            description=spec.namespace,
        ),
        run_name=spec.run,
        variant=spec.variant,
        deterministic=runtime.deterministic,
        catalog_names={
            "parent": f"{spec.task}.original.checkpoint",
            "checkpoint": spec.dataset("checkpoint"),
            "reference": f"{spec.task}.oracle.checkpoint",
        },
    )


def _alias_name(
    spec: UnlearningRunSpec,
    task_params: TaskUnlearningParams,
    plan_for: Callable[[float | None], UnlearningPlan],
) -> str | None:
    """The run a retain-sweep variant repeats, if any: a smaller fraction's run with the same
    retain subset, else the strategy's main run when the variant's settings equal it, else
    the main run of the strategy that is this one on all retain data (``ft_r100`` =
    ``full_ft``)."""
    needs_retain = get_strategy(spec.strategy).needs_retain
    if spec.sweep is None or spec.sweep.name != RETAIN_SWEEP.name or not needs_retain:
        return None
    target = alias_target(
        str(spec.variant),
        task_params.retain_fractions,
        lambda fraction: plan_for(fraction).retain_ids,
    )
    if target is not None:
        return f"{spec.strategy}_{target}"
    if task_params.equals_main_run(spec):
        return spec.strategy  # e.g. nl_ft_r10 is nl_ft itself
    return task_params.equal_all_retain_run(spec)
