"""``unlearning`` pipeline: every strategy on both tasks, one namespace per run.

The grid (:func:`med_unlearning.unlearning.grid.study_runs`) is known in code — Kedro builds
pipelines before it reads parameters — while every number comes from
``parameters_unlearning.yml``::

    <task>_raw, <task>_metadata, <task>.splits, <task>.original.checkpoint,
    <task>.oracle.checkpoint, params ─► unlearning.<task>.<run>.unlearn
        ─► unlearning.<task>.<run>.checkpoint       (versioned safetensors, lineage metadata)
        ─► unlearning.<task>.<run>.history          (per-epoch CSV)
        ─► unlearning.<task>.<run>.erasure_request  (JSON record)

Runs: one per registered strategy and task (``unlearning.recon.nl_ft``), the retain-fraction
sweep of the reconstruction study (``unlearning.recon.nl_ft_r10``…; a fraction whose retain
subset equals a smaller one's writes an alias record instead of training), the epoch
horizons of the segmentation study (``unlearning.segmentation.noisy_label_long``…) and the
seed repeats of the main methods (``unlearning.recon.nl_ft_seed1``…). Run one with
``kedro run --pipelines unlearning --namespaces unlearning.recon.nl_ft``.
"""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Node, Pipeline

from med_unlearning.pipelines.unlearning.nodes import make_unlearning_node
from med_unlearning.unlearning.grid import UnlearningRunSpec, study_runs

__all__ = ["TASK_INPUTS", "TASKS", "create_pipeline", "run_pipeline"]

TASKS = ("recon", "segmentation")

#: Per task: raw data, metadata table, splits table, task parameters section.
TASK_INPUTS = {
    "recon": ("fastmri_raw@volumes", "fastmri_metadata", "recon.splits", "params:recon"),
    "segmentation": (
        "mrbrains_raw@images",
        "mrbrains_metadata",
        "segmentation.splits",
        "params:segmentation",
    ),
}


def run_pipeline(spec: UnlearningRunSpec) -> Pipeline:
    """The one-node pipeline of a grid run, in namespace ``unlearning.<task>.<run>``."""
    raw, metadata, splits, section = TASK_INPUTS[spec.task]
    combined = [f"unlearning.{spec.task}.{run}.checkpoint" for run in spec.combines]
    shared = [
        raw,
        metadata,
        splits,
        f"{spec.task}.original.checkpoint",
        f"{spec.task}.oracle.checkpoint",
    ]
    node = Node(
        make_unlearning_node(spec),
        inputs=[
            *shared,
            "params:unlearning",
            section,
            "params:runtime",
            "params:tuning",
            "tuning.selected",
            "tuning.record",
            *combined,
        ],
        outputs=["checkpoint", "history", "erasure_request"],
        name="unlearn",
    )
    return Pipeline(
        [node],
        namespace=spec.namespace,
        inputs={*shared, "tuning.selected", "tuning.record", *combined},
        parameters={"params:unlearning", section, "params:runtime", "params:tuning"},
    )


def create_pipeline(**kwargs: Any) -> Pipeline:
    """Create the ``unlearning`` pipeline: one namespaced run per task × strategy (+ sweeps)."""
    return sum((run_pipeline(spec) for task in TASKS for spec in study_runs(task)), Pipeline([]))
