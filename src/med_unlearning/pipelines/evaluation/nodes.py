"""Nodes of the ``evaluation`` pipeline: thin wrappers over metrics/ and reporting/."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from med_unlearning.io.checkpoint import ModelCheckpoint
from med_unlearning.io.lineage import (
    CheckpointRef,
    check_pair_with_split,
    check_parent_is_current,
    checkpoint_ref,
)
from med_unlearning.metrics.comparison import evaluate_study, method_base
from med_unlearning.metrics.membership import membership_attacks_from_params, null_checks
from med_unlearning.metrics.memorisation import (
    forget_label_changes,
    generalisation_gaps,
)
from med_unlearning.metrics.scoring import (
    RESULT_COLUMNS,
    SLICE_COLUMNS,
    ModelScores,
    method_labels,
    score_recon_checkpoint,
    score_segmentation_checkpoint,
)
from med_unlearning.params.evaluation import EvaluationParams
from med_unlearning.params.recon import ReconParams
from med_unlearning.params.runtime import RuntimeParams
from med_unlearning.params.segmentation import SegmentationParams
from med_unlearning.reporting import figures
from med_unlearning.reporting.figures import figure_to_png
from med_unlearning.reporting.report import FigureEntry, build_report_context, render_report

#: The id column of each task's splits table.
_ID_COLUMNS = {"recon": "volume_id", "segmentation": "subject_id"}

__all__ = [
    "memorisation_tables",
    "alias_of",
    "merged_label",
    "method_name",
    "build_figures",
    "collect_task_scores",
    "make_pair_check_node",
    "make_recon_score_node",
    "make_verify_node",
    "make_segmentation_score_node",
    "study_tables",
    "verify_erasure_requests",
    "write_report",
]

logger = logging.getLogger(__name__)

_EMPTY = pd.DataFrame(columns=list(RESULT_COLUMNS))
_EMPTY_SLICES = pd.DataFrame(columns=list(SLICE_COLUMNS))


def method_name(strategy: str, variant: str | None) -> str:
    """The ``method`` of a run in the results: the strategy, ``<strategy>@<variant>`` for
    sweep variants (the figures group sweep points by the name before ``@``)."""
    return strategy if not variant else f"{strategy}@{variant}"


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


def _alias(
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


def _missing(task: str, method: str) -> ModelScores:
    logger.warning(
        "evaluation: no checkpoint for %s/%s (the run did not happen); the report lists it "
        "as missing", task, method,
    )
    return ModelScores(results=_EMPTY.copy(), examples={}, cost={})


def make_pair_check_node(task: str) -> Callable[..., dict[str, Any]]:
    """The node that refuses an original and an oracle of ``task`` from different runs.

    Its record names the current original (version, content hash): every scoring node of an
    unlearned checkpoint checks its parent hash against it (:func:`check_is_current`).
    """

    def check_original_oracle_pair(
        original: ModelCheckpoint | None,
        oracle: ModelCheckpoint | None,
        splits: pd.DataFrame,
        check_splits: bool,
    ) -> dict[str, Any]:
        current = {}
        if original is not None:
            ref = checkpoint_ref(f"{task}.original.checkpoint", original)
            current = {"original": {"version": ref.version, "content_hash": ref.content_hash}}
        if original is None or oracle is None:
            return {"task": task, "checked": False, **current}
        record = check_pair_with_split(
            task, original, oracle, splits, _ID_COLUMNS[task], check_roles=bool(check_splits)
        )
        logger.info("evaluation: %s original and oracle belong together: %s", task, record)
        return {**record, "checked": True}

    check_original_oracle_pair.__doc__ = (
        f"Check that {task}'s original and oracle come from one run on the split in use."
    )
    return check_original_oracle_pair


#: Models trained from scratch (no parent): every other evaluated model is unlearned.
TRAINED_MODELS = ("original", "oracle", "reference")


def check_is_current(
    task: str, method: str, checkpoint: ModelCheckpoint, pair: Mapping[str, Any] | None
) -> None:
    """Refuse an unlearned checkpoint of ``task`` that started from another original.

    Raises:
        StaleCheckpointError: naming the run, both originals and the command to rerun it.
    """
    current = (pair or {}).get("original")
    if method in TRAINED_MODELS or not current:
        return
    run = method.replace("@", "_")
    parent = CheckpointRef(
        name=f"{task}.original.checkpoint",
        metadata=checkpoint.metadata,  # describe() below uses version and hash only
        version=current.get("version"),
        content_hash=current.get("content_hash"),
    )
    check_parent_is_current(
        f"unlearning.{task}.{run}.checkpoint",
        checkpoint,
        parent,
        f"kedro run --pipelines unlearning --namespaces unlearning.{task}.{run}",
    )


def make_recon_score_node(method: str, sweep: str | None) -> Callable[..., ModelScores]:
    """The scoring node of one reconstruction model (``original``, ``oracle`` or a run)."""

    def score_recon_model(
        checkpoint: ModelCheckpoint | None,
        volumes: Mapping[str, Any],
        splits: pd.DataFrame,
        params: ReconParams,
        runtime: RuntimeParams,
        pair_check: Mapping[str, Any] | None = None,
    ) -> ModelScores:
        if checkpoint is None:
            return _missing("recon", method)
        check_is_current("recon", method, checkpoint, pair_check)
        target = alias_of(checkpoint)
        if target is not None:
            return _alias("recon", method, target, checkpoint, sweep)
        return score_recon_checkpoint(
            checkpoint,
            method,
            volumes,
            splits,
            batch_size=params.inference_batch_size(),
            device=runtime.device,
            include_zero_filled=method == "original",
            sweep=sweep,
        )

    score_recon_model.__doc__ = (
        f"Score recon model {method!r} on BTA, KTA and UA volumes and the retain/forget "
        "validation volumes."
    )
    return score_recon_model


def make_segmentation_score_node(method: str, sweep: str | None) -> Callable[..., ModelScores]:
    """The scoring node of one segmentation model."""

    def score_segmentation_model(
        checkpoint: ModelCheckpoint | None,
        subjects: Mapping[str, Any],
        splits: pd.DataFrame,
        params: SegmentationParams,
        runtime: RuntimeParams,
        pair_check: Mapping[str, Any] | None = None,
    ) -> ModelScores:
        if checkpoint is None:
            return _missing("segmentation", method)
        check_is_current("segmentation", method, checkpoint, pair_check)
        target = alias_of(checkpoint)
        if target is not None:
            return _alias("segmentation", method, target, checkpoint, sweep)
        return score_segmentation_checkpoint(
            checkpoint, method, subjects, splits, params, runtime, sweep=sweep
        )

    score_segmentation_model.__doc__ = f"Score segmentation model {method!r} per subject."
    return score_segmentation_model


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


def study_tables(
    recon_results: pd.DataFrame,
    segmentation_results: pd.DataFrame,
    recon_costs: pd.DataFrame,
    segmentation_costs: pd.DataFrame,
    params: EvaluationParams,
    expected_methods: dict[str, list[str]],
    recon_slices: pd.DataFrame | None = None,
    segmentation_slices: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, ...]:
    """Summaries, oracle gaps, distances, relative figures, costs, attacks and verdicts.

    The per-slice tables feed the membership-inference attack of tasks whose
    ``evaluation.tasks.<task>.attack.granularity`` is ``slice``.

    Returns:
        ``(results, summary, oracle_gaps, distances, relative, costs, membership, verdicts,
        membership_null, recommendations)`` — the first is the tidy table of both tasks (seed
        repeats unpooled), ``membership_null`` the attack on models that never saw the
        members, ``recommendations`` the per-task choice made on validation data.
    """
    parts = [table for table in (recon_results, segmentation_results) if not table.empty]
    if not parts:
        raise ValueError("evaluation: no model produced results; did the training pipelines run?")
    results = pd.concat(parts, ignore_index=True)
    costs = pd.concat([recon_costs, segmentation_costs], ignore_index=True).dropna(
        subset=["wall_time_s"]
    )
    slice_parts = [
        table for table in (recon_slices, segmentation_slices)
        if table is not None and not table.empty
    ]
    slices = pd.concat(slice_parts, ignore_index=True) if slice_parts else None
    membership = membership_attacks_from_params(results, params, slices)
    tables = evaluate_study(
        results, params, costs=costs, membership=membership, expected_methods=expected_methods
    )
    return (
        results,
        tables["summary"],
        tables["oracle_gaps"],
        tables["distances"],
        tables["relative"],
        tables["costs"],
        membership,
        tables["verdicts"],
        null_checks(membership),
        tables["recommendations"],
    )


def memorisation_tables(
    results: pd.DataFrame, params: EvaluationParams
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Is there anything to forget? The segmentation study's generalisation gaps (trained vs
    unseen and forget vs unseen Dice of the original, oracle and reference, with intervals
    over subjects) and the per-label Dice change on the forget subjects of every method
    (see :mod:`med_unlearning.metrics.memorisation`)."""
    options = {
        "original": params.original_method, "oracle": params.oracle_method,
        "confidence": params.statistics.confidence,
        "n_resamples": params.statistics.n_resamples, "seed": params.statistics.seed,
    }  # fmt: skip
    gaps = generalisation_gaps(results, task="segmentation", **options)
    labels = forget_label_changes(results, task="segmentation", **options)
    for _, row in gaps.iterrows():
        logger.info(
            "segmentation %s %s: %.3f vs %.3f, gap %+.3f [%+.3f, %+.3f]", row["model"],
            row["comparison"], row["mean_a"], row["mean_b"], row["gap"], row["low"], row["high"],
        )
    return gaps, labels


def _pairs(params: EvaluationParams, task: str) -> tuple[tuple[str, str], tuple[str, str]]:
    settings = params.tasks[task]
    return settings.retain[0].as_tuple(), settings.forget[0].as_tuple()


def _recon_example_inputs(
    examples: Mapping[str, Mapping[str, Mapping[str, np.ndarray]]],
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, np.ndarray]]:
    reconstructions: dict[str, dict[str, np.ndarray]] = {}
    targets: dict[str, np.ndarray] = {}
    for case, by_method in examples.items():
        label = f"{case} (test)"
        for method, arrays in by_method.items():
            if "zero_filled" in arrays and method == "original":
                reconstructions.setdefault(label, {})["zero_filled"] = arrays["zero_filled"]
            reconstructions.setdefault(label, {})[method] = arrays["output"]
            targets[label] = arrays["target"]
    return reconstructions, targets


def _main_runs_only(per_case: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{case: {method: …}}`` without the sweep variants."""
    return {
        case: {m: value for m, value in by_method.items() if method_base(m) == m}
        for case, by_method in per_case.items()
    }


def build_figures(
    summary: pd.DataFrame,
    recon_examples: Mapping[str, Any],
    segmentation_examples: Mapping[str, Any],
    params: EvaluationParams,
) -> tuple[dict[str, Figure], dict[str, bytes]]:
    """Every figure of the study, as matplotlib figures (saved by the catalog) and PNG bytes
    (embedded in the report).

    Returns:
        ``({name.png: Figure}, {name: png bytes})`` with names ``recon_examples``,
        ``segmentation_overlays``, ``tradeoff``, ``recon_retain_fraction``,
        ``segmentation_horizons``.
    """
    style = params.figures
    order = [params.original_method, params.oracle_method, *params.method_order]
    reconstructions, targets = _recon_example_inputs(recon_examples)
    model_order = ["zero_filled", *order]
    models = {m for case in reconstructions.values() for m in case}
    model_order += sorted(models - set(model_order))
    images: dict[str, np.ndarray] = {}
    predictions: dict[str, dict[str, np.ndarray]] = {}
    truths: dict[str, np.ndarray] = {}
    for case, by_method in segmentation_examples.items():
        for method, arrays in by_method.items():
            images[case] = arrays["image"]
            truths[case] = arrays["truth"]
            predictions.setdefault(case, {})[method] = arrays["prediction"]
    seg_models = {m for case in predictions.values() for m in case}
    seg_order = [m for m in order if m in seg_models] + sorted(seg_models - set(order))
    # Example panels show each strategy's main run; sweep variants (``ft@r50``) have curves.
    reconstructions = _main_runs_only(reconstructions)
    predictions = _main_runs_only(predictions)
    model_order = [m for m in model_order if m in models and method_base(m) == m]
    pairs = {task: _pairs(params, task) for task in params.tasks}
    built = {
        "recon_examples": figures.reconstruction_examples(
            reconstructions, targets, model_order=model_order,
            error_scale=style.error_scale, image_cmap=style.image_cmap,
            error_cmap=style.error_cmap, panel_inches=style.panel_inches,
        ),
        "segmentation_overlays": figures.segmentation_overlays(
            images, predictions, truths, model_order=seg_order, alpha=style.overlay_alpha,
            slice_axis=-1,
        ),
        "tradeoff": figures.tradeoff_scatter(
            summary, pairs, original=params.original_method, oracle=params.oracle_method,
            method_order=params.method_order, include_sweeps=True,
            hidden=params.baseline_methods,
        ),
        "recon_retain_fraction": figures.retain_fraction_curves(
            summary, "recon", pairs["recon"], methods=style.retain_fraction_methods
        ),
        "segmentation_horizons": figures.epoch_horizon_bars(
            summary, "segmentation", pairs["segmentation"], methods=style.epoch_methods
        ),
    }
    png = {name: figure_to_png(figure, style.dpi) for name, figure in built.items()}
    return {f"{name}.png": figure for name, figure in built.items()}, png


_FIGURE_TITLES = {
    "recon_examples": ("recon", "Reconstructions of a forget and a retain test volume"),
    "recon_retain_fraction": ("recon", "Retain-fraction sweep"),
    "segmentation_overlays": ("segmentation", "Segmentations of a forget and a retain subject"),
    "segmentation_horizons": ("segmentation", "Epoch horizons"),
    "tradeoff": ("study", "Forgetting vs keeping, against the oracle"),
}


def _protocol(
    recon: ReconParams, segmentation: SegmentationParams, runtime: RuntimeParams,
    expected_methods: Mapping[str, list[str]],
) -> dict[str, Any]:
    return {
        "Seed": runtime.seed,
        "Device": runtime.device,
        "Reconstruction": (
            f"{recon.model.architecture}; forget request {recon.forget.model_dump(exclude_none=True)}; "
            f"mask {recon.mask.kind} {recon.mask.accelerations}x, centre {recon.mask.center_fractions}; "
            f"{recon.training.epochs} epochs"
        ),
        "Segmentation": (
            f"{segmentation.model.architecture}; labels {segmentation.data.label_mapping}; "
            f"modalities {segmentation.data.modalities}; "
            f"forget {segmentation.split.forget.model_dump(exclude_none=True)}; "
            f"{segmentation.training.epochs} epochs"
        ),
        "Unlearning runs": {task: len(methods) - 2 for task, methods in expected_methods.items()},
    }


def write_report(
    summary: pd.DataFrame,
    oracle_gaps: pd.DataFrame,
    distances: pd.DataFrame,
    relative: pd.DataFrame,
    costs: pd.DataFrame,
    membership: pd.DataFrame,
    verdicts: pd.DataFrame,
    figure_png: Mapping[str, bytes],
    params: EvaluationParams,
    recon: ReconParams,
    segmentation: SegmentationParams,
    runtime: RuntimeParams,
    expected_methods: dict[str, list[str]],
    recommendations: pd.DataFrame | None = None,
    generalisation_gap: pd.DataFrame | None = None,
    forget_label_change: pd.DataFrame | None = None,
) -> tuple[str, str]:
    """The study report as Markdown and as self-contained HTML (it leads with the per-task
    recommendation, chosen on validation data, and every number carries its interval)."""
    entries: dict[str, list[FigureEntry]] = {}
    for name, png in figure_png.items():
        group, title = _FIGURE_TITLES.get(name, ("study", name))
        entries.setdefault(group, []).append(
            FigureEntry(title=title, filename=f"figures/{name}.png", image=png)
        )
    tables = {
        "summary": summary, "oracle_gaps": oracle_gaps, "distances": distances,
        "relative": relative, "costs": costs, "verdicts": verdicts,
    }
    if recommendations is not None:
        tables["recommendations"] = recommendations
    context = build_report_context(
        tables,
        params,
        protocol=_protocol(recon, segmentation, runtime, expected_methods),
        membership=membership,
        figures=entries,
        expected_methods=expected_methods,
        memorisation={"gaps": generalisation_gap, "labels": forget_label_change},
    )
    markdown, html = render_report(context)
    return markdown, html


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return _clean(value.item())
    return value


def make_verify_node(task: str) -> Callable[..., dict[str, dict[str, Any]]]:
    """The node verifying the erasure-request records of ``task``'s runs.

    Called with ``verdicts``, ``summary``, ``membership`` and one ``record_<run>`` per run
    of the grid: the latest version of ``unlearning.<task>.<run>.erasure_request`` (``{}``
    for a run that never happened, which is skipped).
    """

    def verify_task_erasure_requests(
        *,
        verdicts: pd.DataFrame,
        summary: pd.DataFrame,
        membership: pd.DataFrame,
        **records: Mapping[str, Any],
    ) -> dict[str, dict[str, Any]]:
        present = {
            name.removeprefix("record_"): (lambda record=record: record)
            for name, record in records.items()
            if record
        }
        return verify_erasure_requests(present, verdicts, summary, membership, task)

    verify_task_erasure_requests.__doc__ = f"Add verification figures to {task}'s records."
    return verify_task_erasure_requests


def verify_erasure_requests(
    records: Mapping[str, Callable[[], dict[str, Any]]],
    verdicts: pd.DataFrame,
    summary: pd.DataFrame,
    membership: pd.DataFrame,
    task: str,
) -> dict[str, dict[str, Any]]:
    """The erasure-request records of ``task``'s runs, with their verification added.

    The unlearning pipeline's records are read, never rewritten: the verified copies go to
    their own folder. Each gains ``verification``: the verdicts, the run's summary metrics
    next to the oracle's and the original's (means with their 95 % intervals), and the
    membership-inference figures (calibrated AUC with its interval, the privacy verdict and
    whether the task's attack passed its null check). An alias record (a retain-sweep run
    equal to a smaller fraction's) gets the figures of that run.
    """
    verified: dict[str, dict[str, Any]] = {}
    task_summary = summary[summary["task"] == task]
    for run, load in sorted(records.items()):
        record = dict(load())
        strategy = str(record.get("strategy", run))
        method = method_name(strategy, record.get("variant"))
        target = str(record.get("alias_of") or "")
        if target.startswith(f"{strategy}_"):  # a retain-sweep alias: verified as its run
            method = method_name(strategy, target[len(strategy) + 1 :])
        verdict = verdicts[(verdicts["task"] == task) & (verdicts["method"] == method)]
        metrics = {
            f"{row['set']}/{row['metric']}": {
                "mean": _clean(row["mean"]), "std": _clean(row["std"]), "n": _clean(row["n"]),
                "ci_low": _clean(row.get("ci_low")), "ci_high": _clean(row.get("ci_high")),
            }
            for row in task_summary[task_summary["method"] == method].to_dict("records")
        }
        references = {
            reference: {
                f"{row['set']}/{row['metric']}": _clean(row["mean"])
                for row in task_summary[task_summary["method"] == reference].to_dict("records")
            }
            for reference in ("original", "oracle")
        }
        attack = membership[(membership["task"] == task) & (membership["method"] == method)]
        record["verification"] = {
            "verdict": {k: _clean(v) for k, v in verdict.iloc[0].to_dict().items()}
            if not verdict.empty else None,
            "metrics": metrics,
            "references": references,
            "membership_inference": {k: _clean(v) for k, v in attack.iloc[0].to_dict().items()}
            if not attack.empty else None,
        }
        verified[run] = record
    logger.info("evaluation: verified %d erasure-request records of %s", len(verified), task)
    return verified
