"""Write a :class:`~med_unlearning.reporting.context.ReportContext` out: Markdown and HTML.

Neither reads nor writes files: :func:`render_report` returns the two strings, the caller
(a Kedro node) hands them to text datasets. The Markdown refers to figures by the relative
file names the caller gives; the HTML is self-contained (inline CSS, figures embedded as
base64 PNG).
"""

from __future__ import annotations

import base64
import html
import logging
from collections.abc import Mapping
from typing import Any

import jinja2
from matplotlib.figure import Figure

from med_unlearning.reporting.context import FigureEntry, ReportContext, TaskAnswer, TaskSection
from med_unlearning.reporting.figures import figure_to_png
from med_unlearning.reporting.figures.canvas import is_png
from med_unlearning.reporting.tables import html_table, markdown_table
from med_unlearning.reporting.templates import HTML_TEMPLATE

__all__ = ["render_report"]

logger = logging.getLogger(__name__)


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
    if is_png(image):
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
                        "html": html_table(table)
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
         "html": html_table(answer.table)
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
        context: a :class:`ReportContext` (from
            :func:`~med_unlearning.reporting.report.build_report_context`) or a mapping
            with its fields (sections and figures as dicts or objects).

    Returns:
        ``(markdown, html)``: the Markdown links figures by their ``filename``; the HTML is
        self-contained (inline CSS, figures as ``data:image/png;base64`` images).
    """
    context = _coerce_context(context)
    return _render_markdown(context), _render_html(context)
