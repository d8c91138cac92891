"""DaskRunner: same results as SequentialRunner on a local Dask cluster, hooks on workers,
clear errors, and the ways it finds (or starts) a scheduler."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from functools import partial, update_wrapper
from pathlib import Path
from typing import Any

import cloudpickle
import dask.config
import numpy as np
import pytest
from distributed import Client, Event, LocalCluster
from kedro.framework.cli.project import _resolve_runner_kwargs
from kedro.framework.hooks import hook_impl
from kedro.framework.hooks.manager import _create_hook_manager
from kedro.io import DataCatalog, MemoryDataset, Version
from kedro.pipeline import Pipeline, node
from kedro.runner import SequentialRunner
from kedro.utils import load_obj
from kedro_datasets.json import JSONDataset

from med_unlearning.runners import (
    ADDRESS_ENV_VAR,
    DaskRunner,
    DaskRunnerError,
    dask_runner,
    resolve_scheduler_address,
)

N_BRANCHES = 4

# Worker processes cannot import this test module by name (pytest's importlib mode), so its
# node functions and hooks travel by value, as functions of a script's __main__ would.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


# ---- a small synthetic pipeline: split -> N independent branches -> join ---------------------


def split_numbers(numbers: list[float]) -> tuple[list[float], list[float]]:
    """Two halves of the raw numbers (in-memory outputs)."""
    middle = len(numbers) // 2
    return numbers[:middle], numbers[middle:]


def noisy_branch(values: list[float], settings: dict[str, Any], branch: int) -> list[float]:
    """Deterministic but non-trivial work: scaled values plus seeded noise."""
    rng = np.random.default_rng(settings["seed"] + branch)
    noise = rng.normal(size=len(values))
    return [float(v * settings["scale"] + n) for v, n in zip(values, noise, strict=True)]


def join_branches(*branches: list[float]) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Summary (in-memory pipeline output) and a persisted report."""
    flat = [v for branch in branches for v in branch]
    summary = {"total": float(np.sum(flat)), "max": float(np.max(flat))}
    report = {f"branch_{i}": branch for i, branch in enumerate(branches)}
    return summary, report


def rendezvous(meeting: dict[str, Any], me: str) -> str:
    """Signal arrival, then wait for the partner node: finishes only if both run at once."""
    partner = "b" if me == "a" else "a"
    Event(f"{meeting['id']}-{me}").set()
    if not Event(f"{meeting['id']}-{partner}").wait(timeout=meeting["timeout_s"]):
        raise RuntimeError(f"node {me} never met node {partner}: they did not run concurrently")
    return me


def log_from_worker(values: list[float]) -> list[float]:
    """Logs a line naming its process, then passes the values through."""
    logging.getLogger(__name__).info("node ran in pid %d", os.getpid())
    return values


def fail_on_purpose(values: list[float]) -> list[float]:
    """A node that always fails."""
    raise ValueError("boom: negative volume count")


def _branch_output(i: int) -> str:
    return f"branch_{i}_out"


def synthetic_pipeline() -> Pipeline:
    """split -> 4 branches (one persisted output) -> join, with params and persisted input."""
    branches = [
        node(
            update_wrapper(partial(noisy_branch, branch=i), noisy_branch),
            inputs=["left" if i % 2 == 0 else "right", "params:branch"],
            outputs=_branch_output(i),
            name=f"branch_{i}",
        )
        for i in range(N_BRANCHES)
    ]
    return Pipeline(
        [
            node(split_numbers, "raw_numbers", ["left", "right"], name="split"),
            *branches,
            node(
                join_branches,
                [_branch_output(i) for i in range(N_BRANCHES)],
                ["summary", "report"],
                name="join",
            ),
        ]
    )


def synthetic_catalog(root: Path) -> DataCatalog:
    """Persisted raw input, one persisted intermediate, a persisted report; the rest in memory."""
    raw = JSONDataset(filepath=str(root / "raw_numbers.json"))
    raw.save([float(v) for v in range(12)])
    return DataCatalog(
        datasets={
            "raw_numbers": raw,
            "params:branch": MemoryDataset({"seed": 7, "scale": 1.5}),
            _branch_output(2): JSONDataset(filepath=str(root / "branch_2_out.json")),
            "report": JSONDataset(filepath=str(root / "report.json")),
        }
    )


class RecordingHooks:
    """Writes one small file per node/dataset hook call, so calls on workers are visible."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _record(self, event: str, name: str) -> None:
        record = {"event": event, "name": name, "pid": os.getpid()}
        (self.folder / f"{uuid.uuid4().hex}.json").write_text(json.dumps(record))

    @hook_impl
    def before_node_run(self, node: Any) -> None:
        self._record("before_node_run", node.name)

    @hook_impl
    def after_node_run(self, node: Any) -> None:
        self._record("after_node_run", node.name)

    @hook_impl
    def on_node_error(self, node: Any) -> None:
        self._record("on_node_error", node.name)

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str) -> None:
        self._record("after_dataset_loaded", dataset_name)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str) -> None:
        self._record("after_dataset_saved", dataset_name)


def _recorded(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in folder.glob("*.json")]


# ---- fixtures: clusters are always closed -----------------------------------------------------


@pytest.fixture(scope="module")
def process_cluster() -> Iterator[LocalCluster]:
    """Two single-threaded worker processes, as in the issue's acceptance test."""
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        yield cluster


@pytest.fixture
def process_client(process_cluster: LocalCluster) -> Iterator[Client]:
    with Client(process_cluster) as client:
        yield client


@pytest.fixture
def thread_client() -> Iterator[Client]:
    """Two workers as threads of the test process: quick to start."""
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def _run(runner: Any, root: Path, hooks: Any = None) -> tuple[dict[str, Any], Path]:
    root.mkdir(parents=True)
    catalog = synthetic_catalog(root)
    hook_manager = None
    if hooks is not None:
        hook_manager = _create_hook_manager()
        hook_manager.register(hooks)
    outputs = runner.run(synthetic_pipeline(), catalog, hook_manager, run_id="test-run")
    return {name: dataset.load() for name, dataset in outputs.items()}, root


# ---- same results as SequentialRunner --------------------------------------------------------


def test_process_cluster_gives_the_sequential_results_and_fires_hooks_on_workers(
    tmp_path: Path, process_client: Client
) -> None:
    events = tmp_path / "events"
    events.mkdir()
    expected, seq_root = _run(SequentialRunner(), tmp_path / "sequential")
    got, dask_root = _run(
        DaskRunner(client=process_client), tmp_path / "dask", RecordingHooks(events)
    )

    assert got == expected
    assert got["summary"]["total"] != 0
    for persisted in ("report.json", "branch_2_out.json"):
        assert json.loads((dask_root / persisted).read_text()) == json.loads(
            (seq_root / persisted).read_text()
        )

    recorded = _recorded(events)
    node_names = {n.name for n in synthetic_pipeline().nodes}
    for event in ("before_node_run", "after_node_run"):
        assert {r["name"] for r in recorded if r["event"] == event} == node_names
    assert {"raw_numbers", "left", "params:branch", "branch_2_out"} <= {
        r["name"] for r in recorded if r["event"] == "after_dataset_loaded"
    }
    assert {"summary", "report", "left", "right"} <= {
        r["name"] for r in recorded if r["event"] == "after_dataset_saved"
    }
    assert os.getpid() not in {r["pid"] for r in recorded}  # nodes ran in the worker processes


def test_independent_nodes_run_at_the_same_time_on_different_workers(
    process_client: Client,
) -> None:
    pipeline = Pipeline(
        [
            node(
                update_wrapper(partial(rendezvous, me=me), rendezvous),
                "params:meeting",
                f"met_{me}",
                name=f"meet_{me}",
            )
            for me in ("a", "b")
        ]
    )
    catalog = DataCatalog(
        datasets={"params:meeting": MemoryDataset({"id": uuid.uuid4().hex, "timeout_s": 30})}
    )
    outputs = DaskRunner(client=process_client).run(pipeline, catalog)
    assert {name: dataset.load() for name, dataset in outputs.items()} == {
        "met_a": "a",
        "met_b": "b",
    }


def test_in_process_cluster_gives_the_sequential_results(
    tmp_path: Path, thread_client: Client
) -> None:
    expected, _ = _run(SequentialRunner(), tmp_path / "sequential")
    got, _ = _run(DaskRunner(client=thread_client), tmp_path / "dask")
    assert got == expected


def test_downstream_workers_load_the_version_saved_in_this_run(
    tmp_path: Path, thread_client: Client
) -> None:
    def versioned(save: str) -> JSONDataset:
        path = tmp_path / "branch_2_out.json"
        return JSONDataset(filepath=str(path), version=Version(None, save))

    versioned("2000-01-01T00.00.00.000Z").save([999.0] * 6)  # a stale earlier version
    catalog = synthetic_catalog(tmp_path)
    catalog[_branch_output(2)] = this_run = versioned("2030-01-01T00.00.00.000Z")
    assert this_run.exists()  # caches "latest version = the stale one" on the driver

    outputs = DaskRunner(client=thread_client).run(synthetic_pipeline(), catalog)

    expected, _ = _run(SequentialRunner(), tmp_path / "sequential")
    assert outputs["summary"].load() == expected["summary"]


def test_run_leaves_no_data_on_the_cluster(tmp_path: Path, thread_client: Client) -> None:
    _run(DaskRunner(client=thread_client), tmp_path / "dask")
    deadline = time.monotonic() + 10
    while thread_client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)):
        assert time.monotonic() < deadline, "the run left tasks or data on the scheduler"
        time.sleep(0.05)


def test_the_runner_never_closes_a_client_it_was_given(
    tmp_path: Path, thread_client: Client
) -> None:
    _run(DaskRunner(client=thread_client), tmp_path / "dask")
    assert thread_client.status == "running"
    assert thread_client.submit(sum, [1, 2]).result() == 3


def test_worker_logs_are_forwarded_to_the_driver_when_asked(
    process_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    pipeline = Pipeline([node(log_from_worker, "values", "out", name="logging_node")])
    catalog = DataCatalog(datasets={"values": MemoryDataset([1.0])})
    DaskRunner(client=process_client, forward_logging=True).run(pipeline, catalog)

    deadline = time.monotonic() + 10
    while not (forwarded := [r for r in caplog.records if r.getMessage().startswith("node ran")]):
        assert time.monotonic() < deadline, "the node's log record never reached the driver"
        time.sleep(0.05)
    assert forwarded[0].name == log_from_worker.__module__
    assert forwarded[0].getMessage() != f"node ran in pid {os.getpid()}"
    assert forwarded[0].worker.startswith("tcp://")  # type: ignore[attr-defined]


def test_a_local_cluster_does_not_forward_logs_by_default(
    process_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    pipeline = Pipeline([node(log_from_worker, "values", "out", name="logging_node")])
    catalog = DataCatalog(datasets={"values": MemoryDataset([1.0])})
    DaskRunner(client=process_client).run(pipeline, catalog)
    time.sleep(0.5)  # give a wrongly forwarded record time to arrive
    assert not [r for r in caplog.records if r.getMessage().startswith("node ran")]


# ---- failures --------------------------------------------------------------------------------


def test_a_failing_node_raises_its_error_naming_the_node_and_stops_downstream(
    tmp_path: Path, thread_client: Client
) -> None:
    pipeline = synthetic_pipeline() + Pipeline(
        [
            node(fail_on_purpose, "right", "broken", name="broken_node"),
            node(lambda values: values, "broken", "after_broken", name="after_broken_node"),
        ]
    )
    catalog = synthetic_catalog(tmp_path)
    catalog["after_broken"] = JSONDataset(filepath=str(tmp_path / "after_broken.json"))

    with pytest.raises(ValueError, match="boom") as raised:
        DaskRunner(client=thread_client).run(pipeline, catalog, run_id="failing")

    notes = " ".join(getattr(raised.value, "__notes__", []))
    assert "'broken_node'" in notes
    assert not (tmp_path / "after_broken.json").exists()


def test_without_add_note_python_3_10_the_node_is_named_in_the_message(
    tmp_path: Path, thread_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python 3.10 has no ``BaseException.add_note``: the runner falls back to ``__notes__``
    set by hand plus the note appended to the message, keeping the exception's type."""
    from med_unlearning.runners import dask_runner

    monkeypatch.setattr(dask_runner, "_HAS_ADD_NOTE", False)
    pipeline = synthetic_pipeline() + Pipeline(
        [node(fail_on_purpose, "right", "broken", name="broken_node")]
    )
    with pytest.raises(ValueError, match="boom") as raised:
        DaskRunner(client=thread_client).run(pipeline, synthetic_catalog(tmp_path), run_id="py310")
    assert "'broken_node'" in str(raised.value)
    assert any("'broken_node'" in note for note in raised.value.__notes__)


def test_attach_note_fallback_handles_exceptions_without_a_single_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from med_unlearning.runners.dask_runner import _attach_note

    monkeypatch.setattr("med_unlearning.runners.dask_runner._HAS_ADD_NOTE", False)
    empty, several = RuntimeError(), OSError(2, "missing")
    _attach_note(empty, "node a")
    _attach_note(several, "node b")
    _attach_note(several, "node c")
    assert str(empty) == "node a" and empty.__notes__ == ["node a"]
    assert several.args == (2, "missing") and several.__notes__ == ["node b", "node c"]
    monkeypatch.setattr("med_unlearning.runners.dask_runner._HAS_ADD_NOTE", True)
    modern = ValueError("x")
    _attach_note(modern, "node d")
    assert str(modern) == "x" and modern.__notes__ == ["node d"]


def test_on_node_error_hook_fires_on_the_worker(tmp_path: Path, process_client: Client) -> None:
    events = tmp_path / "events"
    events.mkdir()
    hook_manager = _create_hook_manager()
    hook_manager.register(RecordingHooks(events))
    pipeline = Pipeline([node(fail_on_purpose, "values", "out", name="broken_node")])
    catalog = DataCatalog(datasets={"values": MemoryDataset([1.0])})

    with pytest.raises(ValueError, match="boom"):
        DaskRunner(client=process_client).run(pipeline, catalog, hook_manager, run_id="x")

    errors = [r for r in _recorded(events) if r["event"] == "on_node_error"]
    assert [r["name"] for r in errors] == ["broken_node"]
    assert errors[0]["pid"] != os.getpid()


def test_unpicklable_dataset_is_refused_before_running_naming_it(
    tmp_path: Path, thread_client: Client
) -> None:
    pipeline = Pipeline([node(split_numbers, "locked", ["left", "right"], name="split")])
    catalog = DataCatalog(datasets={"locked": MemoryDataset(threading.Lock(), copy_mode="assign")})
    with pytest.raises(DaskRunnerError, match="locked"):
        DaskRunner(client=thread_client).run(pipeline, catalog)


def test_unpicklable_node_is_refused_before_running_naming_it(thread_client: Client) -> None:
    lock = threading.Lock()
    pipeline = Pipeline([node(lambda x: (lock, x)[1], "values", "out", name="holds_a_lock")])
    catalog = DataCatalog(datasets={"values": MemoryDataset([1.0])})
    with pytest.raises(DaskRunnerError, match="holds_a_lock"):
        DaskRunner(client=thread_client).run(pipeline, catalog)


# ---- where the scheduler comes from ----------------------------------------------------------


def test_address_precedence_argument_then_env_then_dask_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ADDRESS_ENV_VAR, raising=False)
    with dask.config.set({"scheduler-address": None}):
        assert resolve_scheduler_address() is None
        assert resolve_scheduler_address("  ") is None
    with dask.config.set({"scheduler-address": "tcp://from-dask:8786"}):
        assert resolve_scheduler_address() == "tcp://from-dask:8786"
        monkeypatch.setenv(ADDRESS_ENV_VAR, "tcp://from-env:8786")
        assert resolve_scheduler_address() == "tcp://from-env:8786"
        assert resolve_scheduler_address("tcp://explicit:8786") == "tcp://explicit:8786"


def test_env_address_connects_to_an_existing_scheduler_and_leaves_it_running(
    tmp_path: Path, process_cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ADDRESS_ENV_VAR, process_cluster.scheduler_address)
    expected, _ = _run(SequentialRunner(), tmp_path / "sequential")
    got, _ = _run(DaskRunner(), tmp_path / "dask")
    assert got == expected
    assert process_cluster.status.name == "running"


def test_no_address_starts_and_closes_a_local_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[LocalCluster] = []

    class SpyCluster(LocalCluster):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(dask_runner, "LocalCluster", SpyCluster)
    monkeypatch.delenv(ADDRESS_ENV_VAR, raising=False)
    runner = DaskRunner(n_workers=2, processes=False, cluster_kwargs={"dashboard_address": ":0"})
    assert "LocalCluster(n_workers=2" in repr(runner)
    with dask.config.set({"scheduler-address": None}):
        expected, _ = _run(SequentialRunner(), tmp_path / "sequential")
        got, _ = _run(runner, tmp_path / "dask")
    assert got == expected
    assert len(started) == 1
    assert started[0].status.name == "closed"


def test_kedro_cli_can_build_the_runner_from_its_name_and_runner_params() -> None:
    runner_class = load_obj("med_unlearning.runners.DaskRunner", "kedro.runner")
    runner = runner_class(**_resolve_runner_kwargs(False, {}))
    assert isinstance(runner, DaskRunner)
    runner = runner_class(
        **_resolve_runner_kwargs(False, {"address": "tcp://10.0.0.5:8786", "n_workers": 3})
    )
    assert "tcp://10.0.0.5:8786" in repr(runner)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_workers": 0}, "n_workers"),
        ({"threads_per_worker": 0}, "threads_per_worker"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(DaskRunnerError, match=message):
        DaskRunner(**kwargs)


def test_client_and_address_together_are_refused(thread_client: Client) -> None:
    with pytest.raises(DaskRunnerError, match="either"):
        DaskRunner("tcp://10.0.0.5:8786", client=thread_client)
