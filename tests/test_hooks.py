"""Parameters are validated when the Kedro context is created, before any node runs."""

from __future__ import annotations

import pytest

from med_unlearning.params import ParameterError


def test_bad_runtime_param_fails_at_session_start(kedro_session) -> None:
    with kedro_session(runtime={"seed": "not-a-number"}) as session:
        with pytest.raises(ParameterError, match=r"runtime\.seed"):
            session.load_context()


def test_misspelt_section_fails_at_session_start(kedro_session) -> None:
    with kedro_session(runtmie={"seed": 1}) as session:
        with pytest.raises(ParameterError, match="runtmie"):
            session.load_context()


def test_valid_params_load_and_runtime_overrides_merge_softly(kedro_session) -> None:
    with kedro_session(runtime={"seed": 7}) as session:
        raw = session.load_context().config_loader["parameters"]
    assert raw["runtime"]["seed"] == 7
    assert raw["runtime"]["device"] == "cpu"  # from conf/test, sibling kept


def test_telemetry_is_off_in_the_project(project_path) -> None:
    assert (project_path / ".telemetry").read_text().strip() == "consent: false"


@pytest.mark.parametrize("root", ["s3://bucket/study", "memory://study"])
def test_non_local_data_root_fails_at_session_start(kedro_session, root) -> None:
    from med_unlearning.hooks import DataRootError

    with kedro_session(data_root=root) as session:
        with pytest.raises(DataRootError, match="shared mount"):
            session.load_context()


@pytest.mark.parametrize("root", ["data", "/tmp/study", "file:///tmp/study"])
def test_local_data_roots_are_accepted(root) -> None:
    from med_unlearning.hooks import require_local_data_root

    require_local_data_root(root)


def test_mlflow_telemetry_is_off_in_kedro_sessions(kedro_session, monkeypatch) -> None:
    """MLflow would contact its telemetry servers; settings.py turns that off, also when
    mlflow was imported (and its telemetry client made) before the session started."""
    import os

    from mlflow.telemetry import client as telemetry

    from med_unlearning.tracking import mlflow_environment_defaults

    monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY")
    monkeypatch.setattr(telemetry, "_MLFLOW_TELEMETRY_CLIENT", object())  # a client exists
    with kedro_session() as session:
        session.load_context()
    mlflow_environment_defaults()  # what settings.py runs when the project is configured
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert telemetry.get_telemetry_client() is None


def _conf_without(tmp_path, project_path, task: str, strategy: str):
    """A copy of the project's conf without ``unlearning.<task>.strategies.<strategy>``."""
    import shutil

    import yaml

    conf = tmp_path / "conf"
    shutil.copytree(project_path / "conf", conf)
    for env in ("base", "test"):
        path = conf / env / "parameters_unlearning.yml"
        params = yaml.safe_load(path.read_text())
        params["unlearning"][task]["strategies"].pop(strategy, None)
        path.write_text(yaml.safe_dump(params))
    return conf


def test_a_strategy_without_its_parameter_block_is_named_at_start(
    tmp_path, project_path, monkeypatch
) -> None:
    """A registered strategy (so a run of the grid) whose block is missing from the conf
    fails before any node runs, naming the strategy and saying that ``{}`` is enough."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from med_unlearning.unlearning.registry import available_strategies

    assert "ssd" in available_strategies("recon")
    conf = _conf_without(tmp_path, project_path, "recon", "ssd")
    bootstrap_project(project_path)
    with KedroSession.create(
        project_path=project_path, env="test", conf_source=str(conf),
        runtime_params={"data_root": str(tmp_path / "data")},
    ) as session:
        with pytest.raises(ParameterError) as error:
            session.run(pipeline_names=["unlearning"])
    message = str(error.value)
    assert "'ssd' (task recon)" in message
    assert "unlearning.recon.strategies.ssd" in message and "'ssd: {}' is enough" in message
    assert "segmentation" not in message  # only what is missing
    assert not (tmp_path / "data" / "06_models").exists()  # nothing ran
