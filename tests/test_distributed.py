"""DDP support: torchrun's environment, sharded loaders, a real 2-process run, rank-0 writes.

The 2-process test launches this file under ``torchrun`` (Gloo on the CPU); the code under
``if __name__ == "__main__"`` is what every rank runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset

from med_unlearning.distributed import (
    DistributedContext,
    all_reduce_mean,
    distributed_context,
    distributed_loader,
    is_main_process,
    unwrap_model,
    wrap_model,
)
from med_unlearning.distributed_kedro import DistributedSetupHooks, RankZeroCatalog
from med_unlearning.training import LoopSettings, NonFiniteLossError, make_loader, train

DATASET_SIZE = 16
BATCH_SIZE = 4
EPOCHS = 2


class _RecordingDataset(Dataset):
    """y = 2x + 1; remembers which indices this process read."""

    def __init__(self, size: int = DATASET_SIZE) -> None:
        self.x = torch.linspace(-1, 1, size).unsqueeze(1)
        self.y = 2 * self.x + 1
        self.seen: list[int] = []

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> dict:
        self.seen.append(int(index))
        return {"x": self.x[index], "y": self.y[index], "ids": f"item_{index}"}


def _mse(model: nn.Module, batch: dict) -> torch.Tensor:
    return nn.functional.mse_loss(model(batch["x"]), batch["y"])


def _tiny_model() -> nn.Module:
    return nn.Sequential(nn.Linear(1, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))


@pytest.fixture
def torchrun_env(monkeypatch: pytest.MonkeyPatch):
    def set_env(**values: str) -> None:
        for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
            monkeypatch.delenv(name, raising=False)
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return set_env


# -- torchrun's environment --------------------------------------------------------------------


def test_context_is_disabled_without_torchrun(torchrun_env) -> None:
    torchrun_env()
    ctx = distributed_context("cpu")
    assert not ctx.enabled and ctx.world_size == 1 and ctx.rank == 0
    assert is_main_process(ctx)


def test_context_is_disabled_for_a_single_process(torchrun_env) -> None:
    torchrun_env(WORLD_SIZE="1", RANK="0", LOCAL_RANK="0")
    assert not distributed_context("cpu").enabled


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_context_reads_torchrun_variables(torchrun_env) -> None:
    torchrun_env(WORLD_SIZE="4", RANK="3", LOCAL_RANK="1")
    ctx = distributed_context("cpu")
    assert ctx == DistributedContext(True, rank=3, local_rank=1, world_size=4, backend="gloo")
    assert not is_main_process(ctx)
    assert "rank 3/4" in repr(ctx)


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
@pytest.mark.parametrize(
    ("rank", "message"), [("two", r"RANK='two': expected an integer"), ("2", r"RANK=2")]
)
def test_bad_rank_is_named(torchrun_env, rank: str, message: str) -> None:
    torchrun_env(WORLD_SIZE="2", RANK=rank)
    with pytest.raises(ValueError, match=message):
        distributed_context("cpu")


# -- helpers without a process group ---------------------------------------------------------


def test_helpers_leave_a_single_process_alone() -> None:
    ctx = DistributedContext()
    model = nn.Linear(1, 1)
    loader = make_loader(_RecordingDataset(), BATCH_SIZE, shuffle=True, seed=0, device="cpu")
    assert wrap_model(model, ctx, torch.device("cpu")) is model
    assert unwrap_model(model) is model
    assert distributed_loader(loader, ctx) is loader
    assert all_reduce_mean(2.5, ctx) == 2.5


def test_loader_is_sharded_by_rank_with_the_same_batching() -> None:
    ctx = DistributedContext(True, rank=1, local_rank=1, world_size=2, backend="gloo")
    loader = make_loader(_RecordingDataset(), BATCH_SIZE, shuffle=False, seed=0, device="cpu")
    sharded = distributed_loader(loader, ctx)
    batches = list(sharded)
    ids = [item for batch in batches for item in batch["ids"]]
    assert ids == [f"item_{index}" for index in range(1, DATASET_SIZE, 2)]
    assert [len(batch["ids"]) for batch in batches] == [BATCH_SIZE, BATCH_SIZE]
    assert sharded.batch_size == loader.batch_size and sharded.collate_fn is loader.collate_fn


def test_shuffled_shards_follow_the_seed_and_the_epoch() -> None:
    def order(rank: int, seed: int, epoch: int) -> list[str]:
        ctx = DistributedContext(True, rank=rank, local_rank=rank, world_size=2, backend="gloo")
        loader = make_loader(_RecordingDataset(), BATCH_SIZE, shuffle=True, seed=seed)
        sharded = distributed_loader(loader, ctx)
        sharded.sampler.set_epoch(epoch)
        return [item for batch in sharded for item in batch["ids"]]

    assert order(0, seed=5, epoch=1) == order(0, seed=5, epoch=1)
    assert order(0, seed=5, epoch=1) != order(0, seed=5, epoch=2)
    assert order(0, seed=5, epoch=1) != order(0, seed=6, epoch=1)
    both = order(0, seed=5, epoch=1) + order(1, seed=5, epoch=1)
    assert sorted(both) == sorted(f"item_{index}" for index in range(DATASET_SIZE))


def test_unshardable_iterables_are_returned_unchanged() -> None:
    ctx = DistributedContext(True, rank=0, local_rank=0, world_size=2, backend="gloo")
    batches = [{"x": torch.zeros(2, 1)}]
    assert distributed_loader(batches, ctx) is batches


# -- rank-0 writes --------------------------------------------------------------------------


def _catalog(tmp_path: Path) -> RankZeroCatalog:
    from kedro.io import MemoryDataset
    from kedro_datasets.pickle import PickleDataset

    return RankZeroCatalog(
        datasets={
            "model": PickleDataset(filepath=str(tmp_path / "model.pkl")),
            "scratch": MemoryDataset(),
        }
    )


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_only_rank_zero_writes_persisted_datasets(torchrun_env, tmp_path: Path) -> None:
    torchrun_env(WORLD_SIZE="2", RANK="1", LOCAL_RANK="1")
    catalog = _catalog(tmp_path)
    catalog.save("model", {"weights": [1, 2]})
    catalog.save("scratch", 7)
    assert not (tmp_path / "model.pkl").exists()
    assert catalog.exists("model") and catalog.load("model") == {"weights": [1, 2]}
    assert catalog.load("scratch") == 7
    catalog.release("model")
    assert not catalog.exists("model")

    torchrun_env(WORLD_SIZE="2", RANK="0", LOCAL_RANK="0")
    catalog = _catalog(tmp_path)
    catalog.save("model", {"weights": [3]})
    assert (tmp_path / "model.pkl").exists()
    assert _catalog(tmp_path).load("model") == {"weights": [3]}


def test_catalog_writes_in_a_single_process(torchrun_env, tmp_path: Path) -> None:
    torchrun_env()
    _catalog(tmp_path).save("model", [1])
    assert (tmp_path / "model.pkl").exists()


# -- a real 2-process run ------------------------------------------------------------------------


def _run_rank(out_dir: Path) -> None:
    """What each torchrun process runs: train through ``train()`` and record the outcome."""
    ctx = distributed_context("cpu")
    DistributedSetupHooks().after_context_created(context=None)
    assert dist.is_initialized() and dist.get_world_size() == 2
    torch.manual_seed(100 + ctx.rank)  # different starting weights: DDP must sync them
    model = _tiny_model()
    dataset = _RecordingDataset()
    loader = make_loader(dataset, BATCH_SIZE, shuffle=True, seed=0, device="cpu")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    settings = LoopSettings(epochs=EPOCHS, device="cpu", progress=False, description="ddp")
    result = train(
        model,
        loader,
        _mse,
        optimizer,
        settings,
        validate=lambda trained: {"val_rank": float(ctx.rank)},
    )
    per_epoch = len(dataset.seen) // EPOCHS
    record = {
        "model_type": type(model).__name__,
        "state_keys": sorted(model.state_dict()),
        "seen": [dataset.seen[i * per_epoch : (i + 1) * per_epoch] for i in range(EPOCHS)],
        "history": result.history.to_dict(orient="list"),
        "extras": result.extras,
    }
    torch.save(model.state_dict(), out_dir / f"rank{ctx.rank}.pt")

    def nan_on_rank_one(trained: nn.Module, batch: dict) -> torch.Tensor:
        loss = _mse(trained, batch)
        return loss * float("nan") if ctx.rank == 1 else loss

    try:
        train(model, loader, nan_on_rank_one, optimizer, settings)
        record["non_finite"] = "no error"
    except NonFiniteLossError as error:
        record["non_finite"] = str(error)
    (out_dir / f"rank{ctx.rank}.json").write_text(json.dumps(record))


@pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()), reason="needs torch.distributed+gloo"
)
def test_two_process_training_matches_across_ranks(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key not in {"RANK", "WORLD_SIZE"}}
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        __file__, str(tmp_path),
    ]  # fmt: skip
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    records = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    states = [torch.load(tmp_path / f"rank{rank}.pt", weights_only=True) for rank in (0, 1)]

    # same model everywhere (parameters and BatchNorm statistics), and it was trained
    assert states[0].keys() == states[1].keys()
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key
    torch.manual_seed(100)
    assert not torch.equal(states[0]["0.weight"], _tiny_model().state_dict()["0.weight"])
    # the caller's model, never the DDP wrapper: checkpoint keys as in a single process
    assert all(record["model_type"] == "Sequential" for record in records)
    assert records[0]["state_keys"] == sorted(_tiny_model().state_dict())

    # each rank read its own half of the items every epoch, in a new order each epoch
    for epoch in range(EPOCHS):
        first, second = (record["seen"][epoch] for record in records)
        assert len(first) == len(second) == DATASET_SIZE // 2
        assert sorted(first + second) == list(range(DATASET_SIZE))
    assert records[0]["seen"][0] != records[0]["seen"][1]

    # the history is global and identical on both ranks
    histories = [record["history"] for record in records]
    assert histories[0]["train_loss"] == histories[1]["train_loss"]
    assert histories[0]["items"] == [DATASET_SIZE] * EPOCHS
    assert histories[0]["steps"] == [DATASET_SIZE // 2 // BATCH_SIZE] * EPOCHS
    assert histories[0]["val_rank"] == histories[1]["val_rank"] == [0.5] * EPOCHS
    assert records[1]["extras"] == {"world_size": 2, "rank": 1}

    # a non-finite loss on one rank stops both, and the message says where
    assert "on items [item_" in records[1]["non_finite"]
    assert "on rank 1" in records[1]["non_finite"]
    assert "on another rank (this is rank 0)" in records[0]["non_finite"]


if __name__ == "__main__":
    _run_rank(Path(sys.argv[1]))
