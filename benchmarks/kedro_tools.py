"""Running the project through Kedro for benchmarks: sessions in-process and ``kedro run``.

Every run gets its own data tree through the runtime parameter ``data_root`` (the catalog
interpolates ``${runtime_params:data_root,...}``), so benchmarks never touch ``data/``.
"""

from __future__ import annotations

import logging
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import NotAvailableYet

__all__ = [
    "KedroRun",
    "catalog_load",
    "find_node",
    "kedro_session",
    "latest_version",
    "pipeline_node_count",
    "pipeline_node_names",
    "project_params",
    "run_kedro_subprocess",
    "run_session",
    "typed_section",
]

logger = logging.getLogger(__name__)


@contextmanager
def kedro_session(
    project_path: Path, env: str, data_root: Path, extra_params: Mapping[str, Any] | None = None
) -> Iterator[Any]:
    """A KedroSession of the project under ``env`` whose data tree is ``data_root``."""
    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project_path)
    runtime_params = {"data_root": str(data_root), **dict(extra_params or {})}
    with KedroSession.create(
        project_path=project_path, env=env, runtime_params=runtime_params
    ) as session:
        yield session


def project_params(
    project_path: Path, env: str, data_root: Path, extra_params: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The merged parameters of ``env`` (with the runtime overrides), as plain dicts."""
    with kedro_session(project_path, env, data_root, extra_params) as session:
        return dict(session.load_context().params)


def typed_section(params: Mapping[str, Any], name: str, model: type) -> Any:
    """Parameters section ``name`` as its pydantic ``model`` (Kedro may hand either form)."""
    value = params.get(name)
    if isinstance(value, model):
        return value
    if hasattr(value, "model_dump"):
        value = value.model_dump()
    return model.model_validate(dict(value or {}))


def _pipeline(project_path: Path, name: str) -> Any:
    from kedro.framework.project import pipelines
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project_path)
    try:
        pipeline = pipelines.get(name)
    except Exception as error:  # the registry itself may fail while pipelines are written
        raise NotAvailableYet(f"the pipeline registry cannot be built: {error}") from error
    if pipeline is None:
        raise NotAvailableYet(f"no pipeline named {name!r} is registered")
    return pipeline


def pipeline_node_count(project_path: Path, name: str) -> int:
    """How many nodes the registered pipeline ``name`` has.

    Raises:
        NotAvailableYet: the pipeline registry cannot be built or has no ``name``.
    """
    return len(_pipeline(project_path, name).nodes)


def pipeline_node_names(project_path: Path, name: str) -> list[str]:
    """The node names of the registered pipeline ``name``, in run order.

    Raises:
        NotAvailableYet: the registry cannot be built, has no ``name``, or it has no nodes.
    """
    names = [node.name for node in _pipeline(project_path, name).nodes]
    if not names:
        raise NotAvailableYet(f"pipeline {name!r} has no nodes yet")
    return names


def find_node(project_path: Path, pipeline: str, prefix: str) -> str:
    """The name of the node of ``pipeline`` whose name starts with ``prefix`` (the shortest).

    Raises:
        NotAvailableYet: no such node (yet).
    """
    names = sorted(
        (n.name for n in _pipeline(project_path, pipeline).nodes if n.name.startswith(prefix)),
        key=len,
    )
    if not names:
        raise NotAvailableYet(f"pipeline {pipeline!r} has no node named {prefix}*")
    return names[0]


def catalog_load(
    project_path: Path,
    env: str,
    data_root: Path,
    names: Iterable[str],
    extra_params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Load catalog entries of a data tree (e.g. the splits table a run wrote)."""
    with kedro_session(project_path, env, data_root, extra_params) as session:
        catalog = session.load_context().catalog
        return {name: catalog.load(name) for name in names}


def run_session(
    project_path: Path,
    env: str,
    data_root: Path,
    pipelines: Iterable[str],
    *,
    namespaces: Iterable[str] | None = None,
    node_names: Iterable[str] | None = None,
    to_nodes: Iterable[str] | None = None,
    extra_params: Mapping[str, Any] | None = None,
) -> float:
    """``kedro run`` in this process; returns the wall time of ``session.run`` in seconds.

    The run uses the ``__default__`` pipeline restricted to the nodes of ``pipelines`` (and to
    ``node_names`` / ``to_nodes`` / ``namespaces`` when given): asking Kedro 1.7 for named
    pipelines makes it load only those, which the project's registry refuses (it requires
    every study pipeline).

    Raises:
        NotAvailableYet: one of ``pipelines`` has no nodes yet.
    """
    selected: set[str] = set()
    for name in pipelines:
        nodes = _pipeline(project_path, name).nodes
        if not nodes:
            raise NotAvailableYet(f"pipeline {name!r} has no nodes yet")
        selected |= {node.name for node in nodes}
    if node_names is not None:
        selected &= set(node_names)
    with kedro_session(project_path, env, data_root, extra_params) as session:
        start = time.perf_counter()
        session.run(
            pipeline_names=["__default__"],
            node_names=sorted(selected),
            namespaces=list(namespaces) if namespaces else None,
            to_nodes=list(to_nodes) if to_nodes else None,
        )
        return time.perf_counter() - start


@dataclass
class KedroRun:
    """A finished ``kedro run`` subprocess.

    Attributes:
        command: the command line.
        returncode: its exit status.
        wall_time_s: wall time of the whole process (Python start-up included).
        log_path: where stdout and stderr went.
        cpu_time_s: user + system CPU seconds of the process and its children; on a busy
            machine a steadier measure of the work than the wall time.
    """

    command: list[str]
    returncode: int
    wall_time_s: float
    log_path: Path
    cpu_time_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, lines: int = 15) -> str:
        """The last ``lines`` lines of the log (to explain a failure)."""
        text = self.log_path.read_text(errors="replace") if self.log_path.is_file() else ""
        return "\n".join(text.splitlines()[-lines:])


def run_kedro_subprocess(
    project_path: Path,
    data_root: Path,
    log_path: Path,
    *,
    env: str | None = None,
    pipelines: Iterable[str] | None = None,
    extra_args: Iterable[str] = (),
    timeout_s: float | None = None,
    prefix: Iterable[str] = (),
) -> KedroRun:
    """Run ``kedro run`` as a user would, in a subprocess, with ``data_root`` redirected.

    Args:
        env: ``--env`` (``None`` = Kedro's default run env).
        pipelines: ``--pipelines`` (``None`` = the default pipeline, the whole study).
        extra_args: more CLI arguments.
        timeout_s: kill the run after this many seconds (the run then counts as failed).
        prefix: a command the run is started under (e.g. ``taskset -c 0,1``).
    """
    command = [*prefix, sys.executable, "-m", "kedro", "run", "--params", f"data_root={data_root}"]
    if env:
        command += ["--env", env]
    if pipelines:
        command += ["--pipelines", ",".join(pipelines)]
    command += list(extra_args)
    environment = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "PYTHONUNBUFFERED": "1"}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    logger.info("Running %s", " ".join(command))
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        try:
            completed = subprocess.run(
                command,
                cwd=project_path,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
                timeout=timeout_s,
                check=False,
            )
            returncode = completed.returncode
        except subprocess.TimeoutExpired:
            returncode = -9
            log.write(f"\n[benchmarks] killed after {timeout_s} s\n")
    wall = time.perf_counter() - start
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (children_after.ru_utime + children_after.ru_stime) - (
        children_before.ru_utime + children_before.ru_stime
    )
    return KedroRun(command, returncode, wall, log_path, cpu_time_s=cpu)


def latest_version(path: Path) -> Path:
    """The newest version of a versioned Kedro dataset (``<path>/<timestamp>/<name>``).

    Raises:
        FileNotFoundError: no version exists.
    """
    if path.is_file():
        return path
    versions = sorted(child for child in path.glob("*") if child.is_dir()) if path.is_dir() else []
    for version in reversed(versions):
        candidate = version / path.name
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no saved version of {path}")
