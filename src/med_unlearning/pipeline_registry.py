"""Project pipelines: every folder under ``pipelines/`` is registered by its name."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

from med_unlearning.runners.resources import tag_gpu_nodes

#: Order of the study; ``__default__`` chains them all.
STUDY_PIPELINES = ("sample_data", "recon", "segmentation", "unlearning", "evaluation")


def register_pipelines() -> dict[str, Pipeline]:
    """Register ``sample_data``, ``recon``, ``segmentation``, ``unlearning``, ``evaluation``.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects; ``__default__`` is the
        whole study (Kedro orders the nodes by their data dependencies).
    """
    # Nodes that run a network carry the `gpu` tag (DaskRunner gives them a GPU each).
    pipelines = {name: tag_gpu_nodes(p) for name, p in find_pipelines(raise_errors=True).items()}
    # Kedro 1.7 may load only the pipelines a run asks for; the whole study needs all five.
    if all(name in pipelines for name in STUDY_PIPELINES):
        pipelines["__default__"] = sum(
            (pipelines[name] for name in STUDY_PIPELINES), Pipeline([])
        )
    return pipelines
