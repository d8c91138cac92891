"""Nodes of the ``unlearning`` pipeline: one node per run of the study grid.

Each run (namespace ``unlearning.<task>.<run>``) is one node that reads only persisted
inputs — the raw data, the task's metadata and splits tables, the original and the oracle
checkpoints, the parameters — so ``kedro run --pipelines unlearning --namespaces
unlearning.recon.nl_ft`` runs a single strategy on its own. The node plans the run
(resolve the forget request against the original's manifest, draw the retain subset:
:func:`~med_unlearning.unlearning.planning.plan_unlearning`), builds the task and its forget
and retain loaders with the library (:mod:`med_unlearning.tasks.builders`, the same for
every task) and hands everything to :func:`~med_unlearning.unlearning.engine.run_unlearning`.

Outputs per run: the unlearned checkpoint (versioned), the history table, and the
erasure-request record (JSON).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
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
from med_unlearning.tasks.builders import task_for_checkpoint, unlearning_loaders
from med_unlearning.training import LoopSettings, seed_everything
from med_unlearning.tuning.selection import apply_selection, settings_source
from med_unlearning.unlearning.engine import alias_outcome, run_unlearning
from med_unlearning.unlearning.grid import RETAIN_SWEEP, UnlearningRunSpec
from med_unlearning.unlearning.planning import UnlearningPlan, alias_target, plan_unlearning
from med_unlearning.unlearning.registry import get_strategy
from med_unlearning.unlearning.result import UnlearningResult, UnlearningSettings

__all__ = [
    "ID_COLUMNS",
    "make_unlearning_node",
    "task_block",
    "unlearn",
]

logger = logging.getLogger(__name__)

#: The id column of each task's metadata and splits tables.
ID_COLUMNS = {"recon": "volume_id", "segmentation": "subject_id"}


def unlearn(
    spec: UnlearningRunSpec,
    raw_data: Mapping[str, Any],
    metadata: pd.DataFrame,
    splits: pd.DataFrame,
    original: ModelCheckpoint,
    oracle: ModelCheckpoint | None,
    unlearning: UnlearningParams | Mapping[str, Any],
    task_section: ReconParams | SegmentationParams | Mapping[str, Any],
    runtime: RuntimeParams | Mapping[str, Any],
    others: Mapping[str, ModelCheckpoint] | None = None,
    selection: Mapping[str, Any] | None = None,
    record: Mapping[str, Any] | None = None,
) -> tuple[ModelCheckpoint, pd.DataFrame, dict[str, Any]]:
    """Run one grid run: plan it, build its loaders, unlearn, record.

    ``selection`` (the ``tuning`` pipeline's ``tuning.selected``) is applied over the conf
    values of the strategy; ``record`` is the recorded tuning run the shipped defaults come
    from. Which of them (or neither) selected the run's settings is written to the checkpoint
    metadata and the erasure record as ``settings_source``.

    The run's seed is ``unlearning.<task>.seed`` (else ``runtime.seed``), plus the offset of
    a seed repeat. A retain-sweep variant whose retain subset equals a smaller fraction's, or
    whose settings equal the strategy's main run, is not run again: its outputs record it
    as an alias of that run (see
    :func:`~med_unlearning.unlearning.engine.alias_outcome`).

    Returns:
        The unlearned checkpoint, its history and its erasure-request record.
    """
    if selection:
        raw = unlearning.model_dump() if isinstance(unlearning, UnlearningParams) else unlearning
        unlearning = apply_selection(raw, selection)
    unlearning = typed_params(UnlearningParams, unlearning)
    runtime = typed_params(RuntimeParams, runtime)
    task_params = unlearning.for_task(spec.task)
    typed = task_params.strategy_params(spec)
    source = settings_source(
        spec.task, spec.strategy, task_params.strategies.get(spec.strategy) or {}, selection, record
    )
    strategy = get_strategy(spec.strategy)
    seed = task_params.run_seed(spec, runtime.seed)
    id_column = ID_COLUMNS[spec.task]
    parent = f"{spec.task}.original.checkpoint"
    if oracle is not None:  # refuse an original and an oracle from different runs
        check_pair_with_split(
            spec.task, original, oracle, splits, id_column, check_roles=task_params.check_splits
        )
    expected = (
        ids_with_roles(splits, [RETAIN_TRAIN, FORGET_TRAIN], id_column)
        if task_params.check_splits
        else None
    )

    def plan_for(fraction: float) -> UnlearningPlan:
        return plan_unlearning(
            task_params.request.to_request(),
            metadata,
            splits,
            original.metadata.data_manifest,
            id_column=id_column,
            needs_retain=strategy.needs_retain,
            retain_fraction=fraction,
            seed=seed,
            group_column=task_params.group_column,
            expected_manifest=expected,
            parent=parent,
        )

    plan = plan_for(task_params.retain_fraction(typed))
    logger.info("%s: %r", spec.namespace, plan)
    settings = UnlearningSettings(
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
            "parent": parent,
            "checkpoint": spec.dataset("checkpoint"),
            "reference": f"{spec.task}.oracle.checkpoint",
        },
    )
    alias_name = _alias_name(spec, task_params, strategy.needs_retain, plan_for)
    if alias_name is not None:
        outcome = alias_outcome(plan, settings, original, task_name=spec.task, alias_of=alias_name)
        return _with_source(outcome, source)
    seed_everything(seed, deterministic=runtime.deterministic)
    task = task_for_checkpoint(spec.task, original, task_section, runtime)
    forget_loader, retain_loader = unlearning_loaders(
        task, raw_data, plan, original, task_section, task_params.data, runtime, seed
    )
    outcome = run_unlearning(
        plan, settings, task, original, forget_loader, retain_loader,
        others=others, reference=oracle,
    )
    return _with_source(outcome, source)


def _alias_name(
    spec: UnlearningRunSpec,
    task_params: TaskUnlearningParams,
    needs_retain: bool,
    plan_for: Callable[[float], UnlearningPlan],
) -> str | None:
    """The run a retain-sweep variant repeats, if any: a smaller fraction's run with the same
    retain subset, else the strategy's main run when the variant's settings equal it."""
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
    return None


def _with_source(
    outcome: UnlearningResult, source: str
) -> tuple[ModelCheckpoint, pd.DataFrame, dict[str, Any]]:
    """The run's outputs, each saying which data selected its settings."""
    outcome.checkpoint.metadata.extra["settings_source"] = source
    record = {**outcome.record, "settings_source": source}
    return outcome.checkpoint, outcome.history, record


def task_block(
    spec: UnlearningRunSpec, strategy_params: Mapping[str, Any] | None, settings: Mapping[str, Any]
) -> dict[str, Any]:
    """The raw ``unlearning`` section a run needs: its task's settings and only its own
    strategy's block (the other strategies' blocks are not inputs of the run)."""
    block = {**settings, "strategies": {spec.strategy: dict(strategy_params or {})}}
    return {spec.task: block}


def make_unlearning_node(
    spec: UnlearningRunSpec,
) -> Callable[..., tuple[ModelCheckpoint, pd.DataFrame, dict[str, Any]]]:
    """The node function of one grid run, called with keyword inputs (see
    :func:`med_unlearning.pipelines.unlearning.pipeline.run_pipeline`): the data and
    checkpoints, ``strategy_params`` (the strategy's block), the task-level settings
    (``request``, ``seed``…, and the run's sweep settings), ``task_section``, ``runtime``,
    ``use_selected``, ``selection``, ``record`` and ``combined_<run>`` for each run it
    combines."""

    def run_unlearning_node(
        *,
        raw_data: Mapping[str, Any],
        metadata: pd.DataFrame,
        splits: pd.DataFrame,
        original: ModelCheckpoint,
        oracle: ModelCheckpoint,
        strategy_params: Mapping[str, Any] | None,
        task_section: Any,
        runtime: RuntimeParams,
        use_selected: bool,
        selection: Mapping[str, Any],
        record: Mapping[str, Any],
        **rest: Any,
    ) -> tuple[ModelCheckpoint, pd.DataFrame, dict[str, Any]]:
        others = {run: rest.pop(f"combined_{run}") for run in spec.combines}
        return unlearn(
            spec,
            raw_data,
            metadata,
            splits,
            original,
            oracle,
            task_block(spec, strategy_params, rest),
            task_section,
            runtime,
            others,
            selection=selection if use_selected else None,
            record=record,
        )

    run_unlearning_node.__name__ = f"unlearn_{spec.task}_{spec.run}"
    run_unlearning_node.__qualname__ = run_unlearning_node.__name__
    run_unlearning_node.__doc__ = (
        f"Unlearn with strategy {spec.strategy!r} on {spec.task} (run {spec.run!r}). "
        + (unlearn.__doc__ or "")
    )
    return run_unlearning_node
