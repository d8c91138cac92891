"""``tuning`` pipeline: select each tuned strategy's settings on validation data.

::

    <task> raw data, metadata, splits, original + oracle checkpoints, params
        ─► tune_<task> ─► tuning.<task>.trials (versioned CSV: every trial)
                                ─► tuning.<task>.selected (in memory)
    ─► combine_tuning_selections ─► tuning.selected
                                    (versioned JSON, read by the unlearning pipeline)

Not part of ``__default__``: run it with ``kedro run --pipelines tuning`` after the
``recon`` / ``segmentation`` pipelines have trained the original and the oracle.
"""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Node, Pipeline

from med_unlearning.pipelines.tuning.nodes import combine_selections, make_tuning_node

__all__ = ["TASK_INPUTS", "create_pipeline"]

#: Per task: data for the runs, data scored (the fastMRI volumes; the preprocessed
#: ``segmentation.subjects``), metadata, splits, parameters section.
TASK_INPUTS = {
    "recon": (
        "fastmri_raw",
        "fastmri_raw",
        "fastmri_metadata",
        "recon.splits",
        "params:recon",
    ),
    "segmentation": (
        "segmentation.subjects",
        "segmentation.subjects",
        "mrbrains_metadata",
        "segmentation.splits",
        "params:segmentation",
    ),
}


def _task_pipeline(task: str) -> Pipeline:
    raw, scored, metadata, splits, section = TASK_INPUTS[task]
    return Pipeline(
        [
            Node(
                make_tuning_node(task),
                inputs=[
                    raw,
                    scored,
                    metadata,
                    splits,
                    f"{task}.original.checkpoint",
                    f"{task}.oracle.checkpoint",
                    "params:unlearning",
                    section,
                    "params:runtime",
                    "params:tuning",
                    "params:evaluation",
                ],
                outputs=[f"tuning.{task}.trials", f"tuning.{task}.selected"],
                name=f"tune_{task}",
                tags=["tuning", task],
            )
        ]
    )


def create_pipeline(**kwargs: Any) -> Pipeline:
    """Create the ``tuning`` pipeline (both tasks, then the combined selection)."""
    combine = Pipeline(
        [
            Node(
                combine_selections,
                inputs={
                    "tuning": "params:tuning",
                    "runtime": "params:runtime",
                    "recon": "tuning.recon.selected",
                    "segmentation": "tuning.segmentation.selected",
                },
                outputs="tuning.selected",
                name="combine_tuning_selections",
                tags=["tuning"],
            )
        ]
    )
    return Pipeline(
        _task_pipeline("recon") + _task_pipeline("segmentation") + combine,
        tags="tuning",
    )
