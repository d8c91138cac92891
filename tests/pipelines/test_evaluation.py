"""The evaluation pipeline, end to end on the tiny study (conf/test)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from med_unlearning.pipelines.evaluation.pipeline import TASKS, evaluated_models

pytestmark = [pytest.mark.e2e, pytest.mark.study]


def _aliases(study_run: Path, task: str) -> set[str]:
    """Retain-sweep runs merged into a smaller fraction's (cost table's ``merged``)."""
    costs = pd.read_csv(study_run / f"07_model_output/evaluation/{task}_costs.csv")
    return {
        f"{method.split('@')[0]}@{variant}"
        for method, label in zip(costs["method"], costs["merged"].astype("string").fillna(""), strict=True)
        for variant in str(label).split(" = ")[1:]
    }


def test_every_model_is_scored_on_every_set(study_run: Path) -> None:
    results = pd.read_csv(study_run / "08_reporting/evaluation/results.csv")
    for task in TASKS:
        scored = set(results.loc[results["task"] == task, "method"])
        aliases = _aliases(study_run, task)
        expected = set(evaluated_models(task)) - aliases
        assert expected == scored - {"zero_filled"}, expected ^ (scored - {"zero_filled"})
        assert {"reference", "nl_ft@seed1", "noisy_label@seed2"} & expected
    assert _aliases(study_run, "recon"), "conf/test's 2 retain volumes: r1 = r5 = ..."
    recon_sets = set(results.loc[results["task"] == "recon", "set"])
    assert {"retain_test", "forget_test", "forget_train", "retain_val", "forget_val"} <= recon_sets
    segmentation_sets = set(results.loc[results["task"] == "segmentation", "set"])
    assert {"retain", "forget", "test", "val"} <= segmentation_sets
    slices = pd.read_csv(study_run / "07_model_output/evaluation/recon_slices.csv")
    assert {"retain_val", "forget_val"} <= set(slices["set"])
    assert results["value"].notna().all()


def test_summary_tables_and_verdicts_cover_every_method(study_run: Path) -> None:
    verdicts = pd.read_csv(study_run / "08_reporting/evaluation/verdicts.csv")
    for task in TASKS:
        methods = set(verdicts.loc[verdicts["task"] == task, "method"])
        runs = set(evaluated_models(task)) - {"original", "oracle"} - _aliases(study_run, task)
        assert runs <= methods
    costs = pd.read_csv(study_run / "08_reporting/evaluation/costs.csv")
    assert (costs["wall_time_s"] > 0).all()  # alias runs (cost 0) are left out


def test_report_renders_with_every_method_and_embedded_figures(study_run: Path) -> None:
    html = (study_run / "08_reporting/study_report.html").read_text()
    markdown = (study_run / "08_reporting/study_report.md").read_text()
    assert "data:image/png;base64" in html
    for task in TASKS:
        for method in set(evaluated_models(task)) - _aliases(study_run, task):
            assert method in markdown, method
    assert markdown.index("## The answer") < markdown.index("## Protocol")
    assert "How costs are measured" in markdown
    null = pd.read_csv(study_run / "08_reporting/evaluation/membership_null.csv")
    assert {"oracle"} <= set(null["method"]) and "at_chance" in null.columns
    recommendations = pd.read_csv(study_run / "08_reporting/evaluation/recommendations.csv")
    assert set(recommendations["task"]) == set(TASKS)
    figures = sorted(path.name for path in (study_run / "08_reporting/figures").glob("*.png"))
    assert "tradeoff.png" in figures and "recon_examples.png" in figures


def test_erasure_records_gain_verification_without_touching_the_originals(
    study_run: Path,
) -> None:
    records = study_run / "08_reporting/erasure_requests/recon"
    original = max(records.glob("nl_ft.json/*/nl_ft.json"))  # versioned like the checkpoint
    verified = study_run / "08_reporting/erasure_requests_verified/recon/nl_ft.json"
    record = json.loads(original.read_text())
    checked = json.loads(verified.read_text())
    assert record.get("verification") is None  # a placeholder the evaluation never fills in place
    assert checked["verification"]["verdict"]["method"] == "nl_ft"
    assert checked["forget_ids"] == record["forget_ids"]
