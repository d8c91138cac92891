"""The display tables of a task's report section, one function per comparison table.

Each turns a comparison table (oracle gaps, distances, membership attack and its null
check, costs, verdicts, generalisation gaps, per-label Dice changes) into strings as the
report prints them: methods as rows in display order, intervals as ``mean [low, high]``,
methods that did not run reading ``missing``. An empty result means "no results for this
task" (the section then says so in a note).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from med_unlearning.metrics.membership import null_checks
from med_unlearning.metrics.statistics import format_interval
from med_unlearning.reporting.formatting import format_ci, metric_label, set_label
from med_unlearning.reporting.tables import with_missing_rows

__all__ = [
    "auc_text",
    "cost_display",
    "distance_display",
    "gap_display",
    "gap_text",
    "generalisation_gap_display",
    "label_change_display",
    "membership_display",
    "null_display",
    "verdict_display",
]


def gap_display(
    gaps: pd.DataFrame | None, task: str, methods: Sequence[str], missing: Sequence[str]
) -> pd.DataFrame:
    """Paired gap to the oracle per method (rows) and set × metric (columns), ``gap [CI]``;
    only criteria the oracle has a result for."""
    if gaps is None or gaps.empty:
        return pd.DataFrame()
    rows = gaps.loc[(gaps["task"] == task) & np.isfinite(gaps["oracle_mean"].astype(float))]
    if rows.empty:
        return pd.DataFrame()
    rows = rows.assign(
        column=[f"{set_label(s)} {metric_label(m)}" for s, m in zip(rows["set"], rows["metric"],
                                                                      strict=True)],
        text=[gap_text(row) for row in rows.itertuples(index=False)],
    )  # fmt: skip
    rows = rows.assign(
        set_rank=[_rank(s, _SET_ORDER) for s in rows["set"]],
        metric_rank=[_rank(m, _METRIC_ORDER) for m in rows["metric"]],
    ).sort_values(["set_rank", "set", "metric_rank", "metric"])
    columns = list(dict.fromkeys(rows["column"]))
    wide = rows.pivot(index="method", columns="column", values="text").reindex(columns=columns)
    return with_missing_rows(wide.fillna("n/a"), methods, missing)


_SET_ORDER = ("retain_test", "forget_test", "forget_train", "retain", "forget")
_METRIC_ORDER = ("psnr", "ssim", "nmse", "dice_mean", "mean_dice", "mae")


def _rank(value: str, order: Sequence[str]) -> int:
    return order.index(value) if value in order else len(order)


def gap_text(row: Any) -> str:
    """``gap [low, high]`` of an oracle-gap row, signed, with its metric's precision."""
    low = getattr(row, "gap_ci_low", np.nan)
    high = getattr(row, "gap_ci_high", np.nan)
    return format_ci(float(row.gap), float(low), float(high), str(row.metric), signed=True)


def distance_display(
    distances: pd.DataFrame | None, task: str, methods: Sequence[str], missing: Sequence[str]
) -> pd.DataFrame:
    """Distance to the oracle per method (rows) and pair of criteria (columns, test or
    validation), ``distance [CI]``."""
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
    return with_missing_rows(wide.fillna("n/a"), methods, missing)


def auc_text(row: Mapping[str, Any], prefix: str = "") -> str:
    """``AUC [low, high]`` of a membership row (``prefix`` ``uncalibrated_`` for the
    diagnostic attack)."""
    return format_interval(float(row[f"{prefix}auc"]), float(row[f"{prefix}auc_ci_low"]),
                           float(row[f"{prefix}auc_ci_high"]), 2)  # fmt: skip


def membership_display(
    membership: pd.DataFrame | None,
    task: str,
    methods: Sequence[str],
    missing: Sequence[str],
    oracle: str,
) -> pd.DataFrame:
    """The attack's figures per method: role, calibrated AUC, TPR at the low FPR, AUC minus
    the oracle's, the privacy verdict, the uncalibrated AUC, item counts and the note."""
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
            "AUC [CI] (calibrated)": auc_text(row),
            f"TPR @ FPR {fpr:g}": format_interval(float(row["tpr_at_fpr"]),
                                                  float(row["tpr_ci_low"]),
                                                  float(row["tpr_ci_high"]), 2),
            f"AUC − {oracle}'s": format_interval(float(row["auc_minus_oracle"]),
                                                 float(row["auc_minus_oracle_ci_low"]),
                                                 float(row["auc_minus_oracle_ci_high"]), 2,
                                                 signed=True),
            "private": str(row["private"]),
            "AUC uncalibrated (diagnostic)": auc_text(row, "uncalibrated_"),
            "members / non-members": _membership_counts(row, task),
            "note": "" if not isinstance(row["note"], str) else row["note"],
        }  # fmt: skip
    table = pd.DataFrame.from_dict(records, orient="index")
    return with_missing_rows(table, methods, missing)


def null_display(membership: pd.DataFrame | None, task: str) -> pd.DataFrame:
    """The attack on the models that never saw the members, and whether each sits at chance."""
    nulls = null_checks(membership) if membership is not None else pd.DataFrame()
    if nulls.empty:
        return pd.DataFrame()
    rows = nulls.loc[nulls["task"] == task]
    return pd.DataFrame(
        {
            "null model": rows["method"],
            "AUC [CI] (calibrated)": [auc_text(r) for _, r in rows.iterrows()],
            "at chance (CI contains 0.5)": [
                "n/a" if not np.isfinite(float(auc)) else "yes" if at else "no"
                for auc, at in zip(rows["auc"], rows["at_chance"], strict=True)
            ],
            "AUC uncalibrated": [auc_text(r, "uncalibrated_") for _, r in rows.iterrows()],
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


def cost_display(
    costs: pd.DataFrame | None, task: str, methods: Sequence[str], missing: Sequence[str]
) -> pd.DataFrame:
    """Wall time and its ratio to the oracle's retraining time, per method."""
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
    return with_missing_rows(table, methods, missing)


def verdict_display(verdicts: pd.DataFrame, task: str) -> pd.DataFrame:
    """The verdict columns of ``task`` at a glance (no detail texts)."""
    rows = verdicts.loc[verdicts["task"] == task]
    columns = [c for c in ("method", "forgot", "kept", "private", "cost", "val_forgot",
                           "val_kept", "selected_on") if c in rows.columns]  # fmt: skip
    table = rows.loc[:, columns].reset_index(drop=True)
    return table.rename(columns={"val_forgot": "forgot (validation)",
                                 "val_kept": "kept (validation)",
                                 "selected_on": "settings selected on"})  # fmt: skip


def _interval_cell(estimate: float, low: float, high: float) -> str:
    if math.isnan(estimate):
        return "n/a"
    if math.isnan(low):
        return f"{estimate:+.3f} (no CI)"
    return f"{estimate:+.3f} [{low:+.3f}, {high:+.3f}]"


def generalisation_gap_display(gaps: pd.DataFrame, task: str) -> pd.DataFrame:
    """The generalisation gaps of ``task`` (set a vs set b Dice, gap [CI]), one row each."""
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


def label_change_display(labels: pd.DataFrame, task: str) -> pd.DataFrame:
    """Per-label Dice change on the forget subjects: what there is to forget first, then
    each method's change with its interval."""
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
