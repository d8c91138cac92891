"""Verification of erasure requests: each run's record, with the study's evidence added.

The unlearning pipeline writes one erasure-request record per run (what was asked, what was
forgotten, the parent model); after the evaluation, :func:`verify_erasure_requests` adds to a
copy of each the verdicts, the run's metrics next to the oracle's and the original's, and
the membership attack's figures, as JSON-friendly values (:func:`~med_unlearning.jsonable.
jsonable`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from med_unlearning.jsonable import jsonable
from med_unlearning.metrics.methods import method_name

__all__ = ["verify_erasure_requests"]

logger = logging.getLogger(__name__)


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
                "mean": jsonable(row["mean"]), "std": jsonable(row["std"]), "n": jsonable(row["n"]),
                "ci_low": jsonable(row.get("ci_low")), "ci_high": jsonable(row.get("ci_high")),
            }
            for row in task_summary[task_summary["method"] == method].to_dict("records")
        }
        references = {
            reference: {
                f"{row['set']}/{row['metric']}": jsonable(row["mean"])
                for row in task_summary[task_summary["method"] == reference].to_dict("records")
            }
            for reference in ("original", "oracle")
        }
        attack = membership[(membership["task"] == task) & (membership["method"] == method)]
        record["verification"] = {
            "verdict": {k: jsonable(v) for k, v in verdict.iloc[0].to_dict().items()}
            if not verdict.empty else None,
            "metrics": metrics,
            "references": references,
            "membership_inference": {k: jsonable(v) for k, v in attack.iloc[0].to_dict().items()}
            if not attack.empty else None,
        }
        verified[run] = record
    logger.info("evaluation: verified %d erasure-request records of %s", len(verified), task)
    return verified
