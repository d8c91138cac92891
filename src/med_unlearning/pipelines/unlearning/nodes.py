"""Nodes of the ``unlearning`` pipeline: one node per run of the study grid.

Each run (namespace ``unlearning.<task>.<run>``) is one node that reads only persisted
inputs — the raw data, the task's metadata and splits tables, the original and the oracle
checkpoints, the parameters — so ``kedro run --pipelines unlearning --namespaces
unlearning.recon.nl_ft`` runs a single strategy on its own. The node is wiring only: the
library plans the run (:func:`~med_unlearning.unlearning.grid_run.prepare_grid_run`) and
carries it out (:func:`~med_unlearning.unlearning.grid_run.carry_out`: the task and its
loaders from :mod:`med_unlearning.tasks.builders`, then
:func:`~med_unlearning.unlearning.engine.run_unlearning`).

Outputs per run: the unlearned checkpoint (versioned), the history table, and the
erasure-request record (JSON).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from med_unlearning.io.checkpoint import ModelCheckpoint
from med_unlearning.params.recon import ReconParams
from med_unlearning.params.runtime import RuntimeParams
from med_unlearning.params.segmentation import SegmentationParams
from med_unlearning.params.unlearning import UnlearningParams
from med_unlearning.unlearning.grid import UnlearningRunSpec
from med_unlearning.unlearning.grid_run import ID_COLUMNS, carry_out, prepare_grid_run

__all__ = [
    "ID_COLUMNS",
    "make_unlearning_node",
    "task_block",
    "unlearn",
]


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
    whose settings equal the strategy's main run or its all-retain twin's (``ft_r100`` =
    ``full_ft``), is not run again: its outputs record it as an alias of that run (see
    :func:`~med_unlearning.unlearning.engine.alias_outcome`).

    Returns:
        The unlearned checkpoint, its history and its erasure-request record.
    """
    run = prepare_grid_run(
        spec, metadata, splits, original, oracle, unlearning, runtime,
        selection=selection, record=record,
    )
    result = carry_out(run, raw_data, original, oracle, task_section, others)
    return result.checkpoint, result.history, result.record


def task_block(
    spec: UnlearningRunSpec,
    strategy_params: Mapping[str, Any] | None,
    settings: Mapping[str, Any],
    twins: Mapping[str, Mapping[str, Any] | None] | None = None,
) -> dict[str, Any]:
    """The raw ``unlearning`` section a run needs: its task's settings, its own strategy's
    block and the blocks of its all-retain ``twins`` (the other strategies' blocks are not
    inputs of the run)."""
    strategies = {spec.strategy: dict(strategy_params or {})}
    strategies.update({name: dict(block or {}) for name, block in (twins or {}).items()})
    return {spec.task: {**settings, "strategies": strategies}}


def make_unlearning_node(
    spec: UnlearningRunSpec,
) -> Callable[..., tuple[ModelCheckpoint, pd.DataFrame, dict[str, Any]]]:
    """The node function of one grid run, called with keyword inputs (see
    :func:`med_unlearning.pipelines.unlearning.pipeline.run_pipeline`): the data and
    checkpoints, ``strategy_params`` (the strategy's block), the task-level settings
    (``request``, ``seed``…, and the run's sweep settings), ``task_section``, ``runtime``,
    ``use_selected``, ``selection``, ``record``, ``combined_<run>`` for each run it
    combines and ``twin_<strategy>`` for each all-retain twin of a retain-sweep run."""

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
        twins = {name: rest.pop(f"twin_{name}") for name in spec.all_retain_twins}
        return unlearn(
            spec,
            raw_data,
            metadata,
            splits,
            original,
            oracle,
            task_block(spec, strategy_params, rest, twins),
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
