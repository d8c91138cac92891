"""Tests for med_unlearning.unlearning.engine."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from pydantic import BaseModel
from tiny_task import TinyNet, TinyTask, make_batches, make_checkpoint

from med_unlearning.io.checkpoint import load_checkpoint, save_checkpoint
from med_unlearning.params.base import StrictModel
from med_unlearning.training import LoopSettings
from med_unlearning.unlearning import registry
from med_unlearning.unlearning.engine import (
    StrategyParameterError,
    combined_runs,
    model_from_checkpoint,
    prepare_strategy,
    run_unlearning,
)
from med_unlearning.unlearning.planning import UnlearningPlan, plan_unlearning
from med_unlearning.unlearning.registry import StrategyResult, UnlearningRun
from med_unlearning.unlearning.requests import (
    ForgetRequest,
    ForgetRequestError,
    ParentMismatchError,
)
from med_unlearning.unlearning.result import RECORD_SCHEMA, UnlearningSettings

FORGET_IDS = ["f_0", "f_1", "f_2", "f_3"]
RETAIN_IDS = ["r_0", "r_1", "r_2", "r_3", "r_4", "r_5"]
LOOP = LoopSettings(epochs=1, device="cpu", progress=False, description="test")


@pytest.fixture
def original() -> Any:
    torch.manual_seed(0)
    return make_checkpoint(TinyNet(), manifest=FORGET_IDS + RETAIN_IDS, wall_time_s=10.0)


@pytest.fixture
def oracle() -> Any:
    torch.manual_seed(1)
    return make_checkpoint(TinyNet(), manifest=RETAIN_IDS, wall_time_s=8.0)


def _run(
    original: Any,
    strategy: str = "nl_ft",
    params: Any = None,
    task: Any = None,
    *,
    forget_ids: list[str] = FORGET_IDS,
    others: Any = None,
    reference: Any = None,
    **settings: Any,
) -> Any:
    options = {"loop": LOOP, "seed": 3, **settings}
    return run_unlearning(
        UnlearningPlan.from_ids(forget_ids, RETAIN_IDS),
        UnlearningSettings(strategy, {"epochs": 2} if params is None else params, **options),
        task or TinyTask("recon"),
        original,
        make_batches("f", 4, seed=1, offset=2.0),
        make_batches("r", 6, seed=2),
        others=others,
        reference=reference,
    )


def test_new_checkpoint_records_its_lineage(original: Any, oracle: Any) -> None:
    outcome = _run(original, run_name="nl_ft_r10", variant="r10", reference=oracle)
    meta = outcome.checkpoint.metadata
    assert meta.parent_hash == original.content_hash
    assert meta.forget_ids == FORGET_IDS and meta.data_manifest == RETAIN_IDS
    assert meta.strategy == "nl_ft" and meta.strategy_params["epochs"] == 2
    assert meta.strategy_params["noise_scale"] == pytest.approx(0.1)
    assert meta.epochs == 2 and meta.seed == 3 and meta.wall_time_s > 0
    assert (
        meta.extra["unlearning"]["run"] == "nl_ft_r10"
        and meta.extra["unlearning"]["variant"] == "r10"
    )
    assert meta.extra["unlearning"]["fraction_of_retraining"] == pytest.approx(
        meta.wall_time_s / 8.0
    )
    assert outcome.checkpoint.content_hash != original.content_hash
    assert list(outcome.history["run"].unique()) == ["nl_ft_r10"]
    assert {"forget_noisy_loss", "retain_loss"} <= set(outcome.history.columns)


def test_erasure_record_is_json_and_complete(original: Any, oracle: Any) -> None:
    outcome = _run(
        original,
        reference=oracle,
        catalog_names={
            "parent": "recon.original.checkpoint",
            "checkpoint": "unlearning.recon.nl_ft.checkpoint",
        },
    )
    record = json.loads(json.dumps(outcome.record, allow_nan=False))
    assert record["schema"] == RECORD_SCHEMA
    assert record["parent"] == {
        "catalog": "recon.original.checkpoint",
        "hash": original.content_hash,
        "trained_on": 10,
        "wall_time_s": 10.0,
    }
    assert record["unlearned"]["hash"] == outcome.checkpoint.content_hash
    assert record["unlearned"]["catalog"] == "unlearning.recon.nl_ft.checkpoint"
    assert record["reference"]["hash"] == oracle.content_hash
    assert record["cost"]["retraining_wall_time_s"] == 8.0
    assert record["cost"]["fraction_of_retraining"] == pytest.approx(
        record["cost"]["wall_time_s"] / 8.0
    )
    assert record["request"]["forget_ids"] == FORGET_IDS and record["forget_ids"] == FORGET_IDS
    assert record["request"] == UnlearningPlan.from_ids(FORGET_IDS, RETAIN_IDS).request_record()
    assert record["params"]["epochs"] == 2 and record["verification"] is None


def test_original_checkpoint_file_is_unchanged(original: Any, tmp_path: Path) -> None:
    path = tmp_path / "original.safetensors"
    save_checkpoint(path, original)
    before = path.read_bytes()
    loaded = load_checkpoint(path)
    outcome = _run(loaded, strategy="ga_l1", params={"epochs": 2, "lr": 0.1})
    assert path.read_bytes() == before
    assert loaded.content_hash == original.content_hash
    assert outcome.checkpoint.content_hash != original.content_hash


def test_same_seed_same_model(original: Any) -> None:
    first = _run(original, seed=5).checkpoint.content_hash
    assert _run(original, seed=5).checkpoint.content_hash == first
    assert _run(original, seed=6).checkpoint.content_hash != first


def test_unknown_strategy_lists_the_valid_ones(original: Any) -> None:
    with pytest.raises(
        ValueError, match=r"Unknown unlearning strategy 'nl-ft'; valid: \[.*'nl_ft'"
    ):
        _run(original, strategy="nl-ft")


@pytest.mark.parametrize(
    ("strategy", "params", "key"),
    [
        ("nl", {"noise_scale": -1.0}, "nl.noise_scale"),
        ("ft", {"retain_fraction": 0.0}, "ft.retain_fraction"),
        ("ft", {"retain_fraction": 1.5}, "ft.retain_fraction"),
        ("nl_ft", {"noise": 0.1}, "nl_ft.noise"),
    ],
)
def test_out_of_range_parameters_name_the_key(
    original: Any, strategy: str, params: dict, key: str
) -> None:
    with pytest.raises(StrategyParameterError, match=key):
        _run(original, strategy=strategy, params=params)


class _NoParams(StrictModel):
    pass


def test_strategy_for_another_task_says_why(original: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = registry.StrategySpec(
        name="only_segmentation",
        fn=lambda run, params: StrategyResult(run.model),
        params_model=_NoParams,
        tasks=frozenset({"segmentation"}),
        needs_retain=False,
        family="baseline",
        description="needs class labels",
    )
    monkeypatch.setitem(registry._REGISTRY, "only_segmentation", spec)
    with pytest.raises(
        ValueError, match=r"does not apply to task 'recon'.*\['segmentation'\].*needs class labels"
    ):
        prepare_strategy("only_segmentation", {}, "recon")


def test_forget_ids_outside_the_manifest_are_a_parent_mismatch(original: Any) -> None:
    with pytest.raises(ParentMismatchError, match=r"\['k_9'\].*training manifest"):
        _run(original, forget_ids=["f_0", "k_9"])


def test_checkpoint_of_another_task_is_rejected(original: Any) -> None:
    with pytest.raises(ValueError, match="is a 'recon' model, not 'segmentation'"):
        _run(original, task=TinyTask("segmentation"))


def test_strategy_needing_retain_data_without_it_is_an_error(original: Any) -> None:
    with pytest.raises(ValueError, match="needs retain data"):
        run_unlearning(
            UnlearningPlan.from_ids(["f_0"]),
            UnlearningSettings("ft", {}, seed=0, loop=LOOP),
            TinyTask(),
            original,
            make_batches("f", 2),
            None,
        )


def test_strategy_without_retain_data_records_an_empty_manifest(original: Any) -> None:
    outcome = run_unlearning(
        UnlearningPlan.from_ids(FORGET_IDS),
        UnlearningSettings("nl", {}, seed=0, loop=LOOP),
        TinyTask(),
        original,
        make_batches("f", 4),
        None,
    )
    assert outcome.checkpoint.metadata.data_manifest == []
    assert outcome.record["retain_fraction"] is None


def test_a_strategy_that_modifies_the_frozen_copy_is_caught(
    original: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def vandal(run: UnlearningRun, params: BaseModel) -> StrategyResult:
        with torch.no_grad():
            next(run.frozen.parameters()).add_(1.0)
        return StrategyResult(run.model)

    spec = registry.StrategySpec(
        name="vandal",
        fn=vandal,
        params_model=_NoParams,
        tasks=frozenset({"recon"}),
        needs_retain=False,
        family="baseline",
        description="breaks the rules",
    )
    monkeypatch.setitem(registry._REGISTRY, "vandal", spec)
    with pytest.raises(RuntimeError, match="modified the frozen copy"):
        _run(original, strategy="vandal", params={})


def test_combined_runs_reach_the_strategy_as_frozen_models(
    original: Any, oracle: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def combine(run: UnlearningRun, params: BaseModel) -> StrategyResult:
        assert sorted(run.others) == ["ft", "nl"]
        seen["ft"] = run.others["ft"]
        return StrategyResult(run.others["ft"])

    spec = registry.StrategySpec(
        name="combine_test",
        fn=combine,
        params_model=_NoParams,
        tasks=frozenset({"recon"}),
        needs_retain=False,
        family="baseline",
        description="takes another run",
        combines=("ft",),
    )
    monkeypatch.setitem(registry._REGISTRY, "combine_test", spec)
    assert combined_runs("combine_test") == ("ft",)
    with pytest.raises(ValueError, match="its own run"):
        registry.register_strategy(
            "combine_test", _NoParams, family="baseline", description="x", combines=["combine_test"]
        )
    lazy_self = dataclasses.replace(spec, name="lazy_self", combines=lambda: ("lazy_self",))
    monkeypatch.setitem(registry._REGISTRY, "lazy_self", lazy_self)
    with pytest.raises(ValueError, match="its own run"):
        combined_runs("lazy_self")
    # "nl" would fail to rebuild (another task's checkpoint): only the runs used are rebuilt
    unusable = make_checkpoint(TinyNet(), task_name="segmentation", manifest=RETAIN_IDS)
    outcome = _run(
        original, strategy="combine_test", params={}, others={"ft": oracle, "nl": unusable}
    )
    assert set(seen) == {"ft"} and not seen["ft"].training
    assert outcome.checkpoint.content_hash == oracle.content_hash
    assert outcome.checkpoint.metadata.extra["unlearning"]["combined_runs"] == {
        "ft": oracle.content_hash,
        "nl": unusable.content_hash,
    }


def test_model_from_checkpoint_rejects_another_architecture(original: Any) -> None:
    task = TinyTask()
    task.architecture = "other"
    with pytest.raises(ValueError, match="holds tiny"):
        model_from_checkpoint(task, original)
    rebuilt = model_from_checkpoint(TinyTask(), original)
    assert all(torch.equal(rebuilt.state_dict()[k], v) for k, v in original.state_dict.items())


def test_plan_resolves_the_request_and_samples_the_retain_subset() -> None:
    metadata = pd.DataFrame(
        {"volume_id": FORGET_IDS + RETAIN_IDS, "anatomy": ["knee"] * 4 + ["brain"] * 6}
    )
    splits = pd.DataFrame(
        {"volume_id": FORGET_IDS + RETAIN_IDS, "role": ["forget_train"] * 4 + ["retain_train"] * 6}
    )
    plan = plan_unlearning(
        ForgetRequest(column="role", values=("forget_train",)),
        metadata,
        splits,
        FORGET_IDS + RETAIN_IDS,
        id_column="volume_id",
        needs_retain=True,
        retain_fraction=0.5,
        seed=0,
        expected_manifest=FORGET_IDS + RETAIN_IDS,
    )
    assert plan.forget_ids == FORGET_IDS
    assert len(plan.retain_ids) == 3 and set(plan.retain_ids) <= set(RETAIN_IDS)
    assert plan.request_record()["n_retain_used"] == 3
    no_retain = plan_unlearning(
        ForgetRequest(column="anatomy", values=("knee",)),
        metadata,
        splits,
        FORGET_IDS + RETAIN_IDS,
        id_column="volume_id",
        needs_retain=False,
        retain_fraction=0.5,
        seed=0,
    )
    assert no_retain.retain_ids == [] and no_retain.retain_fraction is None
    with pytest.raises(ParentMismatchError, match="other data than the splits table"):
        plan_unlearning(
            ForgetRequest(column="anatomy", values=("knee",)),
            metadata,
            splits,
            FORGET_IDS + RETAIN_IDS[:-1],
            id_column="volume_id",
            needs_retain=True,
            retain_fraction=0.5,
            seed=0,
            expected_manifest=FORGET_IDS + RETAIN_IDS,
        )
    with pytest.raises(ForgetRequestError, match="group_column|patient"):
        plan_unlearning(
            ForgetRequest(column="anatomy", values=("knee",)),
            metadata,
            splits,
            FORGET_IDS + RETAIN_IDS,
            id_column="volume_id",
            needs_retain=True,
            retain_fraction=0.5,
            seed=0,
            group_column="patient",
        )


def test_the_frozen_original_is_built_on_first_use_only() -> None:
    from med_unlearning.unlearning.registry import built_frozen

    built = []

    def build() -> torch.nn.Module:
        built.append(True)
        return TinyNet()

    run = UnlearningRun(
        model=TinyNet(), frozen=build, task=TinyTask("recon"), forget_loader=[],
        retain_loader=None, loop=LoopSettings(epochs=1, device="cpu", progress=False),
        seed=0, generator=torch.Generator(),
    )  # fmt: skip
    assert built_frozen(run) is None and not built  # a strategy that never reads it
    first = run.frozen
    assert run.frozen is first and built == [True]  # built once, then kept
    assert built_frozen(run) is first
    given = TinyNet()
    assert dataclasses.replace(run, frozen=given).frozen is given  # a model is taken as is


def test_building_the_frozen_original_mid_run_leaves_the_rng_and_the_weights_alone() -> None:
    from med_unlearning.unlearning.engine import _frozen_original

    torch.manual_seed(3)
    original = make_checkpoint(TinyNet(), manifest=["f_0"])
    state = torch.get_rng_state()
    frozen = _frozen_original(TinyTask("recon"), original, torch.device("cpu"))
    assert torch.equal(torch.get_rng_state(), state)  # a strategy's next draws are unchanged
    assert not frozen.training
    assert not any(parameter.requires_grad for parameter in frozen.parameters())
    for name, tensor in frozen.state_dict().items():
        assert torch.equal(tensor, original.state_dict[name])
