"""The ``tuning`` pipeline under conf/test: searches on validation data, a reusable selection."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from med_unlearning.pipelines.tuning import create_pipeline
from med_unlearning.pipelines.tuning.nodes import _selection_view
from med_unlearning.tuning.selection import apply_selection

pytestmark = pytest.mark.study


def test_every_node_is_named_and_tagged_and_reads_no_test_set_dataset():
    pipeline = create_pipeline()
    assert {node.name for node in pipeline.nodes} == {
        "tune_recon", "tune_segmentation", "combine_tuning_selections",
    }  # fmt: skip
    assert all("tuning" in node.tags for node in pipeline.nodes)
    assert "tuning.selected" in pipeline.all_outputs()


def test_the_selection_view_keeps_only_validation_and_forget_training_roles():
    splits = pd.DataFrame(
        {"volume_id": list("abcdef"),
         "role": ["retain_train", "forget_train", "retain_val", "retain_test", "forget_test",
                  "forget_val"]}
    )  # fmt: skip
    view = _selection_view(splits, {"retain_val": ("retain_val",), "forget_val": ("forget_val",),
                                    "forget_train": ("forget_train",)})  # fmt: skip
    assert view["role"].tolist() == [
        "unused", "forget_train", "retain_val", "unused", "unused", "forget_val",
    ]


def _run(data_root: Path, pipeline: str, namespaces: list[str] | None = None, **params) -> None:
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project
    from tests.conftest import PROJECT_PATH

    bootstrap_project(PROJECT_PATH)
    runtime = {"data_root": str(data_root), **params}
    with KedroSession.create(project_path=PROJECT_PATH, env="test", runtime_params=runtime) as s:
        s.run(pipeline_names=[pipeline], namespaces=namespaces)


#: The erasure record of unlearning.recon.nl_ft, versioned like its checkpoint.
RECORD = "08_reporting/erasure_requests/recon/nl_ft.json"


def _latest(folder: Path) -> Path:
    versions = sorted(folder.iterdir())
    assert versions, f"no version under {folder}"
    return next(versions[-1].iterdir())


def test_tuning_writes_every_trial_and_a_reproducible_selection(study_run: Path):
    _run(study_run, "tuning")
    trials = pd.read_csv(_latest(study_run / "08_reporting/tuning/recon_trials.csv"))
    assert set(trials["strategy"]) == {"nl_ft"}
    assert len(trials) == 2
    assert {"param_epochs", "param_noise_scale", "objective", "cost_s"} <= set(trials.columns)
    assert trials["objective"].notna().all()
    first = json.loads(_latest(study_run / "05_model_input/tuning/selected.json").read_text())
    entry = first["tasks"]["recon"]["nl_ft"]
    assert set(entry["params"]) == {"epochs", "noise_scale"}
    assert entry["objective_value"] == pytest.approx(trials["objective"].min())
    assert "retain_val" in entry["selected_on"] and "test" not in entry["selected_on"]
    # same seed and conf -> the same selection (deterministic trials, seeded TPE)
    _run(study_run, "tuning")
    versions = sorted((study_run / "05_model_input/tuning/selected.json").iterdir())
    second = json.loads(next(versions[-1].iterdir()).read_text())
    assert len(versions) == 2
    assert second["tasks"] == first["tasks"]
    applied = apply_selection({"recon": {"strategies": {"nl_ft": {"lr": 1.0}}}}, first)
    assert applied["recon"]["strategies"]["nl_ft"]["epochs"] == entry["params"]["epochs"]


def test_unlearning_applies_the_selection_and_records_what_selected_it(study_run: Path):
    selected = study_run / "05_model_input/tuning/selected.json"
    if not selected.exists():
        _run(study_run, "tuning")
    selection = json.loads(_latest(selected).read_text())
    chosen = selection["tasks"]["recon"]["nl_ft"]["params"]
    _run(study_run, "unlearning", namespaces=["unlearning.recon.nl_ft"])
    record = json.loads(_latest(study_run / RECORD).read_text())
    assert record["settings_source"].startswith("tuning run")
    assert "retain_val" in record["settings_source"]
    assert {key: record["params"][key] for key in chosen} == chosen
    # with use_selected off the conf values run, and the record says they were not tuned
    _run(study_run, "unlearning", namespaces=["unlearning.recon.nl_ft"],
         tuning={"use_selected": False})  # fmt: skip
    record = json.loads(_latest(study_run / RECORD).read_text())
    assert not record["settings_source"].startswith("tuning run")
