"""Nodes of the ``evaluation`` pipeline: thin wrappers over metrics/ and reporting/.

Each node adapts the library to the catalog: it takes datasets and typed parameters, calls
one library function (scoring, :func:`~med_unlearning.metrics.comparison.evaluate_study`,
the membership attack, the figures, the report, the erasure verification) and returns what
the catalog saves. The logic lives in the library so that it runs without Kedro.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from med_unlearning.io.checkpoint import ModelCheckpoint
from med_unlearning.io.lineage import (
    CheckpointRef,
    check_pair_with_split,
    check_parent_is_current,
    checkpoint_ref,
)
from med_unlearning.metrics.comparison import evaluate_study
from med_unlearning.metrics.erasure_verification import verify_erasure_requests
from med_unlearning.metrics.membership import membership_attacks_from_params, null_checks
from med_unlearning.metrics.memorisation import (
    forget_label_changes,
    generalisation_gaps,
)
from med_unlearning.metrics.scoring import (
    ModelScores,
    score_recon_checkpoint,
    score_segmentation_checkpoint,
)
from med_unlearning.metrics.task_scores import alias_of, alias_scores, missing_scores
from med_unlearning.params.evaluation import EvaluationParams
from med_unlearning.params.recon import ReconParams
from med_unlearning.params.runtime import RuntimeParams
from med_unlearning.params.segmentation import SegmentationParams
from med_unlearning.reporting.figures import figure_to_png
from med_unlearning.reporting.render import render_report
from med_unlearning.reporting.report import build_report_context, study_protocol
from med_unlearning.reporting.study_figures import figure_entries, study_figures
from med_unlearning.task_names import ID_COLUMNS

#: The id column of each task's splits table.

__all__ = [
    "TRAINED_MODELS",
    "build_figures",
    "check_is_current",
    "make_pair_check_node",
    "make_recon_score_node",
    "make_segmentation_score_node",
    "make_verify_node",
    "memorisation_tables",
    "study_tables",
    "write_report",
]

logger = logging.getLogger(__name__)


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
            task, original, oracle, splits, ID_COLUMNS[task], check_roles=bool(check_splits)
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
            return missing_scores("recon", method)
        check_is_current("recon", method, checkpoint, pair_check)
        target = alias_of(checkpoint)
        if target is not None:
            return alias_scores("recon", method, target, checkpoint, sweep)
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
            return missing_scores("segmentation", method)
        check_is_current("segmentation", method, checkpoint, pair_check)
        target = alias_of(checkpoint)
        if target is not None:
            return alias_scores("segmentation", method, target, checkpoint, sweep)
        return score_segmentation_checkpoint(
            checkpoint, method, subjects, splits, params, runtime, sweep=sweep
        )

    score_segmentation_model.__doc__ = f"Score segmentation model {method!r} per subject."
    return score_segmentation_model


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


def build_figures(
    summary: pd.DataFrame,
    recon_examples: Mapping[str, Any],
    segmentation_examples: Mapping[str, Any],
    params: EvaluationParams,
) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Every figure of the study, rendered once as PNG bytes: for the figure files (saved by
    the catalog) and for the report, which embeds the same images.

    Returns:
        ``({name.png: png bytes}, {name: png bytes})`` with names ``recon_examples``,
        ``segmentation_overlays``, ``tradeoff``, ``recon_retain_fraction``,
        ``segmentation_horizons`` (:func:`~med_unlearning.reporting.study_figures.
        study_figures`).
    """
    built = study_figures(summary, recon_examples, segmentation_examples, params)
    # the figures use constrained layout: no second (bbox-tight) drawing pass is needed
    png = {name: figure_to_png(figure, params.figures.dpi) for name, figure in built.items()}
    return {f"{name}.png": image for name, image in png.items()}, png


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
    tables = {
        "summary": summary, "oracle_gaps": oracle_gaps, "distances": distances,
        "relative": relative, "costs": costs, "verdicts": verdicts,
    }
    if recommendations is not None:
        tables["recommendations"] = recommendations
    context = build_report_context(
        tables,
        params,
        protocol=study_protocol(recon, segmentation, runtime, expected_methods),
        membership=membership,
        figures=figure_entries(figure_png),
        expected_methods=expected_methods,
        memorisation={"gaps": generalisation_gap, "labels": forget_label_change},
    )
    markdown, html = render_report(context)
    return markdown, html


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
