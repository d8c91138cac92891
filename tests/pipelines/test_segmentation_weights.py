"""MedicalNet weights through the catalog: ``segmentation.medicalnet_weights`` is set by the
``medicalnet_weights`` globals key or ``--params medicalnet_weights=...`` and every training
node starts its encoder from it."""

from __future__ import annotations

import shutil
from pathlib import Path

import click
import pytest
import torch
import yaml
from kedro.framework.cli.utils import _split_params
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from med_unlearning.datasets import OptionalTorchWeightsDataset
from med_unlearning.models.medicalnet import WeightsMismatchError, weights_fingerprint
from med_unlearning.params.segmentation import SegmentationParams
from med_unlearning.pipelines.segmentation.nodes import MEDICALNET_WEIGHTS_SOURCE
from med_unlearning.pipelines.segmentation.pipeline import MEDICALNET_WEIGHTS, MODELS
from med_unlearning.pipelines.segmentation.pipeline import create_pipeline as segmentation
from med_unlearning.tasks.segmentation import SegmentationTask


def _cli_params(text: str) -> dict:
    """``kedro run --params <text>`` as Kedro's CLI parses it."""
    command = click.Command("run", params=[click.Option(["--params"])])
    return _split_params(click.Context(command), command.params[0], text)


def _test_params(project_path: Path, tmp_path: Path) -> SegmentationParams:
    bootstrap_project(project_path)
    with KedroSession.create(
        project_path=project_path, env="test", runtime_params={"data_root": str(tmp_path)}
    ) as session:
        return SegmentationParams.model_validate(session.load_context().params["segmentation"])


def _weights_file(path: Path, params: SegmentationParams, **model_changes) -> dict:
    """A MedicalNet-layout file (``{'state_dict': {'module.<key>': …}}``) that fits the
    conf/test network (or another one, with ``model_changes``); returns its state dict."""
    if model_changes:
        params = params.model_copy(update={"model": params.model.model_copy(update=model_changes)})
    torch.manual_seed(7)
    model = SegmentationTask.from_params(params).build_model()
    state = {
        f"module.{key}": torch.randn_like(value.float()).to(value.dtype)
        for key, value in model.state_dict().items()
    }
    torch.save({"state_dict": state}, path)
    return state


def test_catalog_entry_is_an_optional_input_model_that_loads_none_by_default(
    kedro_session,
) -> None:
    with kedro_session() as session:
        catalog = session.load_context().catalog
        dataset = catalog.get(MEDICALNET_WEIGHTS)
        assert isinstance(dataset, OptionalTorchWeightsDataset)
        assert dataset.metadata["kedro-viz"]["layer"] == "models"
        assert dataset._describe()["filepath"] is None
        assert catalog.load(MEDICALNET_WEIGHTS) is None


def test_run_params_and_env_globals_set_the_file(project_path: Path, tmp_path: Path) -> None:
    weights = tmp_path / "resnet_10.pth"
    torch.save({"state_dict": {"module.conv1.weight": torch.ones(2, 1, 1, 1, 1)}}, weights)
    bootstrap_project(project_path)
    # kedro run --params medicalnet_weights=<file> (the README's form)
    runtime = {"data_root": str(tmp_path / "data"), **_cli_params(f"medicalnet_weights={weights}")}
    with KedroSession.create(
        project_path=project_path, env="test", runtime_params=runtime
    ) as session:
        context = session.load_context()
        loaded = context.catalog.load(MEDICALNET_WEIGHTS)
        session_params = context.params  # validated by the project's hooks: a free key
    torch.testing.assert_close(
        loaded["state_dict"]["module.conv1.weight"], torch.ones(2, 1, 1, 1, 1)
    )
    assert session_params["medicalnet_weights"] == str(weights)
    # conf/<env>/globals.yml: medicalnet_weights: <file>
    conf = tmp_path / "conf"
    shutil.copytree(project_path / "conf" / "base", conf / "base")
    shutil.copytree(project_path / "conf" / "test", conf / "test")
    (conf / "test" / "globals.yml").write_text(yaml.safe_dump({"medicalnet_weights": str(weights)}))
    with KedroSession.create(
        project_path=project_path,
        env="test",
        conf_source=str(conf),
        runtime_params={"data_root": str(tmp_path / "data")},
    ) as session:
        catalog = session.load_context().catalog
        assert catalog.get(MEDICALNET_WEIGHTS)._describe()["filepath"] == str(weights)
        assert set(catalog.load(MEDICALNET_WEIGHTS)) == {"state_dict"}
    # a configured file that is missing fails naming it
    missing = {"data_root": str(tmp_path / "data"), "medicalnet_weights": str(tmp_path / "x.pth")}
    with KedroSession.create(
        project_path=project_path, env="test", runtime_params=missing
    ) as session:
        with pytest.raises(Exception, match=r"x\.pth.*medicalnet_weights.*does not exist"):
            session.load_context().catalog.load(MEDICALNET_WEIGHTS)


def test_training_node_rejects_weights_of_another_base_width(
    project_path: Path, tmp_path: Path
) -> None:
    from med_unlearning.pipelines.segmentation.nodes import train_segmentation_model

    params = _test_params(project_path, tmp_path)
    state = _weights_file(tmp_path / "wide.pth", params, base_width=params.model.base_width * 2)
    manifest = {"model": "original", "subject_ids": [], "forget_ids": []}
    with pytest.raises(WeightsMismatchError, match=r"segmentation\.medicalnet_weights.*base_width"):
        train_segmentation_model(
            {}, manifest, _empty_splits(), {"state_dict": state}, params, {"device": "cpu"}
        )
    assert "segmentation.medicalnet_weights" in MEDICALNET_WEIGHTS_SOURCE


def _empty_splits():
    import pandas as pd

    return pd.DataFrame({"subject_id": [], "role": []})


@pytest.mark.e2e
def test_conf_test_training_starts_from_the_weights_set_through_the_catalog(
    kedro_session, project_path: Path, tmp_path: Path
) -> None:
    """A conf/test run of the segmentation data nodes and the original's training, with a
    tiny compatible weights file given as ``--params medicalnet_weights=...``: the trained
    encoder is the file's (a vanishing learning rate keeps it there) and the checkpoint
    records the file's fingerprint."""
    from med_unlearning.pipelines.sample_data import create_pipeline as sample_pipeline

    params = _test_params(project_path, tmp_path / "probe")
    weights = tmp_path / "tiny_medicalnet.pth"
    state = _weights_file(weights, params)
    skipped = {f"segmentation.{model}.{step}" for model in MODELS for step in ("train", "predict")}
    node_names = [n.name for n in segmentation().nodes if n.name not in skipped]
    node_names += ["segmentation.original.train"]
    node_names += [n.name for n in sample_pipeline().nodes if "mrbrains_raw" in n.outputs]
    runtime = _cli_params(
        f"medicalnet_weights={weights},segmentation.training.epochs=1,"
        "segmentation.training.validation_interval=0,"
        "segmentation.training.optimizer.learning_rate=1e-12"
    )
    with kedro_session(env="test", **runtime) as session:
        session.run(node_names=node_names)
        checkpoint = session.load_context().catalog.load("segmentation.original.checkpoint")
    trained = checkpoint.state_dict
    for key in ("conv1.weight", "layer1.0.conv1.weight", "layer4.0.conv2.weight"):
        torch.testing.assert_close(trained[key], state[f"module.{key}"], rtol=0, atol=1e-6)
    fresh = SegmentationTask.from_params(params).build_model().state_dict()
    assert not torch.allclose(fresh["conv1.weight"], state["module.conv1.weight"], atol=1e-3)
    assert checkpoint.metadata.extra["pretrained_weights"] == weights_fingerprint(
        {"state_dict": state}
    )
