"""The run grid's evidence rules: seed repeats, a fixed forget budget over the retain sweep,
aliases for fractions that resolve to the same retain subset, one cost rule."""

from __future__ import annotations

import time
from typing import Any

import pytest
import torch
from tiny_task import TinyNet, TinyTask, make_batches, make_checkpoint

from med_unlearning.params.unlearning import ReconUnlearningParams, SegmentationUnlearningParams
from med_unlearning.training import LoopSettings, train
from med_unlearning.unlearning.engine import alias_outcome, run_unlearning
from med_unlearning.unlearning.grid import (
    RETAIN_SWEEP,
    SEED_SWEEP,
    UnlearningRunSpec,
    study_runs,
)
from med_unlearning.unlearning.planning import UnlearningPlan, alias_target
from med_unlearning.unlearning.requests import sample_retain_subset
from med_unlearning.unlearning.result import UnlearningSettings

FORGET_IDS = ["f_0", "f_1", "f_2", "f_3"]
RETAIN_IDS = [f"r_{index}" for index in range(6)]
LOOP = LoopSettings(epochs=1, device="cpu", progress=False, description="test")


@pytest.fixture
def original() -> Any:
    torch.manual_seed(0)
    return make_checkpoint(TinyNet(), manifest=FORGET_IDS + RETAIN_IDS, wall_time_s=10.0)


def _spec(task: str, run: str) -> UnlearningRunSpec:
    return next(spec for spec in study_runs(task) if spec.run == run)


def test_seed_repeats_of_the_main_methods_are_runs_of_the_grid() -> None:
    recon = {spec.run: spec for spec in study_runs("recon")}
    for strategy in ("nl_ft", "ga_l1_ft"):
        for variant in ("seed1", "seed2"):
            spec = recon[f"{strategy}_{variant}"]
            assert spec.sweep is SEED_SWEEP and spec.strategy == strategy
    segmentation = {spec.run for spec in study_runs("segmentation")}
    assert {"noisy_label_seed1", "noisy_label_seed2"} <= segmentation


def test_seed_repeat_changes_only_the_run_seed() -> None:
    params = ReconUnlearningParams(seed=None, seeds={"seed1": 3, "seed2": 7})
    main, repeat = _spec("recon", "nl_ft"), _spec("recon", "nl_ft_seed2")
    assert params.run_seed(main, 42) == 42
    assert params.run_seed(repeat, 42) == 49
    assert params.raw_strategy_params(repeat) == params.raw_strategy_params(main)
    assert ReconUnlearningParams(seed=5).run_seed(_spec("recon", "nl_ft_seed1"), 42) == 6


@pytest.mark.parametrize(
    "seeds", [{"seed1": 1}, {"seed1": 1, "seed2": 1}, {"seed1": 0, "seed2": 2}]
)
def test_seed_offsets_are_validated(seeds: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="seed"):
        SegmentationUnlearningParams(seeds=seeds)


def test_retain_sweep_pairs_by_the_forget_side() -> None:
    params = ReconUnlearningParams(
        strategies={"nl_ft": {"pairing": "longest"}, "ga_l1_ft": {"pairing": "longest"}}
    )
    for run in ("nl_ft_r10", "nl_ft_r100", "ga_l1_ft_r1", "ga_l1_ft_r50"):
        assert params.strategy_params(_spec("recon", run)).pairing == "forget", run
    assert "pairing" not in params.raw_strategy_params(_spec("recon", "ft_r50"))  # no forget side
    assert params.strategy_params(_spec("recon", "nl_ft")).pairing == "longest"  # main: as set


def test_a_sweep_point_with_the_main_runs_settings_is_the_main_run() -> None:
    same = {"retain_fraction": 0.1, "pairing": "forget"}
    params = ReconUnlearningParams(strategies={"nl_ft": same, "ft": {"retain_fraction": 0.1}})
    assert params.equals_main_run(_spec("recon", "nl_ft_r10"))
    assert params.equals_main_run(_spec("recon", "ft_r10"))
    assert not params.equals_main_run(_spec("recon", "nl_ft_r20"))  # another fraction
    assert not params.equals_main_run(_spec("recon", "nl_ft"))  # not a sweep point
    assert not params.equals_main_run(_spec("recon", "nl_ft_seed1"))  # another seed
    longest = ReconUnlearningParams(
        strategies={"nl_ft": {"retain_fraction": 0.1, "pairing": "longest"}}
    )
    assert not longest.equals_main_run(_spec("recon", "nl_ft_r10"))  # the sweep pairs by forget


def test_ft_on_all_retain_data_with_full_fts_settings_is_the_full_ft_run() -> None:
    params = ReconUnlearningParams(
        strategies={"ft": {"epochs": 1, "retain_fraction": 0.1}, "full_ft": {"epochs": 1}}
    )
    assert params.equal_all_retain_run(_spec("recon", "ft_r100")) == "full_ft"
    assert params.equal_all_retain_run(_spec("recon", "ft_r50")) is None  # a subset
    assert params.equal_all_retain_run(_spec("recon", "nl_ft_r100")) is None  # no such twin
    assert params.equal_all_retain_run(_spec("recon", "full_ft")) is None  # not a sweep point
    longer = ReconUnlearningParams(
        strategies={"ft": {"epochs": 1, "retain_fraction": 0.1}, "full_ft": {"epochs": 2}}
    )
    assert longer.equal_all_retain_run(_spec("recon", "ft_r100")) is None  # other settings
    unknown = ReconUnlearningParams(strategies={"ft": {"epochs": 1, "retain_fraction": 0.1}})
    assert unknown.equal_all_retain_run(_spec("recon", "ft_r100")) is None  # no full_ft block


def test_a_retain_sweep_run_reads_its_all_retain_twins_parameters() -> None:
    from med_unlearning.pipelines.unlearning.pipeline import run_parameters

    assert _spec("recon", "ft_r100").all_retain_twins == ("full_ft",)
    assert run_parameters(_spec("recon", "ft_r100"))["twin_full_ft"] == (
        "params:unlearning.recon.strategies.full_ft"
    )
    assert _spec("recon", "nl_ft_r100").all_retain_twins == ()
    assert _spec("recon", "ft").all_retain_twins == ()  # a main run is nobody's alias


def test_ft_at_fraction_one_trains_exactly_what_full_ft_trains(original: Any) -> None:
    """The alias ft_r100 -> full_ft rests on this: same settings, same seed, same weights."""
    params = ReconUnlearningParams(strategies={"ft": {"epochs": 1}, "full_ft": {"epochs": 1}})
    weights = {}
    for run, strategy in (("ft_r100", "ft"), ("full_ft", "full_ft")):
        outcome = run_unlearning(
            UnlearningPlan.from_ids(FORGET_IDS, RETAIN_IDS),
            UnlearningSettings(strategy, params.strategy_params(_spec("recon", run)), seed=3,
                               loop=LOOP),
            TinyTask("recon"), original, make_batches("f", 4, seed=1),
            make_batches("r", 6, seed=2),
        )  # fmt: skip
        weights[run] = outcome.checkpoint.content_hash
    assert weights["ft_r100"] == weights["full_ft"] != original.content_hash


def test_r10_and_r100_of_ga_l1_ft_take_the_same_forget_steps(original: Any) -> None:
    params = ReconUnlearningParams(strategies={"ga_l1_ft": {"epochs": 1}})
    retain = make_batches("r", 6, seed=2)  # three batches of two
    steps = {}
    for variant, batches in (("r10", retain[:1]), ("r100", retain)):
        typed = params.strategy_params(_spec("recon", f"ga_l1_ft_{variant}"))
        outcome = run_unlearning(
            UnlearningPlan.from_ids(FORGET_IDS, RETAIN_IDS),
            UnlearningSettings("ga_l1_ft", typed, seed=3, loop=LOOP),
            TinyTask("recon"), original, make_batches("f", 4, seed=1, offset=2.0), batches,
        )
        steps[variant] = int(outcome.history["steps"].sum())
    assert steps["r10"] == steps["r100"] == 2  # the two forget batches, at every fraction


def test_alias_target_finds_the_smallest_fraction_with_the_same_subset() -> None:
    fractions = dict(zip(RETAIN_SWEEP.variants, (0.01, 0.05, 0.10, 0.20, 0.50, 1.0), strict=True))
    pool = [f"v{index:02d}" for index in range(20)]

    def subset(fraction: float) -> list[str]:
        return sample_retain_subset(pool, fraction, seed=0)

    # 1 % and 5 % of 20 volumes are both one volume: r5 repeats r1; r1 and r10 are new
    assert alias_target("r5", fractions, subset) == "r1"
    assert alias_target("r1", fractions, subset) is None
    assert alias_target("r10", fractions, subset) is None
    assert alias_target("r100", fractions, subset) is None
    same = {**fractions, "r20": 0.10}  # equal fractions: the later variant is the alias
    assert alias_target("r20", same, subset) == "r10"
    assert alias_target("r10", same, subset) is None


def test_alias_outcome_records_the_run_it_repeats_at_no_cost(original: Any) -> None:
    typed = ReconUnlearningParams().strategy_params(_spec("recon", "nl_ft_r5"))
    outcome = alias_outcome(
        UnlearningPlan.from_ids(FORGET_IDS, RETAIN_IDS[:1]),
        UnlearningSettings("nl_ft", typed, seed=3, run_name="nl_ft_r5", variant="r5"),
        original, task_name="recon", alias_of="nl_ft_r1",
    )
    meta = outcome.checkpoint.metadata
    assert meta.extra["alias_of"] == "nl_ft_r1" and meta.wall_time_s == 0.0
    assert outcome.checkpoint.state_dict == {}  # no weights: use nl_ft_r1's
    assert meta.data_manifest == RETAIN_IDS[:1] and meta.forget_ids == FORGET_IDS
    assert outcome.record["alias_of"] == "nl_ft_r1" and outcome.record["cost"]["wall_time_s"] == 0


def test_composite_runs_add_their_components_costs(original: Any) -> None:
    start = make_checkpoint(TinyNet(), manifest=RETAIN_IDS, wall_time_s=3.0)
    end = make_checkpoint(TinyNet(), manifest=RETAIN_IDS, wall_time_s=5.0)
    unused = make_checkpoint(TinyNet(), manifest=RETAIN_IDS, wall_time_s=100.0)
    outcome = run_unlearning(
        UnlearningPlan.from_ids(FORGET_IDS),
        UnlearningSettings(
            "interpolation", {"start_run": "ft", "end_run": "nl_ft", "t": 0.5}, seed=3, loop=LOOP
        ),
        TinyTask("recon"), original, make_batches("f", 4, seed=1), None,
        others={"ft": start, "nl_ft": end, "ssd": unused},
    )
    cost = outcome.record["cost"]
    assert cost["component_wall_time_s"] == {"ft": 3.0, "nl_ft": 5.0}
    assert cost["wall_time_s"] == pytest.approx(cost["own_wall_time_s"] + 8.0)
    assert outcome.checkpoint.metadata.wall_time_s == pytest.approx(cost["wall_time_s"])


def test_training_wall_time_excludes_validation() -> None:
    torch.manual_seed(0)
    model = TinyNet()
    task = TinyTask("recon")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

    def slow_validation(trained: Any) -> dict[str, float]:
        time.sleep(0.3)
        return {"val_loss": 0.0}

    settings = LoopSettings(epochs=2, device="cpu", progress=False, description="cost")
    result = train(
        model, make_batches("r", 6, seed=2), task.loss, optimizer, settings,
        validate=slow_validation,
    )
    assert (result.history["val_time_s"] >= 0.3).all()
    assert result.wall_time_s < 0.3  # two validations of 0.3 s are not in the cost
    assert result.wall_time_s > 0
