"""``evaluation`` pipeline: score every model on the same data, compare with the oracle,
attack membership, and write tables, figures, the study report and verified erasure records.

::

    <task>.original/oracle.checkpoint, unlearning.<task>.<run>.checkpoint
        ─► evaluation.<task>.<method>.score ─► scores (per model; fans out on Dask)
        ─► evaluation.<task>.collect ─► evaluation.<task>.results / .costs / .examples / .slices
    ─► evaluation.study_tables ─► summary, oracle gaps, distances, relative, costs,
                                  membership, verdicts, membership_null, recommendations
                                  (CSV in 08_reporting/evaluation)
    ─► evaluation.build_figures ─► PNGs ─► evaluation.write_report ─► study_report.md/.html
    ─► evaluation.verified_erasure_requests.<task> ─► verified erasure-request records

The models evaluated are the grid of :mod:`med_unlearning.unlearning.grid` (seed repeats
``<strategy>@seed<k>`` included) plus ``original``, ``oracle`` (the exact answer) and
``reference`` (the oracle retrained with another seed). A run whose checkpoint does not exist is reported as
missing rather than failing the evaluation.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from kedro.pipeline import Node, Pipeline

from med_unlearning.metrics.methods import method_name
from med_unlearning.metrics.task_scores import collect_task_scores
from med_unlearning.pipelines.evaluation.nodes import (
    build_figures,
    make_pair_check_node,
    make_recon_score_node,
    make_segmentation_score_node,
    make_verify_node,
    memorisation_tables,
    study_tables,
    write_report,
)
from med_unlearning.task_names import TASKS
from med_unlearning.unlearning.grid import study_runs

__all__ = ["TASKS", "create_pipeline", "evaluated_models"]



def evaluated_models(task: str) -> dict[str, tuple[str, str | None]]:
    """``{method: (checkpoint dataset, sweep name or None)}`` of every model of ``task``."""
    models: dict[str, tuple[str, str | None]] = {
        "original": (f"{task}.original.checkpoint", None),
        "oracle": (f"{task}.oracle.checkpoint", None),
        # the oracle's recipe with another seed: the seed-noise floor of the oracle gaps and
        # the membership attack's difficulty calibration (it never saw a forget item)
        "reference": (f"{task}.reference.checkpoint", None),
    }
    for spec in study_runs(task):
        sweep = spec.sweep.name if spec.sweep is not None else None
        models[method_name(spec.strategy, spec.variant)] = (spec.dataset("checkpoint"), sweep)
    return models


def _slug(method: str) -> str:
    return method.replace("@", "_at_")


def _score_pipelines(task: str) -> Pipeline:
    """One namespaced scoring node per model: ``evaluation.<task>.<method>.score``."""
    if task == "recon":
        data, splits, section = "fastmri_raw", "recon.splits", "params:recon"
        factory = make_recon_score_node
    else:
        data, splits = "segmentation.subjects", "segmentation.splits"
        section = "params:segmentation"
        factory = make_segmentation_score_node
    pipelines = []
    for method, (checkpoint, sweep) in evaluated_models(task).items():
        template = Pipeline(
            [
                Node(
                    factory(method, sweep),
                    inputs=["checkpoint", "data", "splits", section, "params:runtime", "pair"],
                    outputs="scores",
                    name="score",
                )
            ]
        )
        pipelines.append(
            Pipeline(
                template,
                namespace=f"evaluation.{task}.{_slug(method)}",
                inputs={
                    "checkpoint": checkpoint,
                    "data": data,
                    "splits": splits,
                    "pair": f"evaluation.{task}.pair_check",
                },
                parameters={section, "params:runtime"},
            )
        )
    check = Pipeline(
        [
            Node(
                make_pair_check_node(task),
                inputs=["original", "oracle", "splits", f"params:unlearning.{task}.check_splits"],
                outputs="pair_check",
                name="check_original_oracle_pair",
            )
        ],
        namespace=f"evaluation.{task}",
        inputs={
            "original": f"{task}.original.checkpoint",
            "oracle": f"{task}.oracle.checkpoint",
            "splits": splits,
        },
        parameters={f"params:unlearning.{task}.check_splits"},
    )
    return check + sum(pipelines, Pipeline([]))


def _expected_methods(
    recon_costs: pd.DataFrame | None = None, segmentation_costs: pd.DataFrame | None = None
) -> dict[str, list[str]]:
    """Every model the evaluation expects, per task (the report lists absent ones).

    Retain-sweep aliases (runs whose retain subset equals a smaller fraction's, recorded in
    the cost tables' ``merged`` column as ``r1 = r5``) are not expected: the run they equal
    stands for them.
    """
    merged: dict[str, set[str]] = {task: set() for task in TASKS}
    for task, costs in (("recon", recon_costs), ("segmentation", segmentation_costs)):
        if costs is None or "merged" not in costs.columns:
            continue
        labels = costs["merged"].astype("string").fillna("")
        for method, label in zip(costs["method"], labels, strict=True):
            base = str(method).split("@", 1)[0]
            merged[task] |= {f"{base}@{variant}" for variant in str(label).split(" = ")[1:]}
    return {
        task: [method for method in evaluated_models(task) if method not in merged[task]]
        for task in TASKS
    }


def _task_pipeline(task: str) -> Pipeline:
    """Scoring and collection of one task (namespace ``evaluation.<task>``)."""
    methods = list(evaluated_models(task))
    collect = Pipeline(
        [
            Node(
                collect_task_scores,
                inputs={method: f"{_slug(method)}_scores" for method in methods},
                outputs=["results", "costs", "examples", "slices"],
                name="collect",
            )
        ]
    )
    wired = Pipeline(
        collect,
        namespace=f"evaluation.{task}",
        inputs={
            f"{_slug(method)}_scores": f"evaluation.{task}.{_slug(method)}.scores"
            for method in methods
        },
    )
    return _score_pipelines(task) + wired


def _verification_pipeline(task: str) -> Pipeline:
    """Verified copies of ``task``'s erasure-request records (after the study tables), read
    through each run's own ``unlearning.<task>.<run>.erasure_request`` dataset."""
    records = {
        f"record_{spec.run}": spec.dataset("erasure_request") for spec in study_runs(task)
    }
    template = Pipeline(
        [
            Node(
                make_verify_node(task),
                inputs={
                    "verdicts": "verdicts",
                    "summary": "summary",
                    "membership": "membership",
                    **{name: name for name in records},
                },
                outputs=task,
                name=task,
            )
        ]
    )
    return Pipeline(
        template,
        namespace="evaluation.verified_erasure_requests",
        inputs={
            **records,
            "verdicts": "evaluation.verdicts",
            "summary": "evaluation.summary",
            "membership": "evaluation.membership",
        },
    )


def create_pipeline(**kwargs: Any) -> Pipeline:
    """Create the ``evaluation`` pipeline."""
    study = Pipeline(
        [
            Node(
                _expected_methods,
                inputs=["recon_costs", "segmentation_costs"],
                outputs="expected_methods",
                name="list_expected_methods",
            ),
            Node(
                study_tables,
                inputs=[
                    "recon_results",
                    "segmentation_results",
                    "recon_costs",
                    "segmentation_costs",
                    "params:evaluation",
                    "expected_methods",
                    "recon_slices",
                    "segmentation_slices",
                ],
                outputs=[
                    "results",
                    "summary",
                    "oracle_gaps",
                    "distances",
                    "relative",
                    "costs",
                    "membership",
                    "verdicts",
                    "membership_null",
                    "recommendations",
                ],
                name="study_tables",
            ),
            Node(
                memorisation_tables,
                inputs=["results", "params:evaluation"],
                outputs=["generalisation_gap", "forget_label_change"],
                name="memorisation_tables",
            ),
            Node(
                build_figures,
                inputs=["summary", "recon_examples", "segmentation_examples", "params:evaluation"],
                outputs=["figures", "figure_png"],
                name="build_figures",
            ),
            Node(
                write_report,
                inputs=[
                    "summary",
                    "oracle_gaps",
                    "distances",
                    "relative",
                    "costs",
                    "membership",
                    "verdicts",
                    "figure_png",
                    "params:evaluation",
                    "params:recon",
                    "params:segmentation",
                    "params:runtime",
                    "expected_methods",
                    "recommendations",
                    "generalisation_gap",
                    "forget_label_change",
                ],
                outputs=["report_markdown", "report_html"],
                name="write_report",
            ),
        ]
    )
    study = Pipeline(
        study,
        namespace="evaluation",
        inputs={
            f"{task}_{kind}": f"evaluation.{task}.{kind}"
            for task in TASKS
            for kind in ("results", "costs", "examples", "slices")
        },
        parameters={"params:evaluation", "params:recon", "params:segmentation", "params:runtime"},
    )
    tasks = sum((_task_pipeline(task) for task in TASKS), Pipeline([]))
    verification = sum((_verification_pipeline(task) for task in TASKS), Pipeline([]))
    # tables, figures, the report and the verified records are what a reader looks at
    report = Pipeline(study + verification, tags="report")
    return Pipeline(tasks + report, tags="evaluation")
