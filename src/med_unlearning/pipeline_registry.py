"""Project pipelines: every folder under ``pipelines/`` is registered by its name."""

from __future__ import annotations

import difflib
from importlib import resources

from kedro.framework.project import find_pipelines, pipelines
from kedro.pipeline import Pipeline

from med_unlearning.runners.resources import tag_gpu_nodes

__all__ = [
    "STUDY_PIPELINES",
    "UnknownPipelineError",
    "available_pipelines",
    "check_requested",
    "register_pipelines",
]

#: Order of the study; ``__default__`` chains them all.
STUDY_PIPELINES = ("sample_data", "recon", "segmentation", "unlearning", "evaluation")


class UnknownPipelineError(ValueError):
    """``--pipelines`` names a pipeline the project does not have; the message lists them.

    Not a ``KeyError``: Kedro would catch that and report only close matches.
    """


def available_pipelines() -> list[str]:
    """The registrable pipeline names: the folders of ``med_unlearning.pipelines``."""
    package = resources.files("med_unlearning.pipelines")
    return sorted(
        entry.name for entry in package.iterdir()
        if entry.is_dir() and not entry.name.startswith((".", "__"))
    )


def check_requested(requested: set[str] | list[str] | None) -> None:
    """Refuse unknown pipeline names before Kedro tries to import them.

    Raises:
        UnknownPipelineError: naming each unknown name, the valid names and close matches.
    """
    if not requested:
        return
    valid = [*available_pipelines(), "__default__"]
    unknown = sorted(set(requested) - set(valid))
    if unknown:
        hints = [
            f"{name!r} -> did you mean {match[0]!r}?"
            for name in unknown
            if (match := difflib.get_close_matches(name, valid, n=1))
        ]
        raise UnknownPipelineError(
            f"unknown pipeline name(s) {unknown} (kedro run --pipelines); valid names: "
            f"{valid}" + (f"; {'; '.join(hints)}" if hints else "")
        )


def register_pipelines() -> dict[str, Pipeline]:
    """Register ``sample_data``, ``recon``, ``segmentation``, ``unlearning``, ``evaluation``.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects; ``__default__`` is the
        whole study (Kedro orders the nodes by their data dependencies).

    Raises:
        UnknownPipelineError: the run asks for a pipeline that does not exist.
    """
    check_requested(getattr(pipelines, "_requested_pipelines", None))
    # Nodes that run a network carry the `gpu` tag (DaskRunner gives them a GPU each).
    found = {name: tag_gpu_nodes(p) for name, p in find_pipelines(raise_errors=True).items()}
    # Kedro 1.7 may load only the pipelines a run asks for; the whole study needs all five.
    if all(name in found for name in STUDY_PIPELINES):
        found["__default__"] = sum((found[name] for name in STUDY_PIPELINES), Pipeline([]))
    return found
