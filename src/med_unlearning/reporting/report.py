"""The study report: Markdown plus a self-contained HTML page (figures embedded as PNG).

:func:`build_report_context` turns the comparison tables of
:func:`~med_unlearning.metrics.comparison.evaluate_study`, the membership-inference table and
the figures into a :class:`ReportContext`; :func:`render_report` writes it out. Neither reads
or writes files: the caller (a Kedro node) hands the two strings to text datasets, and the
Markdown refers to figures by the relative file names the caller gives.

A method that did not run is listed as ``missing`` (in every table and in the verdicts) and
named in a note; it never makes the report fail.
"""

from __future__ import annotations

import base64
import html
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jinja2
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from med_unlearning.metrics.comparison import (
    format_ci,
    format_value,
    method_display_order,
    metric_label,
    missing_methods,
    set_label,
    settings_selected_on,
    study_table,
    tolerance_for,
)
from med_unlearning.metrics.membership import NULL_ROLE, null_checks
from med_unlearning.metrics.memorisation import memorisation_warnings
from med_unlearning.metrics.statistics import EQUIVALENCE_RULE, format_interval
from med_unlearning.params.evaluation import EvaluationParams
from med_unlearning.reporting.figures import figure_to_png
from med_unlearning.reporting.templates import HTML_TEMPLATE

__all__ = [
    "COST_RULE",
    "GLOSSARY",
    "MAE_DEFINITION",
    "FigureEntry",
    "TaskAnswer",
    "ReportContext",
    "TaskSection",
    "build_report_context",
    "markdown_table",
    "render_report",
    "verdict_rules",
]

logger = logging.getLogger(__name__)

#: How the segmentation MAE is defined (``metrics.segmentation.mae_probabilities``).
MAE_DEFINITION = (
    "MAE is the mean absolute error between the predicted class probabilities and the one-hot "
    "ground truth: for each evaluated voxel, |softmax(logits)_c − onehot(label)_c| averaged "
    "over the C classes (background included), then averaged over the voxels; voxels whose "
    "label is ignored (MRBrainS18 labels 9 and 10) are left out. It is computed per subject; "
    "tables give mean ± std over subjects. 0 is perfect; a uniform prediction over C classes "
    "scores 2(C − 1)/C²."
)

#: Terms used in the report.
GLOSSARY: dict[str, str] = {
    "original": "the model trained on all data, including the data to forget (G).",
    "oracle": (
        "the model retrained from scratch without the forget data (Ĝ): the exact answer every "
        "unlearning method is compared with."
    ),
    "BTA": "retain-anatomy test set (brain test volumes): quality that must be kept.",
    "KTA": "forget-anatomy test set (knee test volumes): unseen data of the forgotten kind.",
    "UA": (
        "forget training set (the knee slices named by the request): quality on the data that "
        "must be forgotten."
    ),
    "retain subset": "the fraction of the retain training data an unlearning method may use.",
    "reference": (
        "a second retain-only model trained like the oracle with another seed; it never saw "
        "any forget-domain item. Its per-slice losses calibrate the membership attack."
    ),
    "95 % CI": (
        "percentile-bootstrap interval of a mean over items (volumes / subjects: the sampled "
        "unit), written `mean [low, high]`; `(no CI)` when a set has a single item."
    ),
    "gap to the oracle": (
        "mean over the items both were scored on of (method − oracle), with its bootstrap "
        "interval: paired, so the items' own difficulty cancels."
    ),
    "distance to the oracle": (
        "sqrt(ΔR² + ΔF²) with ΔR/ΔF the paired gaps to the oracle on a retain / forget "
        "metric (bilevel boundary-unlearning study); 0 = indistinguishable from retraining; "
        "its interval resamples both sets' items. Biased upward: a norm of noisy gaps is > 0."
    ),
    "membership inference": (
        "an attacker scores each forget-training item (member) and each unseen item of the same "
        "kind (non-member) by its loss minus the reference model's loss on the same slice "
        "(difficulty calibration, Watson et al. 2022 / offline LiRA); AUC 0.5 = chance. A model "
        "that never saw the members must score at chance (null check); a good unlearner's AUC "
        "is equivalent to the oracle's."
    ),
    "attack granularity": (
        "the attack's items: whole volumes / subjects, or their 2-D slices (per-slice 1 − SSIM "
        "and NMSE; per axial slice cross-entropy and soft Dice loss over labelled voxels). "
        "Slices of one volume are correlated, so intervals resample whole volumes / subjects "
        "and the learned attack's folds never split a volume."
    ),
    "TPR at low FPR": (
        "the fraction of members the attack finds while flagging at most that fraction of "
        "non-members: the regime an attacker cares about."
    ),
    "uninformative": (
        "the attack 'detects' members on a model that never saw them (a null model's AUC "
        "interval excludes 0.5): its verdicts on that task cannot be believed."
    ),
    "settings selected on": (
        "how a method's hyper-parameters were chosen (tuning record); 'conf defaults (not "
        "tuned)' when nobody tuned them."
    ),
    "cost": "a method's wall time as a fraction of the oracle's retraining time.",
}

#: How costs are measured (one rule for every run).
COST_RULE = (
    "Cost = optimisation wall time of the run without validation passes (a composite "
    "strategy includes its components), divided by the oracle's retraining time measured the "
    "same way; one run each, so costs carry no interval."
)


@dataclass
class FigureEntry:
    """One figure of the report.

    Attributes:
        title: heading shown above the figure.
        filename: relative file name the Markdown links to (where the caller saves the PNG).
        image: the figure (a matplotlib Figure or PNG bytes) embedded in the HTML; ``None``
            shows "Figure not available".
        caption: optional text under the figure.
    """

    title: str
    filename: str
    image: Figure | bytes | None = None
    caption: str = ""


@dataclass
class TaskAnswer:
    """The answer the report leads with, for one task.

    Attributes:
        task: the task's name.
        lines: plain sentences (recommendation, attack check, cost), built from the verdicts.
        table: the recommended method's test evidence: criterion, gap to the oracle [CI],
            tolerance, verdict (empty without a recommendation).
    """

    task: str
    lines: list[str] = field(default_factory=list)
    table: pd.DataFrame = field(default_factory=pd.DataFrame)


@dataclass
class TaskSection:
    """The report section of one task: display tables, verdict lines, figures, notes.

    Attributes:
        task: the task's name.
        tables: ``(title, table, caption)`` in display order (DataFrames of display values).
        verdicts: one plain sentence per method.
        figures: the task's figures.
        missing_methods: methods expected but without results.
        notes: extra notes shown at the top of the section.
    """

    task: str
    tables: list[tuple[str, pd.DataFrame, str]] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)
    figures: list[FigureEntry] = field(default_factory=list)
    missing_methods: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class ReportContext:
    """Everything :func:`render_report` writes.

    Attributes:
        title: the report title.
        protocol: what was run (tasks, data, forget request, retain subset, seeds, models,
            epochs …), rendered as nested bullet lists in the given order.
        sections: one per task.
        figures: study-wide figures (after the task sections).
        verdict_rules: how the verdicts were decided (tolerances), one paragraph.
        mae_definition: how the segmentation MAE is computed.
        glossary: term → meaning.
        notes: notes shown under the title.
        dpi: resolution of the figures embedded in the HTML.
        answers: the report's first section, one per task.
        cost_rule: how costs are measured.
    """

    title: str
    protocol: Mapping[str, Any]
    sections: list[TaskSection] = field(default_factory=list)
    figures: list[FigureEntry] = field(default_factory=list)
    verdict_rules: str = ""
    mae_definition: str = MAE_DEFINITION
    glossary: Mapping[str, str] = field(default_factory=lambda: dict(GLOSSARY))
    notes: list[str] = field(default_factory=list)
    dpi: int = 120
    answers: list[TaskAnswer] = field(default_factory=list)
    cost_rule: str = COST_RULE

    def __repr__(self) -> str:
        tasks = [section.task for section in self.sections]
        return (
            f"ReportContext(title={self.title!r}, tasks={tasks}, "
            f"figures={sum(len(s.figures) for s in self.sections) + len(self.figures)})"
        )


# ---------------------------------------------------------------------------------------------
# Display tables




def _with_missing_rows(
    table: pd.DataFrame, methods: Sequence[str], missing: Sequence[str]
) -> pd.DataFrame:
    """``table`` (indexed by method) reordered to ``methods``, missing ones reading ``missing``."""
    order = [m for m in methods if m in table.index or m in missing]
    table = table.reindex([*order, *[m for m in table.index if m not in order]])
    for method in missing:
        if method in table.index:
            table.loc[method] = "missing"
    return table.reset_index(names="method")


def _gap_display(
    gaps: pd.DataFrame | None, task: str, methods: Sequence[str], missing: Sequence[str]
) -> pd.DataFrame:
    if gaps is None or gaps.empty:
        return pd.DataFrame()
    rows = gaps.loc[(gaps["task"] == task) & np.isfinite(gaps["oracle_mean"].astype(float))]
    if rows.empty:
        return pd.DataFrame()
    rows = rows.assign(
        column=[f"{set_label(s)} {metric_label(m)}" for s, m in zip(rows["set"], rows["metric"],
                                                                      strict=True)],
        text=[_gap_text(row) for row in rows.itertuples(index=False)],
    )  # fmt: skip
    rows = rows.assign(
        set_rank=[_rank(s, _SET_ORDER) for s in rows["set"]],
        metric_rank=[_rank(m, _METRIC_ORDER) for m in rows["metric"]],
    ).sort_values(["set_rank", "set", "metric_rank", "metric"])
    columns = list(dict.fromkeys(rows["column"]))
    wide = rows.pivot(index="method", columns="column", values="text").reindex(columns=columns)
    return _with_missing_rows(wide.fillna("n/a"), methods, missing)


_SET_ORDER = ("retain_test", "forget_test", "forget_train", "retain", "forget")
_METRIC_ORDER = ("psnr", "ssim", "nmse", "dice_mean", "mean_dice", "mae")


def _rank(value: str, order: Sequence[str]) -> int:
    return order.index(value) if value in order else len(order)


def _gap_text(row: Any) -> str:
    low = getattr(row, "gap_ci_low", np.nan)
    high = getattr(row, "gap_ci_high", np.nan)
    return format_ci(float(row.gap), float(low), float(high), str(row.metric), signed=True)


def _signed(value: float, metric: str) -> str:
    text = format_value(value, metric)
    return text if text == "n/a" or text.startswith("-") else f"+{text}"


def _distance_display(
    distances: pd.DataFrame | None, task: str, methods: Sequence[str], missing: Sequence[str]
) -> pd.DataFrame:
    if distances is None or distances.empty:
        return pd.DataFrame()
    rows = distances.loc[distances["task"] == task]
    if rows.empty:
        return pd.DataFrame()
    low = rows["distance_ci_low"] if "distance_ci_low" in rows.columns else np.nan
    high = rows["distance_ci_high"] if "distance_ci_high" in rows.columns else np.nan
    rows = rows.assign(
        text=[format_interval(float(d), float(lo), float(hi), 3) for d, lo, hi in
              zip(rows["distance_to_oracle"], pd.Series(low, index=rows.index),
                  pd.Series(high, index=rows.index), strict=True)],
        distance=[f"{name} ({criteria})" for name, criteria in
                  zip(rows["distance"], rows.get("criteria", pd.Series("test", index=rows.index)),
                      strict=True)],
    )  # fmt: skip
    columns = list(dict.fromkeys(rows["distance"]))
    wide = rows.pivot(index="method", columns="distance", values="text").reindex(columns=columns)
    return _with_missing_rows(wide.fillna("n/a"), methods, missing)


def _auc_text(row: Mapping[str, Any], prefix: str = "") -> str:
    return format_interval(float(row[f"{prefix}auc"]), float(row[f"{prefix}auc_ci_low"]),
                           float(row[f"{prefix}auc_ci_high"]), 2)  # fmt: skip


def _membership_display(
    membership: pd.DataFrame | None,
    task: str,
    methods: Sequence[str],
    missing: Sequence[str],
    oracle: str,
) -> pd.DataFrame:
    if membership is None or membership.empty:
        return pd.DataFrame()
    rows = membership.loc[membership["task"] == task].set_index("method")
    if rows.empty:
        return pd.DataFrame()
    records = {}
    for method, row in rows.iterrows():
        fpr = float(row["fpr"]) if np.isfinite(float(row["fpr"])) else math.nan
        records[method] = {
            "role": str(row["role"]),
            "AUC [CI] (calibrated)": _auc_text(row),
            f"TPR @ FPR {fpr:g}": format_interval(float(row["tpr_at_fpr"]),
                                                  float(row["tpr_ci_low"]),
                                                  float(row["tpr_ci_high"]), 2),
            f"AUC − {oracle}'s": format_interval(float(row["auc_minus_oracle"]),
                                                 float(row["auc_minus_oracle_ci_low"]),
                                                 float(row["auc_minus_oracle_ci_high"]), 2,
                                                 signed=True),
            "private": str(row["private"]),
            "AUC uncalibrated (diagnostic)": _auc_text(row, "uncalibrated_"),
            "members / non-members": _membership_counts(row, task),
            "note": "" if not isinstance(row["note"], str) else row["note"],
        }  # fmt: skip
    table = pd.DataFrame.from_dict(records, orient="index")
    return _with_missing_rows(table, methods, missing)


def _null_display(membership: pd.DataFrame | None, task: str) -> pd.DataFrame:
    nulls = null_checks(membership) if membership is not None else pd.DataFrame()
    if nulls.empty:
        return pd.DataFrame()
    rows = nulls.loc[nulls["task"] == task]
    return pd.DataFrame(
        {
            "null model": rows["method"],
            "AUC [CI] (calibrated)": [_auc_text(r) for _, r in rows.iterrows()],
            "at chance (CI contains 0.5)": [
                "n/a" if not np.isfinite(float(auc)) else "yes" if at else "no"
                for auc, at in zip(rows["auc"], rows["at_chance"], strict=True)
            ],
            "AUC uncalibrated": [_auc_text(r, "uncalibrated_") for _, r in rows.iterrows()],
            "calibration": rows["calibration"],
        }
    ).reset_index(drop=True)


def _membership_counts(row: Mapping[str, Any], task: str) -> str:
    """``16 / 16 slices (2 / 2 volumes)`` per slice attack, ``2 / 2 volumes`` per volume."""
    word = "subjects" if task == "segmentation" else "volumes"
    members, nonmembers = row.get("n_members"), row.get("n_nonmembers")
    if members is None or not np.isfinite(float(members)):
        return "n/a"
    text = f"{int(members)} / {int(nonmembers)}"
    if row.get("granularity") == "slice":
        volumes = (row.get("n_member_volumes"), row.get("n_nonmember_volumes"))
        text += " slices"
        if all(value is not None and np.isfinite(float(value)) for value in volumes):
            text += f" ({int(volumes[0])} / {int(volumes[1])} {word})"
    else:
        text += f" {word}"
    return text


def _mean_std(mean: float, std: float) -> str:
    mean, std = float(mean), float(std)
    if not np.isfinite(mean):
        return "n/a"
    return f"{mean:.3f} ± {std:.3f}" if np.isfinite(std) else f"{mean:.3f}"


def _abs_difference(value: float, reference: float) -> str:
    value = float(value)
    return f"{abs(value - reference):.3f}" if np.isfinite([value, reference]).all() else "n/a"


def _cost_display(
    costs: pd.DataFrame | None, task: str, methods: Sequence[str], missing: Sequence[str]
) -> pd.DataFrame:
    if costs is None or costs.empty:
        return pd.DataFrame()
    rows = costs.loc[costs["task"] == task].set_index("method")
    if rows.empty:
        return pd.DataFrame()
    table = pd.DataFrame(
        {
            "wall time (s)": [f"{float(t):.1f}" for t in rows["wall_time_s"]],
            "ratio to retraining": [f"{100 * float(r):.1f}%" if np.isfinite(float(r)) else "n/a"
                                    for r in rows["ratio_to_retraining"]],
        },
        index=rows.index,
    )  # fmt: skip
    return _with_missing_rows(table, methods, missing)


def _verdict_display(verdicts: pd.DataFrame, task: str) -> pd.DataFrame:
    rows = verdicts.loc[verdicts["task"] == task]
    columns = [c for c in ("method", "forgot", "kept", "private", "cost", "val_forgot",
                           "val_kept", "selected_on") if c in rows.columns]  # fmt: skip
    table = rows.loc[:, columns].reset_index(drop=True)
    return table.rename(columns={"val_forgot": "forgot (validation)",
                                 "val_kept": "kept (validation)",
                                 "selected_on": "settings selected on"})  # fmt: skip


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


def _row_of(table: pd.DataFrame | None, task: str, method: str) -> pd.Series | None:
    if table is None or table.empty or "method" not in table.columns:
        return None
    rows = table.loc[(table["task"] == task) & (table["method"] == method)]
    return None if rows.empty else rows.iloc[0]


def _null_sentence(membership: pd.DataFrame | None, task: str) -> str:
    nulls = null_checks(membership) if membership is not None else pd.DataFrame()
    rows = nulls.loc[nulls["task"] == task] if not nulls.empty else nulls
    if rows.empty:
        return ("Membership attack: no null model could be attacked, so its privacy verdicts "
                "are uninformative.")  # fmt: skip
    status = str(rows["task_attack_status"].iloc[0])
    calibration = str(rows["calibration"].iloc[0])
    if status == "not computable":
        notes = membership.loc[(membership["task"] == task) & (membership["role"] == NULL_ROLE),
                               "note"]  # fmt: skip
        reason = str(notes.iloc[0]) if not notes.empty else "too few volumes / subjects"
        reason = reason.removeprefix("not computable: ")
        return (f"Membership attack not computable ({reason}): no privacy verdict for this "
                "task.")  # fmt: skip
    parts = [f"{r['method']} AUC {_auc_text(r)} (uncalibrated {_auc_text(r, 'uncalibrated_')})"
             for _, r in rows.iterrows()]  # fmt: skip
    verdict = ("passes: every model that never saw the members sits at chance"
               if status == "valid" else
               "fails: a model that never saw the members is 'detected', so this task's privacy "
               "verdicts read uninformative")  # fmt: skip
    return (f"Membership attack null check {verdict} — {'; '.join(parts)}; calibration: "
            f"{calibration}.")  # fmt: skip


def _power_sentence(membership: pd.DataFrame | None, task: str, original: str) -> str | None:
    """Whether the attack detects the members on the model that trained on them.

    A null check at chance shows the attack does not invent membership; the original is the
    positive control: if even its members are not detected (AUC interval containing 0.5), an
    unlearned model's "private" result cannot show that anything was forgotten.
    """
    if membership is None or membership.empty:
        return None
    rows = membership.loc[(membership["task"] == task) & (membership["method"] == original)]
    if rows.empty or pd.isna(rows["auc"].iloc[0]) or pd.isna(rows["auc_ci_low"].iloc[0]):
        return None
    row = rows.iloc[0]
    if float(row["auc_ci_low"]) > 0.5:
        return (f"Attack power: the {original}'s members are detected (AUC {_auc_text(row)}), so "
                "the attack can show what an unlearned model still remembers.")  # fmt: skip
    return (f"Attack power: even the {original}'s members are not detected (AUC "
            f"{_auc_text(row)}: the interval contains chance), so on this request the attack "
            "cannot show forgetting; privacy verdicts can only flag over-forgetting or read "
            "inconclusive.")  # fmt: skip


def _answer_table(tables: Mapping[str, pd.DataFrame], params: EvaluationParams, task: str,
                  method: str) -> pd.DataFrame:  # fmt: skip
    gaps = tables.get("oracle_gaps")
    spec = params.tasks.get(task)
    if gaps is None or gaps.empty or spec is None:
        return pd.DataFrame()
    rows = []
    verdict = _row_of(tables.get("verdicts"), task, method)
    for side, refs in (("forget", spec.forget), ("retain", spec.retain)):
        for ref in refs:
            found = gaps.loc[
                (gaps["task"] == task) & (gaps["method"] == method)
                & (gaps["set"] == ref.set) & (gaps["metric"] == ref.metric)
            ]  # fmt: skip
            if found.empty:
                continue
            row = found.iloc[0]
            tol = tolerance_for(ref.metric, float(row["oracle_mean"]), params.verdicts)
            rows.append({
                "criterion": f"{side}: {set_label(ref.set)} {metric_label(ref.metric)}",
                method: format_value(float(row["mean"]), ref.metric),
                "oracle": format_value(float(row["oracle_mean"]), ref.metric),
                "gap to the oracle [95 % CI]": _gap_text(row),
                "tolerance": f"±{format_value(tol, ref.metric)}",
                "items": str(int(row["n_paired"])) if "n_paired" in row else "n/a",
            })  # fmt: skip
    if verdict is not None:
        rows.append({"criterion": "verdicts (test)", method: "", "oracle": "",
                     "gap to the oracle [95 % CI]": f"forgot: {verdict['forgot']}; kept: "
                     f"{verdict['kept']}; private: {verdict['private']}; cost: "
                     f"{verdict['cost']}", "tolerance": "", "items": ""})  # fmt: skip
    return pd.DataFrame(rows)


def _task_answer(tables: Mapping[str, pd.DataFrame], membership: pd.DataFrame | None,
                 params: EvaluationParams, task: str) -> TaskAnswer:  # fmt: skip
    answer = TaskAnswer(task=task)
    recommendation = _row_of_task(tables.get("recommendations"), task)
    verdicts_table = tables.get("verdicts")
    method = "" if recommendation is None else str(recommendation.get("method") or "")
    method = "" if method == "nan" else method
    if recommendation is None:
        answer.lines.append("**No recommendation**: no recommendation table (validation "
                            "criteria not evaluated).")  # fmt: skip
    elif not method:
        answer.lines.append(f"**No recommendation** — {recommendation['reason']}.")
    else:
        distance = format_interval(float(recommendation["validation_distance"]),
                                   float(recommendation["validation_distance_ci_low"]),
                                   float(recommendation["validation_distance_ci_high"]), 3)
        answer.lines.append(
            f"**Recommended: {method}** — selected on validation data only "
            f"({recommendation['reason']}; validation distance {distance}). Settings selected "
            f"on: {_selected_on(verdicts_table, task, method, params)}."
        )  # fmt: skip
        verdict = _row_of(verdicts_table, task, method)
        if verdict is not None:
            answer.lines.append(f"On the test sets: {verdict['sentence']}")
        answer.table = _answer_table(tables, params, task, method)
    answer.lines.append(_null_sentence(membership, task))
    power = _power_sentence(membership, task, params.original_method)
    if power is not None:
        answer.lines.append(power)
    if verdicts_table is not None and not verdicts_table.empty:
        ran = verdicts_table.loc[(verdicts_table["task"] == task)
                                 & (verdicts_table["status"] == "ran")
                                 & ~verdicts_table["method"].isin(params.baseline_methods)]
        matching = [m for m, f, k in zip(ran["method"], ran["forgot"], ran["kept"], strict=True)
                    if f == "yes" and k in ("yes", "better")]  # fmt: skip
        answer.lines.append(
            f"Test verdicts: {len(matching)} of {len(ran)} evaluated models (baselines "
            f"{', '.join(params.baseline_methods)} left out) forgot as much as "
            "the oracle and kept its retain quality within tolerance"
            + (f" ({', '.join(matching)})" if matching else "")
            + "; every other model's verdict is in the table below (inconclusive = the "
            "interval is too wide to tell)."
        )  # fmt: skip
    return answer


def _row_of_task(table: pd.DataFrame | None, task: str) -> pd.Series | None:
    if table is None or table.empty:
        return None
    rows = table.loc[table["task"] == task]
    return None if rows.empty else rows.iloc[0]


def _selected_on(
    verdicts_table: pd.DataFrame | None, task: str, method: str, params: EvaluationParams
) -> str:
    """What selected ``method``'s settings: its verdict row's record, else the parameters'."""
    row = _row_of(verdicts_table, task, method) if verdicts_table is not None else None
    if row is not None and str(row.get("selected_on") or ""):
        return str(row["selected_on"])
    return settings_selected_on(method, params.tuning_record, task)


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
        The context for :func:`render_report`.
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
             _gap_display(tables.get("oracle_gaps"), task, methods, missing),
             "Mean over shared items of method − oracle, with its bootstrap interval. Positive "
             "= higher than the oracle. On forget sets the target is 0: below the oracle means "
             "over-forgetting, which is detectable too."),
            ("Distance to the oracle [95 % CI]",
             _distance_display(tables.get("distances"), task, methods, missing),
             "sqrt(ΔR² + ΔF²) of the paired gaps; column names give R and F as metric@set and "
             "whether the sets are test or validation sets (validation selects, test reports)."),
            ("Membership inference null check",
             _null_display(membership, task),
             "Models that never saw the members: the calibrated attack must sit at chance "
             "(AUC interval contains 0.5), otherwise this task's privacy verdicts read "
             "uninformative. The uncalibrated AUC shows what item difficulty alone gives."),
            ("Membership inference",
             _membership_display(membership, task, methods, missing, params.oracle_method),
             "Calibrated attack (loss minus the reference model's on the same slice); AUC and "
             "TPR at a low FPR with 95 % intervals from a bootstrap over volumes / subjects; "
             "AUC − oracle's is paired on the same draws. A good unlearner's AUC is equivalent "
             "to the oracle's. The uncalibrated AUC is a diagnostic only."),
            ("Cost",
             _cost_display(tables.get("costs"), task, methods, missing),
             COST_RULE),
        ]  # fmt: skip
        for table_title, table, caption in optional:
            if table.empty:
                section.notes.append(f"{table_title}: no results for this task.")
            else:
                section.tables.append((table_title, table, caption))
        verdict_table = tables.get("verdicts")
        if verdict_table is not None and not verdict_table.empty:
            compact = _verdict_display(verdict_table, task)
            if not compact.empty:
                section.tables.append(("Verdicts at a glance", compact, ""))
            section.verdicts = [
                str(sentence)
                for sentence in verdict_table.loc[verdict_table["task"] == task, "sentence"]
            ]
        section.figures = list(figures.get(task, ()))
        sections.append(section)
    answers = [_task_answer(tables, membership, params, task) for task in tasks]
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


# ---------------------------------------------------------------------------------------------
# Rendering


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
            _gap_table(gaps, task),
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
                _label_table(labels, task),
                "Paired over the forget subjects; labels ordered by what there is to forget "
                "(original − oracle, first row), largest first. Seed repeats pooled.",
            ),
        )


def _interval_cell(estimate: float, low: float, high: float) -> str:
    if math.isnan(estimate):
        return "n/a"
    if math.isnan(low):
        return f"{estimate:+.3f} (no CI)"
    return f"{estimate:+.3f} [{low:+.3f}, {high:+.3f}]"


def _gap_table(gaps: pd.DataFrame, task: str) -> pd.DataFrame:
    rows = []
    for _, row in gaps[gaps["task"] == task].iterrows():
        rows.append({
            "model": row["model"], "comparison": row["comparison"],
            "set a (n)": f"{row['set_a']} ({int(row['n_a'])})",
            "set b (n)": f"{row['set_b']} ({int(row['n_b'])})",
            "Dice a": f"{row['mean_a']:.3f}", "Dice b": f"{row['mean_b']:.3f}",
            "gap a − b [95 % CI]": _interval_cell(row["gap"], row["low"], row["high"]),
        })  # fmt: skip
    return pd.DataFrame(rows)


def _label_table(labels: pd.DataFrame, task: str) -> pd.DataFrame:
    part = labels[labels["task"] == task]
    order = list(dict.fromkeys(part["label"]))
    first = part.drop_duplicates("label").set_index("label")
    rows = [{"method": "to forget (original − oracle)",
             **{label: f"{first.loc[label, 'to_forget']:+.3f}" for label in order}}]  # fmt: skip
    for method, group in part.groupby("method", sort=False):
        cells = group.set_index("label")
        rows.append({
            "method": method,
            **{label: _interval_cell(cells.loc[label, "change"], cells.loc[label, "low"],
                                     cells.loc[label, "high"])
               for label in order if label in cells.index},
        })  # fmt: skip
    return pd.DataFrame(rows)


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (no index; NaN as ``–``; ``|`` escaped)."""
    if table.empty:
        return "_(no rows)_"

    def cell(value: Any) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return "–"
        return str(value).replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(cell(column) for column in table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    body = ["| " + " | ".join(cell(value) for value in row) + " |"
            for row in table.itertuples(index=False)]  # fmt: skip
    return "\n".join([header, rule, *body])


def _protocol_markdown(protocol: Mapping[str, Any], depth: int = 0) -> list[str]:
    lines = []
    indent = "  " * depth
    for key, value in protocol.items():
        if isinstance(value, Mapping):
            lines.append(f"{indent}- **{key}**:")
            lines.extend(_protocol_markdown(value, depth + 1))
        else:
            lines.append(f"{indent}- **{key}**: {_plain(value)}")
    return lines


def _protocol_html(protocol: Mapping[str, Any]) -> str:
    items = []
    for key, value in protocol.items():
        if isinstance(value, Mapping):
            items.append(f"<li><strong>{html.escape(str(key))}</strong>:"
                         f"{_protocol_html(value)}</li>")  # fmt: skip
        else:
            items.append(
                f"<li><strong>{html.escape(str(key))}</strong>: {html.escape(_plain(value))}</li>"
            )
    return "<ul>" + "".join(items) + "</ul>"


def _plain(value: Any) -> str:
    if isinstance(value, (list, tuple, set)):
        return ", ".join(str(item) for item in value)
    return str(value)


def _png(image: Figure | bytes | None, dpi: int, title: str) -> bytes | None:
    if image is None:
        return None
    if isinstance(image, Figure):
        return figure_to_png(image, dpi)
    if isinstance(image, (bytes, bytearray)) and bytes(image[:8]) == b"\x89PNG\r\n\x1a\n":
        return bytes(image)
    logger.warning("Figure %r is neither a matplotlib Figure nor PNG bytes; not embedded", title)
    return None


def _coerce_context(context: ReportContext | Mapping[str, Any]) -> ReportContext:
    if isinstance(context, ReportContext):
        return context
    if not isinstance(context, Mapping):
        raise TypeError(
            f"render_report expects a ReportContext or a mapping, got {type(context).__name__}"
        )
    values = dict(context)
    values["sections"] = [
        section if isinstance(section, TaskSection) else TaskSection(**section)
        for section in values.get("sections", [])
    ]
    for section in values["sections"]:
        section.figures = [f if isinstance(f, FigureEntry) else FigureEntry(**f)
                           for f in section.figures]  # fmt: skip
    values["figures"] = [f if isinstance(f, FigureEntry) else FigureEntry(**f)
                         for f in values.get("figures", [])]  # fmt: skip
    values["answers"] = [a if isinstance(a, TaskAnswer) else TaskAnswer(**a)
                         for a in values.get("answers", [])]  # fmt: skip
    return ReportContext(**values)


def _all_sections(context: ReportContext) -> list[TaskSection]:
    sections = list(context.sections)
    if context.figures:
        sections.append(TaskSection(task="across tasks", figures=list(context.figures)))
    return sections


def _section_heading(section: TaskSection) -> str:
    return f"Task: {section.task}" if section.task != "across tasks" else "Across tasks"


def _render_markdown(context: ReportContext) -> str:
    lines = [f"# {context.title}", ""]
    if context.answers:
        lines += ["## The answer", ""]
        for answer in context.answers:
            lines += [f"### {answer.task}", ""]
            lines += [f"- {line}" for line in answer.lines] + [""]
            if not answer.table.empty:
                lines += [markdown_table(answer.table), ""]
    if context.verdict_rules:
        lines += [f"**How verdicts are decided.** {context.verdict_rules}", ""]
    if context.cost_rule:
        lines += [f"**How costs are measured.** {context.cost_rule}", ""]
    lines += [f"> {note}\n" for note in context.notes]
    lines += ["## Protocol", "", *_protocol_markdown(context.protocol), ""]
    for section in _all_sections(context):
        lines += [f"## {_section_heading(section)}", ""]
        lines += [f"> {note}\n" for note in section.notes]
        for table_title, table, caption in section.tables:
            lines += [f"### {table_title}", ""]
            if caption:
                lines += [caption, ""]
            lines += [markdown_table(table), ""]
        if section.verdicts:
            lines += ["### Verdicts", "", *[f"- {line}" for line in section.verdicts], ""]
        for entry in section.figures:
            lines += [f"### {entry.title}", "", f"![{entry.title}]({entry.filename})", ""]
            if entry.caption:
                lines += [f"_{entry.caption}_", ""]
    lines += ["## How MAE is computed", "", context.mae_definition, ""]
    lines += ["## Glossary", "", *[f"- **{term}**: {meaning}"
                                    for term, meaning in context.glossary.items()], ""]  # fmt: skip
    return "\n".join(lines)


def _render_html(context: ReportContext) -> str:
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = environment.from_string(HTML_TEMPLATE)
    sections = []
    for section in _all_sections(context):
        sections.append(
            {
                "heading": _section_heading(section),
                "notes": section.notes,
                "tables": [
                    {
                        "title": table_title,
                        "caption": caption,
                        "html": table.to_html(index=False, border=0, na_rep="–", escape=True)
                        if not table.empty else "<p><em>(no rows)</em></p>",
                    }
                    for table_title, table, caption in section.tables
                ],
                "verdicts": section.verdicts,
                "figures": [
                    {
                        "title": entry.title,
                        "caption": entry.caption,
                        "data": _encode(_png(entry.image, context.dpi, entry.title)),
                    }
                    for entry in section.figures
                ],
            }
        )  # fmt: skip
    answers = [
        {"task": answer.task, "lines": answer.lines,
         "html": answer.table.to_html(index=False, border=0, na_rep="–", escape=True)
         if not answer.table.empty else ""}
        for answer in context.answers
    ]  # fmt: skip
    return template.render(
        answers=answers,
        cost_rule=context.cost_rule,
        title=context.title,
        notes=context.notes,
        protocol_html=_protocol_html(context.protocol),
        verdict_rules=context.verdict_rules,
        sections=sections,
        mae_definition=context.mae_definition,
        glossary=list(context.glossary.items()),
    )


def _encode(png: bytes | None) -> str:
    return base64.b64encode(png).decode("ascii") if png else ""


def render_report(context: ReportContext | Mapping[str, Any]) -> tuple[str, str]:
    """Render the study report.

    Args:
        context: a :class:`ReportContext` (from :func:`build_report_context`) or a mapping
            with its fields (sections and figures as dicts or objects).

    Returns:
        ``(markdown, html)``: the Markdown links figures by their ``filename``; the HTML is
        self-contained (inline CSS, figures as ``data:image/png;base64`` images).
    """
    context = _coerce_context(context)
    return _render_markdown(context), _render_html(context)
