"""The answer the report leads with, per task: the recommendation and whether to trust it.

Plain sentences built only from the comparison tables: the recommended method (chosen on
validation data) with its test verdict and evidence table, whether the membership attack
passed its null check (:func:`null_sentence`) and can detect members at all
(:func:`power_sentence`), and how many models matched the oracle.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from med_unlearning.metrics.membership import NULL_ROLE, null_checks
from med_unlearning.metrics.statistics import format_interval
from med_unlearning.metrics.verdicts import settings_selected_on, tolerance_for
from med_unlearning.params.evaluation import EvaluationParams
from med_unlearning.reporting.context import TaskAnswer
from med_unlearning.reporting.display import auc_text, gap_text
from med_unlearning.reporting.formatting import format_value, metric_label, set_label

__all__ = ["null_sentence", "power_sentence", "task_answer"]


def _row_of(table: pd.DataFrame | None, task: str, method: str) -> pd.Series | None:
    if table is None or table.empty or "method" not in table.columns:
        return None
    rows = table.loc[(table["task"] == task) & (table["method"] == method)]
    return None if rows.empty else rows.iloc[0]


def null_sentence(membership: pd.DataFrame | None, task: str) -> str:
    """Whether the attack of ``task`` passed its null check (models that never saw the
    members sit at chance), with their AUCs, or why it could not be run."""
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
    parts = [f"{r['method']} AUC {auc_text(r)} (uncalibrated {auc_text(r, 'uncalibrated_')})"
             for _, r in rows.iterrows()]  # fmt: skip
    verdict = ("passes: every model that never saw the members sits at chance"
               if status == "valid" else
               "fails: a model that never saw the members is 'detected', so this task's privacy "
               "verdicts read uninformative")  # fmt: skip
    return (f"Membership attack null check {verdict} — {'; '.join(parts)}; calibration: "
            f"{calibration}.")  # fmt: skip


def power_sentence(membership: pd.DataFrame | None, task: str, original: str) -> str | None:
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
        return (f"Attack power: the {original}'s members are detected (AUC {auc_text(row)}), so "
                "the attack can show what an unlearned model still remembers.")  # fmt: skip
    return (f"Attack power: even the {original}'s members are not detected (AUC "
            f"{auc_text(row)}: the interval contains chance), so on this request the attack "
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
                "gap to the oracle [95 % CI]": gap_text(row),
                "tolerance": f"±{format_value(tol, ref.metric)}",
                "items": str(int(row["n_paired"])) if "n_paired" in row else "n/a",
            })  # fmt: skip
    if verdict is not None:
        rows.append({"criterion": "verdicts (test)", method: "", "oracle": "",
                     "gap to the oracle [95 % CI]": f"forgot: {verdict['forgot']}; kept: "
                     f"{verdict['kept']}; private: {verdict['private']}; cost: "
                     f"{verdict['cost']}", "tolerance": "", "items": ""})  # fmt: skip
    return pd.DataFrame(rows)


def task_answer(tables: Mapping[str, pd.DataFrame], membership: pd.DataFrame | None,
                params: EvaluationParams, task: str) -> TaskAnswer:  # fmt: skip
    """The answer of ``task``: the recommendation (or why there is none) with its test
    verdict and evidence, the attack's null check and power, and the test-verdict count."""
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
    answer.lines.append(null_sentence(membership, task))
    power = power_sentence(membership, task, params.original_method)
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
