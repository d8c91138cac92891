"""The study report's content: :func:`build_report_context` assembles it from the tables.

It turns the comparison tables of
:func:`~med_unlearning.metrics.comparison.evaluate_study`, the membership-inference table and
the figures into a :class:`~med_unlearning.reporting.context.ReportContext`: the answer first
(:mod:`med_unlearning.reporting.answer`), then one section per task with its display tables
(:mod:`med_unlearning.reporting.display`), verdict sentences and figures, and the rules in
force. :func:`~med_unlearning.reporting.render.render_report` writes it out; nothing here
reads or writes files.

A method that did not run is listed as ``missing`` (in every table and in the verdicts) and
named in a note; it never makes the report fail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from med_unlearning.metrics.memorisation import memorisation_warnings
from med_unlearning.metrics.methods import method_display_order, missing_methods
from med_unlearning.metrics.statistics import EQUIVALENCE_RULE
from med_unlearning.params.evaluation import EvaluationParams
from med_unlearning.params.recon import ReconParams
from med_unlearning.params.runtime import RuntimeParams
from med_unlearning.params.segmentation import SegmentationParams
from med_unlearning.reporting.answer import task_answer
from med_unlearning.reporting.context import (
    COST_RULE,
    MAE_DEFINITION,
    FigureEntry,
    ReportContext,
    TaskAnswer,
    TaskSection,
)
from med_unlearning.reporting.display import (
    cost_display,
    distance_display,
    gap_display,
    generalisation_gap_display,
    label_change_display,
    membership_display,
    null_display,
    verdict_display,
)
from med_unlearning.reporting.formatting import metric_label, set_label
from med_unlearning.reporting.tables import study_table

__all__ = ["build_report_context", "study_protocol", "verdict_rules"]


def verdict_rules(params: EvaluationParams) -> str:
    """One paragraph stating the verdict rules, tolerances and cost rule in force."""
    thresholds = params.verdicts
    tolerances = ", ".join(
        f"{metric_label(metric)} {value:g}" for metric, value in thresholds.tolerances.items()
    )
    level = 100 * params.statistics.confidence
    rule = EQUIVALENCE_RULE.replace("95 %", f"{level:g} %")
    return (
        f"{rule} forgot (forget criteria, read in the metric's direction): equivalent → yes, "
        "above (still better than the oracle on the forget data) → not enough, below (worse "
        "than the oracle: over-forgetting is detectable too) → too much. kept (retain "
        "criteria): equivalent → yes, above → better, below → lost. private: the same rule "
        "on "
        "the calibrated attack AUC minus the oracle's (paired over the same volumes), band "
        f"±{thresholds.privacy_tolerance:g}: equivalent → yes, outside → exposed; "
        "uninformative when the attack on a model that never saw the members (null check) "
        "does not sit at chance. Several criteria: a failing one decides, then inconclusive. "
        f"cost = cheap when wall time ≤ {100 * thresholds.max_cost_ratio:g}% of retraining. "
        f"Tolerances: {tolerances}; other metrics {100 * thresholds.relative_tolerance:g}% of "
        "the oracle's value. The recommendation is selected on validation sets only: among the "
        "unlearning runs whose validation verdicts do not fail, the smallest validation "
        "distance to the oracle; its test numbers are reported, never used to choose."
    )


_ATTACK_FEATURE_LABELS = {"cross_entropy": "cross-entropy", "soft_dice_loss": "soft Dice loss"}


def _attack_feature_label(metric: str) -> str:
    return _ATTACK_FEATURE_LABELS.get(metric, metric_label(metric))


def _fallback_note(attack: Any, task: str) -> str:
    if attack.nonmember_fallback is None:
        return ""
    return (f" (when there are none: {set_label(attack.nonmember_fallback, task)}, of another "
            "kind than the members; the null check then guards the verdicts)")


def _metric_definitions(params: EvaluationParams) -> list[str]:
    notes = []
    for task, spec in params.tasks.items():
        pairs = "; ".join(
            f"R = {metric_label(r.metric)} on {set_label(r.set, task)}, "
            f"F = {metric_label(f.metric)} on {set_label(f.set, task)}"
            for r, f in zip(spec.retain, spec.forget, strict=True)
        )
        attack = spec.attack
        features = ", ".join(_attack_feature_label(m) for m in attack.feature_metrics())
        items = "2-D slice" if attack.granularity == "slice" else "volume / subject"
        notes.append(
            f"{task}: distance to the oracle uses {pairs}. Membership inference: members = "
            f"{set_label(attack.member_set, task)}, non-members = "
            f"{set_label(attack.nonmember_set, task)}{_fallback_note(attack, task)}, "
            f"one item per {items}, loss features from {features}."
        )
    return notes


def build_report_context(
    tables: Mapping[str, pd.DataFrame],
    params: EvaluationParams,
    *,
    protocol: Mapping[str, Any],
    membership: pd.DataFrame | None = None,
    figures: Mapping[str, Sequence[FigureEntry]] | None = None,
    expected_methods: Mapping[str, Sequence[str]] | None = None,
    title: str = "Machine unlearning study report",
    notes: Sequence[str] = (),
    mae_definition: str = MAE_DEFINITION,
    memorisation: Mapping[str, pd.DataFrame | None] | None = None,
) -> ReportContext:
    """Assemble the report from the comparison tables.

    Args:
        tables: the output of :func:`~med_unlearning.metrics.comparison.evaluate_study`
            (``summary``, ``oracle_gaps``, ``distances``, ``relative``, ``costs``,
            ``verdicts``, ``recommendations``), possibly read back from CSV.
        params: the ``evaluation`` parameters.
        protocol: what was run, shown as the protocol section.
        membership: the membership-inference table
            (:func:`~med_unlearning.metrics.membership.membership_attacks`).
        figures: per task, its figures; the key ``"study"`` holds study-wide figures.
        expected_methods: per task, the methods that should have run.
        title: the report title.
        notes: notes shown under the title.
        mae_definition: the MAE definition in force (default: :data:`MAE_DEFINITION`).
        memorisation: ``{"gaps": generalisation_gaps table, "labels": forget_label_changes
            table}`` (:mod:`med_unlearning.metrics.memorisation`); a task with gaps gets the
            generalisation-gap and per-label tables and a warning when its request has
            nothing measurable to forget.

    Returns:
        The context for :func:`~med_unlearning.reporting.render.render_report`.
    """
    if "summary" not in tables:
        raise KeyError(
            f"build_report_context: tables has no 'summary' (got {sorted(tables)}); pass the "
            "output of metrics.comparison.evaluate_study"
        )
    summary = tables["summary"]
    figures = dict(figures or {})
    expected_methods = dict(expected_methods or {})
    absent = missing_methods(summary, expected_methods)
    tasks = list(dict.fromkeys([*summary["task"].astype(str).unique(), *expected_methods]))
    sections = []
    for task in tasks:
        missing = absent.get(task, [])
        methods = method_display_order(
            summary, task, original=params.original_method, oracle=params.oracle_method,
            method_order=params.method_order, extra=missing,
        )
        section = TaskSection(task=task, missing_methods=list(missing))
        if missing:
            section.notes.append(
                f"Missing methods: {', '.join(missing)} — they did not run or produced no "
                "results; their rows read \"missing\"."
            )
        section.tables.append(
            (
                "Summary (mean [95 % CI] over items)",
                study_table(
                    summary,
                    task,
                    original=params.original_method,
                    oracle=params.oracle_method,
                    method_order=params.method_order,
                    expected_methods=missing,
                ),
                "Rows: original, oracle, then each method; a plain strategy name pools its "
                "seed repeats (mean over seeds per item), @seed<k> rows are single seeds. "
                "Intervals: percentile bootstrap over items.",
            )
        )  # fmt: skip
        optional = [
            ("Paired gap to the oracle (method − oracle [95 % CI])",
             gap_display(tables.get("oracle_gaps"), task, methods, missing),
             "Mean over shared items of method − oracle, with its bootstrap interval. Positive "
             "= higher than the oracle. On forget sets the target is 0: below the oracle means "
             "over-forgetting, which is detectable too."),
            ("Distance to the oracle [95 % CI]",
             distance_display(tables.get("distances"), task, methods, missing),
             "sqrt(ΔR² + ΔF²) of the paired gaps; column names give R and F as metric@set and "
             "whether the sets are test or validation sets (validation selects, test reports)."),
            ("Membership inference null check",
             null_display(membership, task),
             "Models that never saw the members: the calibrated attack must sit at chance "
             "(AUC interval contains 0.5), otherwise this task's privacy verdicts read "
             "uninformative. The uncalibrated AUC shows what item difficulty alone gives."),
            ("Membership inference",
             membership_display(membership, task, methods, missing, params.oracle_method),
             "Calibrated attack (loss minus the reference model's on the same slice); AUC and "
             "TPR at a low FPR with 95 % intervals from a bootstrap over volumes / subjects; "
             "AUC − oracle's is paired on the same draws. A good unlearner's AUC is equivalent "
             "to the oracle's. The uncalibrated AUC is a diagnostic only."),
            ("Cost",
             cost_display(tables.get("costs"), task, methods, missing),
             COST_RULE),
        ]  # fmt: skip
        for table_title, table, caption in optional:
            if table.empty:
                section.notes.append(f"{table_title}: no results for this task.")
            else:
                section.tables.append((table_title, table, caption))
        verdict_table = tables.get("verdicts")
        if verdict_table is not None and not verdict_table.empty:
            compact = verdict_display(verdict_table, task)
            if not compact.empty:
                section.tables.append(("Verdicts at a glance", compact, ""))
            section.verdicts = [
                str(sentence)
                for sentence in verdict_table.loc[verdict_table["task"] == task, "sentence"]
            ]
        section.figures = list(figures.get(task, ()))
        sections.append(section)
    answers = [task_answer(tables, membership, params, task) for task in tasks]
    for section, answer in zip(sections, answers, strict=True):
        _add_memorisation(section, answer, memorisation or {}, params)
    return ReportContext(
        title=title,
        protocol=protocol,
        sections=sections,
        figures=list(figures.get("study", ())),
        verdict_rules=verdict_rules(params),
        mae_definition=mae_definition,
        notes=[*notes, *_metric_definitions(params)],
        dpi=params.figures.dpi,
        answers=answers,
    )


def _add_memorisation(
    section: TaskSection, answer: TaskAnswer, memorisation: Mapping[str, pd.DataFrame | None],
    params: EvaluationParams,
) -> None:
    """The generalisation-gap and per-label tables of ``section``'s task, and the warning
    (in the section and in the answer) when its request has nothing measurable to forget."""
    task = section.task
    gaps, labels = memorisation.get("gaps"), memorisation.get("labels")
    if gaps is None or gaps.empty or not (gaps["task"] == task).any():
        return
    tolerance = params.verdicts.tolerances.get("dice_mean", 0.05)
    for warning in memorisation_warnings(
        gaps, task=task, original=params.original_method, tolerance=tolerance
    ):
        section.notes.insert(0, f"Warning: {warning}")
        answer.lines.append(f"Warning: {warning}")
    section.tables.insert(
        1,
        (
            "Is there anything to forget? Generalisation gaps (Dice)",
            generalisation_gap_display(gaps, task),
            "Mean Dice of set a vs set b and the gap a − b [95 % CI]: trained − unseen = the "
            "subjects a model trained on vs whole unseen test subjects (unpaired bootstrap "
            "over both sets' subjects); forget − unseen = the forget subjects vs the unseen; "
            "forget: original − oracle = paired on the forget subjects, what there is to "
            f"forget (measurable when its whole interval exceeds the tolerance {tolerance:g}).",
        ),
    )
    if labels is not None and not labels.empty and (labels["task"] == task).any():
        section.tables.insert(
            2,
            (
                "Per-label Dice change on the forget subjects (method − original [95 % CI])",
                label_change_display(labels, task),
                "Paired over the forget subjects; labels ordered by what there is to forget "
                "(original − oracle, first row), largest first. Seed repeats pooled.",
            ),
        )


def study_protocol(
    recon: ReconParams, segmentation: SegmentationParams, runtime: RuntimeParams,
    expected_methods: Mapping[str, list[str]],
) -> dict[str, Any]:
    """The protocol section: seed, device, each task's model, forget request and epochs,
    and the number of unlearning runs per task."""
    return {
        "Seed": runtime.seed,
        "Device": runtime.device,
        "Reconstruction": (
            f"{recon.model.architecture}; "
            f"forget request {recon.forget.model_dump(exclude_none=True)}; "
            f"mask {recon.mask.kind} {recon.mask.accelerations}x, "
            f"centre {recon.mask.center_fractions}; "
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

