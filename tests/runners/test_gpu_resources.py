"""GPU scale-out: nodes that run a network claim one Dask ``GPU`` resource; CPU unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from distributed import Client, LocalCluster, get_worker
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline, node

from med_unlearning.runners import DaskRunner, dask_runner
from med_unlearning.runners.resources import GPU_TAG, gpu_resources, tag_gpu_nodes


def free_gpus(_: Any) -> float:
    """What the worker running this node still has of its ``GPU`` resource."""
    return float(get_worker().state.available_resources.get("GPU", -1))


def _pipeline() -> Pipeline:
    return Pipeline(
        [
            node(free_gpus, "start", "on_gpu", name="models.train", tags=[GPU_TAG]),
            node(free_gpus, "start", "on_cpu", name="models.split"),
        ]
    )


def _run(client: Client) -> dict[str, float]:
    catalog = DataCatalog(
        datasets={
            "start": MemoryDataset(0),
            "on_gpu": MemoryDataset(),
            "on_cpu": MemoryDataset(),
        }
    )
    DaskRunner(client=client).run(_pipeline(), catalog)
    return {name: catalog.load(name) for name in ("on_gpu", "on_cpu")}


@pytest.fixture
def gpu_client() -> Iterator[Client]:
    """Two in-process workers that declare one GPU each, as GPU workers would."""
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0",
            resources={"GPU": 1},
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def test_gpu_nodes_claim_a_gpu_and_cpu_nodes_do_not(gpu_client: Client) -> None:
    assert _run(gpu_client) == {"on_gpu": 0.0, "on_cpu": 1.0}


def test_without_gpu_workers_nothing_is_claimed_and_gpu_nodes_still_run() -> None:
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        assert _run(client) == {"on_gpu": -1.0, "on_cpu": -1.0}


def test_project_nodes_that_run_networks_are_tagged_gpu() -> None:
    from kedro.framework.startup import bootstrap_project
    from tests.conftest import PROJECT_PATH

    from med_unlearning.pipeline_registry import register_pipelines

    bootstrap_project(PROJECT_PATH)
    study = register_pipelines()["__default__"]
    tagged = {n.name for n in study.nodes if GPU_TAG in n.tags}
    untagged = {n.name for n in study.nodes} - tagged
    short = {name.rsplit(".", 1)[-1] for name in tagged}
    assert short == {"train_model", "train", "reconstruct_volumes", "predict", "unlearn", "score"}
    assert {"recon.original.train_model", "segmentation.oracle.train"} <= tagged
    assert any(name.startswith("unlearning.") for name in tagged)
    assert {"recon.split_volumes", "build_fastmri_metadata"} <= untagged
    assert gpu_resources(next(n for n in study.nodes if n.name in tagged), True) == {"GPU": 1}
    assert gpu_resources(next(n for n in study.nodes if n.name in tagged), False) is None
    # tagging is idempotent and keeps every node
    again = tag_gpu_nodes(study)
    assert len(again.nodes) == len(study.nodes)


def test_local_cluster_plan_starts_one_worker_per_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dask_runner, "_visible_cuda_devices", lambda: 0)
    factory, kwargs, pin = DaskRunner(n_workers=3)._local_cluster_plan()
    assert factory is LocalCluster and kwargs["n_workers"] == 3 and "resources" not in kwargs
    assert not pin

    monkeypatch.setattr(dask_runner, "_visible_cuda_devices", lambda: 2)
    monkeypatch.setattr(dask_runner, "_local_cuda_cluster", lambda: None)
    factory, kwargs, pin = DaskRunner()._local_cluster_plan()
    assert factory is LocalCluster and pin
    assert kwargs["n_workers"] == 2 and kwargs["resources"] == {"GPU": 1} and kwargs["processes"]

    class FakeCUDACluster:  # stands for dask_cuda.LocalCUDACluster
        pass

    monkeypatch.setattr(dask_runner, "_local_cuda_cluster", lambda: FakeCUDACluster)
    factory, kwargs, pin = DaskRunner()._local_cluster_plan()
    assert factory is FakeCUDACluster and not pin and kwargs["resources"] == {"GPU": 1}

    factory, kwargs, pin = DaskRunner(n_workers=3, gpus=False)._local_cluster_plan()
    assert factory is LocalCluster and kwargs["n_workers"] == 3 and "resources" not in kwargs


@pytest.mark.parametrize(
    ("name", "preset", "expected"), [("1", None, "1"), ("1", "4,5", "5"), ("w", None, None)]
)
def test_pin_plugin_gives_worker_i_gpu_i(
    monkeypatch: pytest.MonkeyPatch, name: str, preset: str | None, expected: str | None
) -> None:
    if preset is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", preset)

    class FakeWorker:
        pass

    worker = FakeWorker()
    worker.name = name
    dask_runner._PinOneGPU(2).setup(worker)
    import os

    assert os.environ.get("CUDA_VISIBLE_DEVICES") == (expected if expected else preset)
