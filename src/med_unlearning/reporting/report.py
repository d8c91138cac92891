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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jinja2
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from med_unlearning.metrics.comparison import (
    format_value,
    metric_label,
    missing_methods,
    method_display_order,
    set_label,
    study_table,
)
from med_unlearning.params.evaluation import EvaluationParams
from med_unlearning.reporting.figures import figure_to_png
from med_unlearning.reporting.templates import HTML_TEMPLATE

__all__ = [
    "GLOSSARY",
    "MAE_DEFINITION",
    "FigureEntry",
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
    "gap to the oracle": "method mean − oracle mean, per set and metric.",
    "distance to the oracle": (
        "sqrt((R − R*)² + (F − F*)²) with R/F a method's retain/forget metric and R*/F* the "
        "oracle's (bilevel boundary-unlearning study); 0 = indistinguishable from retraining."
    ),
    "membership inference": (
        "a logistic regression on per-item losses telling forget-training items (members) from "
        "unseen items of the same kind; accuracy 0.5 = chance. The target is the oracle's "
        "accuracy, not 0.5."
    ),
    "attack granularity": (
        "the attack's items: whole volumes / subjects, or their 2-D slices (per-slice 1 − SSIM "
        "and NMSE; per axial slice cross-entropy and soft Dice loss over labelled voxels). "
        "Slices give enough items when a set has only a few volumes, but slices of one volume "
        "are correlated and the splits mix them, so the attack partly learns volume identity "
        "and its accuracy is optimistic; compare a method with the oracle scored the same way "
        "(the note gives the volume counts)."
    ),
    "cost": "a method's wall time as a fraction of the oracle's retraining time.",
}


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
        text=[_signed(g, m) for g, m in zip(rows["gap"], rows["metric"], strict=True)],
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
    rows = rows.assign(text=[f"{d:.4g}" if np.isfinite(d) else "n/a"
                             for d in rows["distance_to_oracle"].astype(float)])  # fmt: skip
    columns = list(dict.fromkeys(rows["distance"]))
    wide = rows.pivot(index="method", columns="distance", values="text").reindex(columns=columns)
    return _with_missing_rows(wide.fillna("n/a"), methods, missing)


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
    reference = float(rows.at[oracle, "accuracy_mean"]) if oracle in rows.index else np.nan
    table = pd.DataFrame(
        {
            "attack accuracy": [_mean_std(a, s) for a, s in
                                zip(rows["accuracy_mean"], rows["accuracy_std"], strict=True)],
            "attack AUC": [_mean_std(a, s) for a, s in
                           zip(rows["auc_mean"], rows["auc_std"], strict=True)],
            "|accuracy − oracle's|": [_abs_difference(a, reference)
                                      for a in rows["accuracy_mean"]],
            "members / non-members": _membership_counts(rows, task),
            "splits": rows["n_splits"].astype(int).astype(str),
            "note": rows["note"].fillna("").astype(str),
        },
        index=rows.index,
    )  # fmt: skip
    return _with_missing_rows(table, methods, missing)


def _membership_counts(rows: pd.DataFrame, task: str) -> list[str]:
    """``16 / 16 slices (2 / 2 volumes)`` per slice attack, ``2 / 2`` per volume attack."""
    word = "subjects" if task == "segmentation" else "volumes"
    counts = []
    for _, row in rows.iterrows():
        text = f"{int(row['n_members'])} / {int(row['n_nonmembers'])}"
        if row.get("granularity") == "slice":
            volumes = (row.get("n_member_volumes"), row.get("n_nonmember_volumes"))
            text += " slices"
            if all(value is not None and np.isfinite(float(value)) for value in volumes):
                text += f" ({int(volumes[0])} / {int(volumes[1])} {word})"
        counts.append(text)
    return counts


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
    return rows.loc[:, ["method", "forgot", "kept", "private", "cost"]].reset_index(drop=True)


def verdict_rules(params: EvaluationParams) -> str:
    """One paragraph stating the verdict rules and tolerances in force."""
    thresholds = params.verdicts
    tolerances = ", ".join(
        f"{metric_label(metric)} {value:g}" for metric, value in thresholds.tolerances.items()
    )
    return (
        "forgot = every forget metric is at or below the oracle's (worse or equal, in the "
        "metric's own direction) within its tolerance; \"too much\" when it is worse than the "
        f"oracle's by more than {thresholds.overshoot_factor:g} tolerances. kept = every retain "
        "metric is no worse than the oracle's by more than its tolerance. private = attack "
        f"accuracy within {thresholds.privacy_tolerance:g} of the oracle's attack accuracy. "
        f"cost = cheap when wall time ≤ {100 * thresholds.max_cost_ratio:g}% of retraining. "
        f"Tolerances: {tolerances}; other metrics {100 * thresholds.relative_tolerance:g}% of "
        "the oracle's value."
    )


_ATTACK_FEATURE_LABELS = {"cross_entropy": "cross-entropy", "soft_dice_loss": "soft Dice loss"}


def _attack_feature_label(metric: str) -> str:
    return _ATTACK_FEATURE_LABELS.get(metric, metric_label(metric))


def _metric_definitions(params: EvaluationParams) -> list[str]:
    notes = []
    for task, spec in params.tasks.items():
        pairs = "; ".join(
            f"R = {metric_label(r.metric)} on {set_label(r.set)}, "
            f"F = {metric_label(f.metric)} on {set_label(f.set)}"
            for r, f in zip(spec.retain, spec.forget, strict=True)
        )
        attack = spec.attack
        features = ", ".join(_attack_feature_label(m) for m in attack.feature_metrics())
        items = "2-D slice" if attack.granularity == "slice" else "volume / subject"
        notes.append(
            f"{task}: distance to the oracle uses {pairs}. Membership inference: members = "
            f"{set_label(attack.member_set)}, non-members = {set_label(attack.nonmember_set)}, "
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
) -> ReportContext:
    """Assemble the report from the comparison tables.

    Args:
        tables: the output of :func:`~med_unlearning.metrics.comparison.evaluate_study`
            (``summary``, ``oracle_gaps``, ``distances``, ``relative``, ``costs``,
            ``verdicts``), possibly read back from CSV.
        params: the ``evaluation`` parameters.
        protocol: what was run, shown as the protocol section.
        membership: the membership-inference table
            (:func:`~med_unlearning.metrics.membership.membership_attacks`).
        figures: per task, its figures; the key ``"study"`` holds study-wide figures.
        expected_methods: per task, the methods that should have run.
        title: the report title.
        notes: notes shown under the title.
        mae_definition: the MAE definition in force (default: :data:`MAE_DEFINITION`).

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
                "Summary (mean ± std over items)",
                study_table(
                    summary,
                    task,
                    original=params.original_method,
                    oracle=params.oracle_method,
                    method_order=params.method_order,
                    relative=tables.get("relative") if task == "segmentation" else None,
                    expected_methods=missing,
                ),
                "Rows: original, oracle, then each method. Relative columns compare with the "
                "original model." if task == "segmentation" else
                "Rows: original, oracle, then each method (Erase-to-Enhance Table 1 layout).",
            )
        )  # fmt: skip
        optional = [
            ("Gap to the oracle (method − oracle)",
             _gap_display(tables.get("oracle_gaps"), task, methods, missing),
             "Positive = higher than the oracle. On forget sets the target is 0: far below "
             "the oracle means over-forgetting, which is detectable too."),
            ("Distance to the oracle",
             _distance_display(tables.get("distances"), task, methods, missing),
             "sqrt((R − R*)² + (F − F*)²); column names give R and F as metric@set."),
            ("Membership inference",
             _membership_display(membership, task, methods, missing, params.oracle_method),
             "A good unlearner's attack accuracy lands where the oracle's does. With slices as "
             "items, slices of one volume are correlated and the splits mix them: the attack "
             "partly learns volume identity, so read accuracies relative to the oracle's."),
            ("Cost",
             _cost_display(tables.get("costs"), task, methods, missing),
             "Wall time of each run and its ratio to retraining the oracle."),
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
    return ReportContext(
        title=title,
        protocol=protocol,
        sections=sections,
        figures=list(figures.get("study", ())),
        verdict_rules=verdict_rules(params),
        mae_definition=mae_definition,
        notes=[*notes, *_metric_definitions(params)],
        dpi=params.figures.dpi,
    )


# ---------------------------------------------------------------------------------------------
# Rendering


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
    lines += [f"> {note}\n" for note in context.notes]
    lines += ["## Protocol", "", *_protocol_markdown(context.protocol), ""]
    if context.verdict_rules:
        lines += [f"**How verdicts are decided.** {context.verdict_rules}", ""]
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
    return template.render(
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
