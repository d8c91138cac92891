"""MLflow tracking (med_unlearning.tracking): helpers, the off switch, and a tracked run."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from med_unlearning.tracking import (
    ENV_SWITCH,
    TrackingOptions,
    flatten_params,
    history_metrics,
    switch_from_env,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("", None), ("1", True), ("On", True), ("0", False), ("false", False)],
)
def test_switch_from_env(value, expected) -> None:
    assert switch_from_env(value) is expected


def test_switch_from_env_rejects_other_words() -> None:
    with pytest.raises(ValueError, match=ENV_SWITCH):
        switch_from_env("maybe")


def test_flatten_params_dotted_keys_and_plain_values() -> None:
    flat = flatten_params(
        {"epochs": 2, "lr": 1e-3, "optimizer": {"name": "adam", "betas": [0.9, 0.99]}},
        prefix="training.",
    )
    assert flat == {
        "training.epochs": "2",
        "training.lr": "0.001",
        "training.optimizer.name": "adam",
        "training.optimizer.betas": "[0.9, 0.99]",
    }
    assert flatten_params({}) == {}


def test_history_metrics_steps_by_epoch_and_skips_non_finite() -> None:
    history = pd.DataFrame(
        {"epoch": [1, 2], "train_loss": [0.5, float("nan")], "note": ["a", "b"]}
    )
    assert list(history_metrics(history)) == [("train_loss", 0.5, 1)]


def test_options_reject_unknown_keys() -> None:
    with pytest.raises(ValueError, match="enabeld"):
        TrackingOptions.model_validate({"enabeld": True})


def test_saved_path_finds_the_file_a_dataset_just_wrote(tmp_path) -> None:
    """The checkpoint artifact (log_checkpoints) is the saved version's file, not the folder."""
    import torch
    from kedro.io import Version
    from kedro_datasets.pandas import CSVDataset

    from med_unlearning.datasets import ModelCheckpointDataset
    from med_unlearning.io.checkpoint import CheckpointMetadata, ModelCheckpoint
    from med_unlearning.tracking import _saved_path

    dataset = ModelCheckpointDataset(
        filepath=str(tmp_path / "model.safetensors"), version=Version(None, None)
    )
    assert _saved_path(dataset) is None  # nothing written yet
    metadata = CheckpointMetadata(
        task="recon", architecture="unet2d", architecture_params={}, data_manifest=["a"]
    )
    dataset.save(ModelCheckpoint({"w": torch.zeros(2)}, metadata))
    path = _saved_path(dataset)
    assert path.is_file() and path.name == "model.safetensors"
    assert path.parent.name == dataset.resolve_save_version()

    table = CSVDataset(filepath=str(tmp_path / "summary.csv"))
    table.save(pd.DataFrame({"a": [1]}))
    assert _saved_path(table) == tmp_path / "summary.csv"
    remote = CSVDataset(filepath="memory://h14m/summary.csv")
    remote.save(pd.DataFrame({"a": [1]}))
    assert _saved_path(remote) is None  # only local files are logged


def test_conf_test_turns_tracking_off(project_path: Path) -> None:
    from kedro.config import OmegaConfigLoader

    loader = OmegaConfigLoader(
        str(project_path / "conf"),
        base_env="base",
        default_run_env="test",
        config_patterns={"mlflow": ["mlflow*"]},
        merge_strategy={"mlflow": "soft"},
    )
    conf = loader["mlflow"]
    assert conf["med_unlearning"]["enabled"] is False
    assert conf["server"]["mlflow_tracking_uri"].endswith("/mlruns")


@pytest.mark.e2e
@pytest.mark.parametrize("switch", ["", "0"])
def test_tracking_off_writes_nothing(kedro_session, tmp_path, monkeypatch, switch) -> None:
    """conf/test's default, and the environment switch, leave no MLflow store behind."""
    monkeypatch.setenv(ENV_SWITCH, switch)
    before = set(tmp_path.iterdir())
    with kedro_session() as session:
        session.run(pipeline_names=["sample_data"])
    written = {p.name for p in set(tmp_path.rglob("*"))}
    assert "mlruns" not in written and "meta.yaml" not in written
    assert before <= set(tmp_path.iterdir())


@pytest.mark.e2e
def test_tracking_on_starts_one_run_per_kedro_run(kedro_session, tmp_path, monkeypatch) -> None:
    """The twin of the test above: the same run with tracking on writes the store."""
    from mlflow import MlflowClient

    monkeypatch.setenv(ENV_SWITCH, "1")
    with kedro_session() as session:
        session.run(pipeline_names=["sample_data"])
    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    experiment = client.get_experiment_by_name("med_unlearning")
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_name for r in runs] == ["sample_data"]
    assert runs[0].info.status == "FINISHED"
    assert runs[0].data.tags["env"] == "test"


# ---- the tracked study (conftest's study_run runs with tracking on) ------------------------


@pytest.fixture(scope="module")
def tracked(study_run: Path):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=(study_run / "mlruns").as_uri())
    experiment = client.get_experiment_by_name("med_unlearning")
    assert experiment is not None, "the tracked study wrote no MLflow experiment"
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    return client, {run.info.run_name: run for run in runs}


@pytest.mark.study
def test_study_run_has_one_parent_and_nested_runs_per_model(tracked) -> None:
    _, runs = tracked
    parents = [r for r in runs.values() if "mlflow.parentRunId" not in r.data.tags]
    assert [r.info.run_name for r in parents] == ["__default__"]
    parent_id = parents[0].info.run_id
    for name in (
        "recon.original",
        "recon.oracle",
        "recon.reference",
        "segmentation.original",
        "segmentation.oracle",
        "unlearning.recon.nl_ft",
        "unlearning.recon.nl_ft_r50",
        "unlearning.segmentation.noisy_label",
        "evaluation",
    ):
        assert name in runs, f"no nested run {name}"
        assert runs[name].data.tags["mlflow.parentRunId"] == parent_id
        assert runs[name].info.status == "FINISHED"


@pytest.mark.study
def test_training_run_logs_its_blocks_history_and_lineage(tracked) -> None:
    client, runs = tracked
    run = runs["recon.reference"]
    assert run.data.tags["kind"] == "training"
    assert run.data.tags["task"] == "recon"
    assert run.data.tags["seed"] == "43"  # the reference trains with seed + 1
    assert run.data.params["architecture"]
    assert "training.epochs" in run.data.params
    assert not any(key.startswith("strategies") for key in run.data.params)
    history = client.get_metric_history(run.info.run_id, "train_loss")
    assert len(history) >= 1 and history[0].step >= 0
    lineage = json.loads(
        Path(client.download_artifacts(run.info.run_id, "lineage.json")).read_text()
    )
    assert lineage["task"] == "recon" and lineage["seed"] == 43


@pytest.mark.study
def test_unlearning_run_logs_its_own_strategy_block_and_erasure_record(tracked) -> None:
    client, runs = tracked
    run = runs["unlearning.recon.nl_ft_r1"]
    tags, params = run.data.tags, run.data.params
    assert tags["kind"] == "unlearning" and tags["strategy"] == "nl_ft"
    assert float(tags["retain_fraction"]) == pytest.approx(0.01)
    assert params["strategy"] == "nl_ft" and params["retain_fraction"] == "0.01"
    # Only this strategy's settings, not the unlearning file's other strategies or sections.
    assert not any(key.startswith(("ga_l1", "strategies", "recon.", "runtime")) for key in params)
    assert {"wall_time_s", "cost.fraction_of_retraining", "train_loss"} <= set(run.data.metrics)
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"lineage.json", "erasure_request.json"} <= names
    assert not any(name.endswith(".safetensors") for name in names)  # log_checkpoints off
    record = json.loads(
        Path(client.download_artifacts(run.info.run_id, "erasure_request.json")).read_text()
    )
    assert record["run"] == "nl_ft_r1"


@pytest.mark.study
def test_alias_runs_name_the_run_they_repeat(tracked) -> None:
    _, runs = tracked
    for name, run in runs.items():
        if "alias_of" in run.data.tags:
            task = run.data.tags["task"]
            assert f"unlearning.{task}.{run.data.tags['alias_of']}" in runs, name


@pytest.mark.study
def test_evaluation_run_holds_tables_figures_and_report(tracked) -> None:
    client, runs = tracked
    run_id = runs["evaluation"].info.run_id
    top = {a.path for a in client.list_artifacts(run_id, "evaluation")}
    assert {"evaluation/summary.csv", "evaluation/verdicts.csv"} <= top
    assert "evaluation/study_report.html" in top
    figures = client.list_artifacts(run_id, "evaluation/figures")
    assert any(a.path.endswith(".png") for a in figures)
