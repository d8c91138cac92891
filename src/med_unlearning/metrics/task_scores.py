"""One task's scores, stacked: per-model :class:`ModelScores` → the task's tables.

Each evaluated model yields a :class:`~med_unlearning.metrics.scoring.ModelScores`;
:func:`collect_task_scores` stacks them into the task's tidy results, cost, example and
per-slice tables. Runs that were never trained because they equal another run (*alias* runs
of the retain sweep, :func:`alias_of`) are scored once, as the run they equal: an alias of a
smaller fraction is left out of every table and named in the cost table's ``merged`` column,
an alias of the strategy's main run becomes that run's point on the sweep's curve.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd

from med_unlearning.io.checkpoint import ModelCheckpoint
from med_unlearning.metrics.methods import method_name
from med_unlearning.metrics.scoring import (
    RESULT_COLUMNS,
    SLICE_COLUMNS,
    ModelScores,
    method_labels,
)

__all__ = ["alias_of", "alias_scores", "collect_task_scores", "merged_label", "missing_scores"]

logger = logging.getLogger(__name__)

_EMPTY = pd.DataFrame(columns=list(RESULT_COLUMNS))
_EMPTY_SLICES = pd.DataFrame(columns=list(SLICE_COLUMNS))


def alias_of(checkpoint: ModelCheckpoint) -> str | None:
    """The method a retain-sweep alias checkpoint stands for (``nl_ft@r1``), else ``None``.

    An alias run was not trained: its retain subset equals a smaller fraction's (see
    :func:`~med_unlearning.unlearning.engine.alias_outcome`); its lineage names that run.
    """
    target = checkpoint.metadata.extra.get("alias_of")
    if not target:
        return None
    strategy = checkpoint.metadata.strategy or ""
    variant = str(target)[len(strategy) + 1 :] if str(target).startswith(f"{strategy}_") else None
    return method_name(strategy, variant) if variant else str(target)


def alias_scores(
    task: str, method: str, target: str, checkpoint: ModelCheckpoint, sweep: str | None
) -> ModelScores:
    """The scores of an alias run: none of its own (see :func:`collect_task_scores`).

    Its sweep coordinate (``retain_fraction``) rides along in the cost record, so that an
    alias of a strategy's main run can show the main run's figures at that coordinate.
    """
    logger.info("evaluation: %s/%s is the same run as %s: scored once, as %s",
                task, method, target, target)  # fmt: skip
    labels = method_labels(checkpoint, sweep)
    return ModelScores(
        results=_EMPTY.copy(),
        examples={},
        cost={"task": task, "method": method, "wall_time_s": 0.0, "alias_of": target,
              "labels": labels},  # fmt: skip
    )


def _is_main_run(method: str) -> bool:
    return "@" not in method


def _as_sweep_point(scores: ModelScores, method: str, labels: Mapping[str, float]) -> ModelScores:
    """``scores`` of a main run relabelled as the sweep point ``method`` it equals.

    The rows are the main run's (same model, same items); only ``method`` and the sweep
    coordinate change, so the sweep's curve has its point and no model is scored twice.
    """
    results = scores.results.copy()
    results["method"] = method
    for column, value in labels.items():
        if column in results.columns:
            results[column] = value
    slices = scores.slices.copy()
    if "method" in slices.columns:
        slices["method"] = method
    cost = {**scores.cost, "method": method}
    return ModelScores(results=results, examples={}, cost=cost, slices=slices)


def missing_scores(task: str, method: str) -> ModelScores:
    """The (empty) scores of a model whose checkpoint does not exist: the report lists it
    as missing."""
    logger.warning(
        "evaluation: no checkpoint for %s/%s (the run did not happen); the report lists it "
        "as missing", task, method,
    )
    return ModelScores(results=_EMPTY.copy(), examples={}, cost={})


def collect_task_scores(
    **scores: ModelScores,
) -> tuple[
    pd.DataFrame, pd.DataFrame, dict[str, dict[str, dict[str, np.ndarray]]], pd.DataFrame
]:
    """Stack the per-model scores of one task.

    Alias runs (retain-sweep fractions that resolved to the retain subset of a smaller
    fraction, never trained) are left out of every table; the run they equal gets the
    merged label in the cost table's ``merged`` column (e.g. ``r1 = r5``), so no sweep
    shows a point twice.

    Returns:
        The tidy results table, the cost table (``task``, ``method``, ``wall_time_s``:
        optimisation wall time without validation/evaluation, composite runs including
        their components; ``seed``; ``merged``), the example slices ``{case: {method: {kind:
        array}}}`` and the per-slice table
        (:data:`~med_unlearning.metrics.scoring.SLICE_COLUMNS`, the attack's slice items).
    """
    scores = _with_main_run_sweep_points(scores)
    tables = [item.results for item in scores.values() if not item.results.empty]
    results = pd.concat(tables, ignore_index=True) if tables else _EMPTY.copy()
    slice_tables = [item.slices for item in scores.values() if not item.slices.empty]
    slices = (
        pd.concat(slice_tables, ignore_index=True) if slice_tables else _EMPTY_SLICES.copy()
    )
    merged: dict[str, list[str]] = {}
    for item in scores.values():
        if item.cost.get("alias_of"):
            merged.setdefault(str(item.cost["alias_of"]), []).append(str(item.cost["method"]))
    costs = pd.DataFrame(
        [item.cost for item in scores.values() if item.cost and not item.cost.get("alias_of")],
        columns=["task", "method", "wall_time_s", "seed", "settings_source"],
    )
    costs["seed"] = costs["seed"].astype("Int64")
    costs["merged"] = [
        merged_label(method, merged.get(str(method), [])) for method in costs["method"]
    ]
    examples: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for method, item in scores.items():
        for case, arrays in item.examples.items():
            examples.setdefault(case, {})[method] = arrays
    return results, costs, examples, slices


def _with_main_run_sweep_points(scores: Mapping[str, ModelScores]) -> dict[str, ModelScores]:
    """Replace each alias of a strategy's main run by the main run's scores as that point.

    A retain-sweep point whose settings equal the main run's (``nl_ft@r10`` = ``nl_ft``)
    is not trained; it still belongs on the sweep's curve and in its cost column, with the
    main run's figures and cost, since it is the same model.
    """
    by_method = {str(item.cost.get("method", key)): item for key, item in scores.items()}
    out: dict[str, ModelScores] = {}
    for key, item in scores.items():
        target = str(item.cost.get("alias_of") or "")
        if target and _is_main_run(target) and target in by_method:
            out[key] = _as_sweep_point(
                by_method[target], str(item.cost["method"]), item.cost.get("labels") or {}
            )
        else:
            out[key] = item
    return out


def merged_label(method: str, aliases: list[str]) -> str:
    """``r1 = r5`` for a run that also stands for ``aliases`` (in sweep order); empty without."""
    if not aliases:
        return ""
    from med_unlearning.unlearning.grid import RETAIN_SWEEP

    order = {variant: index for index, variant in enumerate(RETAIN_SWEEP.variants)}
    variants = [name.split("@", 1)[-1] for name in aliases]
    ranked = sorted(variants, key=lambda variant: (order.get(variant, len(order)), variant))
    return " = ".join([method.split("@", 1)[-1], *ranked])
