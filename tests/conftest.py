"""Shared fixtures: the project root and a Kedro session whose data tree lives in tmp_path."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

PROJECT_PATH = Path(__file__).resolve().parents[1]

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
# Before anything imports mlflow (some tests import kedro-mlflow's plugin before settings.py).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def project_path() -> Path:
    """The Kedro project root."""
    return PROJECT_PATH


@contextmanager
def _session(env: str, runtime_params: dict[str, Any]) -> Iterator[Any]:
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(PROJECT_PATH)
    with KedroSession.create(
        project_path=PROJECT_PATH, env=env, runtime_params=runtime_params
    ) as session:
        yield session


@pytest.fixture
def kedro_session(tmp_path: Path) -> Callable[..., Any]:
    """Factory: ``kedro_session(env="test", **runtime_params)`` with ``data_root=tmp_path``.

    Use as ``with kedro_session() as session: session.run(pipeline_names=[...])``.
    """

    def factory(env: str = "test", **runtime_params: Any) -> Any:
        runtime_params.setdefault("data_root", str(tmp_path))
        return _session(env, runtime_params)

    return factory


@pytest.fixture(scope="session")
def study_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole default study (``__default__``) under conf/test, run once per test session.

    Tracking is on for this run: the MLflow store is ``<data root>/mlruns``.

    Returns:
        The data root the study wrote into (``01_raw`` … ``08_reporting``, ``mlruns``).
    """
    data_root = tmp_path_factory.mktemp("study")
    # Tracked in MLflow (off elsewhere in conf/test): tests/test_tracking.py reads the store.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MED_UNLEARNING_MLFLOW", "1")
        with _session("test", {"data_root": str(data_root)}) as session:
            session.run()
    return data_root
