"""``unlearning`` pipeline: every strategy on both tasks, one namespace per run.

The grid (:func:`med_unlearning.unlearning.grid.study_runs`) is known in code — Kedro builds
pipelines before it reads parameters — while every number comes from
``parameters_unlearning.yml``::

    fastmri_raw | segmentation.subjects (preprocessed once by the segmentation pipeline),
    <task>_metadata, <task>.splits, <task>.original.checkpoint,
    <task>.oracle.checkpoint, params:unlearning.<task>.strategies.<strategy>,
    params:unlearning.<task>.{request, seed, ...} ─► unlearning.<task>.<run>.unlearn
        ─► unlearning.<task>.<run>.checkpoint       (versioned safetensors, lineage metadata)
        ─► unlearning.<task>.<run>.history          (per-epoch CSV)
        ─► unlearning.<task>.<run>.erasure_request  (JSON record)

Runs: one per registered strategy and task (``unlearning.recon.nl_ft``), the retain-fraction
sweep of the reconstruction study (``unlearning.recon.nl_ft_r10``…; a fraction whose retain
subset equals a smaller one's writes an alias record instead of training), the epoch
horizons of the segmentation study (``unlearning.segmentation.noisy_label_long``…) and the
seed repeats of the main methods (``unlearning.recon.nl_ft_seed1``…). Run one with
``kedro run --pipelines unlearning --namespaces unlearning.recon.nl_ft``.

Each run's parameters are its own inputs (kedro-viz shows them): the strategy's block
``params:unlearning.<task>.strategies.<strategy>`` (shared only by that strategy's sweep
variants and seed repeats), the task-level settings ``params:unlearning.<task>.request``,
``.seed``, ``.group_column``, ``.check_splits``, ``.default_retain_fraction``, ``.data``, and
for a sweep run its sweep's numbers (``.retain_fractions``, ``.horizons`` or ``.seeds``).
Every strategy of the grid therefore needs a block in ``parameters_unlearning.yml`` (``{}``
for its defaults).
"""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Node, Pipeline

from med_unlearning.pipelines.unlearning.nodes import make_unlearning_node
from med_unlearning.task_names import TASKS
from med_unlearning.unlearning.grid import UnlearningRunSpec, study_runs

__all__ = [
    "TASKS",
    "TASK_INPUTS",
    "TASK_SETTINGS",
    "create_pipeline",
    "run_parameters",
    "run_pipeline",
]


#: Per task: the data the runs read (fastMRI volumes; the preprocessed segmentation subjects
#: of ``segmentation.subjects``), metadata table, splits table, task parameters section.
TASK_INPUTS = {
    "recon": ("fastmri_raw", "fastmri_metadata", "recon.splits", "params:recon"),
    "segmentation": (
        "segmentation.subjects",
        "mrbrains_metadata",
        "segmentation.splits",
        "params:segmentation",
    ),
}


#: Task-level settings every run of a task reads (``unlearning.<task>.<key>``); each is its
#: own parameter input, so the graph shows which runs a change reaches.
TASK_SETTINGS = (
    "request",
    "seed",
    "group_column",
    "check_splits",
    "default_retain_fraction",
    "data",
)


def run_parameters(spec: UnlearningRunSpec) -> dict[str, str]:
    """The ``params:`` inputs of a run, by the node's keyword: the run's own strategy block
    (``params:unlearning.<task>.strategies.<strategy>``; a retain-sweep run also reads the
    blocks of its strategy's all-retain twins, ``full_ft`` for ``ft``, to know whether it is
    their run: :attr:`~med_unlearning.unlearning.grid.UnlearningRunSpec.all_retain_twins`),
    the task-level settings, the
    settings of its sweep (``retain_fractions``, ``horizons`` or ``seeds``, sweep runs only)
    and whether tuned selections apply (``params:tuning.use_selected``)."""
    task = f"params:unlearning.{spec.task}"
    keys = [*TASK_SETTINGS, *([f"{spec.sweep.name}s"] if spec.sweep is not None else [])]
    return {
        "strategy_params": f"{task}.strategies.{spec.strategy}",
        **{f"twin_{name}": f"{task}.strategies.{name}" for name in spec.all_retain_twins},
        **{key: f"{task}.{key}" for key in keys},
        "task_section": TASK_INPUTS[spec.task][3],
        "runtime": "params:runtime",
        "use_selected": "params:tuning.use_selected",
    }


def run_pipeline(spec: UnlearningRunSpec) -> Pipeline:
    """The one-node pipeline of a grid run, in namespace ``unlearning.<task>.<run>``."""
    raw, metadata, splits, _ = TASK_INPUTS[spec.task]
    shared = {
        "raw_data": raw,
        "metadata": metadata,
        "splits": splits,
        "original": f"{spec.task}.original.checkpoint",
        "oracle": f"{spec.task}.oracle.checkpoint",
        "selection": "tuning.selected",
        "record": "tuning.record",
        **{f"combined_{run}": f"unlearning.{spec.task}.{run}.checkpoint" for run in spec.combines},
    }
    parameters = run_parameters(spec)
    node = Node(
        make_unlearning_node(spec),
        inputs={**shared, **parameters},
        outputs=["checkpoint", "history", "erasure_request"],
        name="unlearn",
    )
    return Pipeline(
        [node],
        namespace=spec.namespace,
        inputs=set(shared.values()),
        parameters=set(parameters.values()),
    )


def create_pipeline(**kwargs: Any) -> Pipeline:
    """Create the ``unlearning`` pipeline: one namespaced run per task × strategy (+ sweeps)."""
    runs = sum((run_pipeline(spec) for task in TASKS for spec in study_runs(task)), Pipeline([]))
    return Pipeline(runs, tags="unlearning")
