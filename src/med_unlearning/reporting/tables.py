"""Tables as the report shows them: the studies' summary layout, Markdown and HTML.

:func:`study_table` lays a summary out as the studies do (methods as rows, ``PSNR / SSIM``
per set for reconstruction, Dice and MAE per set for segmentation, cells ``mean [95 % CI]``);
:func:`with_missing_rows` puts any per-method display table in display order with the methods
that did not run; :func:`markdown_table` and :func:`html_table` write a display table out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from med_unlearning.metrics.methods import method_display_order
from med_unlearning.metrics.results_table import (
    summary_intervals,
    summary_means,
    validate_summary,
)
from med_unlearning.reporting.formatting import (
    MISSING,
    NOT_AVAILABLE,
    format_ci,
    format_mean_std,
    metric_label,
    set_label,
)

__all__ = ["html_table", "markdown_table", "study_table", "with_missing_rows"]


def _default_layout(task: str, summary: pd.DataFrame) -> list[tuple[str, str, tuple[str, ...]]]:
    """Column layout ``(header, set, metrics)`` of the study table of ``task``."""
    present = summary.loc[summary["task"] == task]
    sets = list(dict.fromkeys(present["set"]))
    metrics_in = {s: set(present.loc[present["set"] == s, "metric"]) for s in sets}
    if task == "recon":
        order = ["retain_test", "forget_test", "forget_train"]
        sets = [s for s in order if s in sets] + [s for s in sets if s not in order]
        return [
            (f"{set_label(s)} PSNR / SSIM", s, ("psnr", "ssim"))
            for s in sets
            if {"psnr", "ssim"} & metrics_in[s]
        ]
    if task == "segmentation":
        order = ["retain", "forget"]
        sets = [s for s in order if s in sets] + [s for s in sets if s not in order]
        layout = []
        for metric in ("dice_mean", "mean_dice", "mae"):
            layout += [
                (f"{set_label(s)} {metric_label(metric)}", s, (metric,))
                for s in sets
                if metric in metrics_in[s]
            ]
        return layout
    return [
        (f"{set_label(s)} {metric_label(m)}", s, (m,))
        for s in sets
        for m in sorted(metrics_in[s])
    ]


def study_table(
    summary: pd.DataFrame,
    task: str,
    *,
    original: str = "original",
    oracle: str = "oracle",
    method_order: Sequence[str] = (),
    relative: pd.DataFrame | None = None,
    expected_methods: Sequence[str] = (),
) -> pd.DataFrame:
    """The summary of one task in the studies' table layout, as display strings.

    Rows are methods (original, oracle, strategies; see
    :func:`~med_unlearning.metrics.methods.order_methods`); recon columns are ``PSNR / SSIM``
    per set as in Erase-to-Enhance Table 1 (retain test (BTA), forget test (KTA), forget
    train (UA)), segmentation columns retain/forget Dice and MAE; cells read
    ``mean [95 % CI]`` (bootstrap over items; ``mean ± std`` when the summary has no
    interval columns). With ``relative`` (from
    :func:`~med_unlearning.metrics.oracle.relative_to_original`) two
    more columns give the forget metric's decrease and the share of the retain metric kept,
    both against the original. Methods in ``expected_methods`` without results get a row
    whose cells read ``missing``.

    Returns:
        A DataFrame of strings with a ``method`` column first.
    """
    summary = validate_summary(summary)
    task_summary = summary.loc[summary["task"] == task]
    values = summary_means(task_summary)
    intervals = summary_intervals(task_summary) if "ci_low" in task_summary.columns else None
    methods = method_display_order(
        summary, task, original=original, oracle=oracle, method_order=method_order,
        extra=expected_methods,
    )
    present = set(task_summary["method"])
    layout = _default_layout(task, summary)
    relative_rows = {}
    if relative is not None and not relative.empty:
        relative_rows = {
            str(row.method): row for row in relative.loc[relative["task"] == task].itertuples()
        }
    rows = []
    for method in methods:
        row: dict[str, str] = {"method": method}
        for header, set_name, metrics in layout:
            if method not in present:
                row[header] = MISSING
                continue
            cells = []
            for metric in metrics:
                key = (task, method, set_name, metric)
                mean, std, _ = values.get(key, (np.nan, np.nan, True))
                if intervals is None:
                    cells.append(format_mean_std(mean, std, metric))
                else:
                    low, high = intervals.get(key, (np.nan, np.nan))
                    cells.append(format_ci(mean, low, high, metric))
            row[header] = " / ".join(cells)
        if relative_rows:
            found = relative_rows.get(method)
            decrease = _percent(found.forget_relative_decrease) if found is not None else None
            kept = _percent(found.retain_kept) if found is not None else None
            missing_text = MISSING if method not in present else NOT_AVAILABLE
            row["forget decrease vs original"] = decrease or missing_text
            row["retain kept vs original"] = kept or missing_text
        rows.append(row)
    return pd.DataFrame(rows)


def _percent(value: float) -> str | None:
    return f"{100 * value:.1f}%" if value is not None and np.isfinite(value) else None


def with_missing_rows(
    table: pd.DataFrame, methods: Sequence[str], missing: Sequence[str]
) -> pd.DataFrame:
    """``table`` (indexed by method) reordered to ``methods``, missing ones reading ``missing``."""
    order = [m for m in methods if m in table.index or m in missing]
    table = table.reindex([*order, *[m for m in table.index if m not in order]])
    for method in missing:
        if method in table.index:
            table.loc[method] = "missing"
    return table.reset_index(names="method")


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


def html_table(table: pd.DataFrame) -> str:
    """An HTML table (no index, no border; NaN as ``–``; cell text escaped)."""
    return table.to_html(index=False, border=0, na_rep="–", escape=True)
