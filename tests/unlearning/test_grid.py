"""Tests for med_unlearning.unlearning.grid (the study's run grid)."""

from __future__ import annotations

import pytest

from med_unlearning.params.base import StrictModel
from med_unlearning.unlearning import registry
from med_unlearning.unlearning.grid import (
    HORIZON_SWEEP,
    RETAIN_SWEEP,
    UnlearningRunSpec,
    study_runs,
)
from med_unlearning.unlearning.registry import StrategyResult, StrategySpec, available_strategies


def test_one_main_run_per_applicable_strategy() -> None:
    for task in ("recon", "segmentation"):
        main = [spec.run for spec in study_runs(task) if spec.sweep is None and not spec.combines]
        combining = {spec.strategy for spec in study_runs(task) if spec.combines}
        assert sorted(main) == sorted(set(available_strategies(task)) - combining)


def test_recon_retain_fraction_sweep() -> None:
    runs = {spec.run: spec for spec in study_runs("recon") if spec.sweep is RETAIN_SWEEP}
    expected = {
        f"{name}_{variant}"
        for name in ("ft", "nl_ft", "ga_l1_ft")
        for variant in RETAIN_SWEEP.variants
    }
    assert set(runs) == expected
    assert runs["nl_ft_r10"].namespace == "unlearning.recon.nl_ft_r10"
    assert runs["nl_ft_r10"].dataset("checkpoint") == "unlearning.recon.nl_ft_r10.checkpoint"
    assert not any(spec.sweep is HORIZON_SWEEP for spec in study_runs("recon"))


def test_segmentation_horizons_cover_the_segmentation_study_family() -> None:
    runs = [spec for spec in study_runs("segmentation") if spec.sweep is HORIZON_SWEEP]
    swept = {spec.strategy for spec in runs}
    assert {"noisy_label", "max_loss", "retain_label"} <= swept
    assert all(registry.get_strategy(name).family == "segmentation_study" for name in swept)
    assert {spec.run for spec in runs if spec.strategy == "noisy_label"} == {
        "noisy_label_short",
        "noisy_label_long",
    }


class _NoParams(StrictModel):
    pass


def test_new_strategies_and_combinations_join_the_grid(monkeypatch: pytest.MonkeyPatch) -> None:
    def noop(run, params):  # type: ignore[no-untyped-def]
        return StrategyResult(run.model)

    for name, tasks, combines in (
        ("extra_one", {"recon"}, ()),
        ("merge_two", {"recon", "segmentation"}, ("extra_one", "ft")),
    ):
        monkeypatch.setitem(
            registry._REGISTRY,
            name,
            StrategySpec(
                name, noop, _NoParams, frozenset(tasks), False, "baseline", "test", combines
            ),
        )
    recon = {spec.run: spec for spec in study_runs("recon")}
    assert "extra_one" in recon
    assert recon["merge_two"].combines == ("extra_one", "ft")
    assert list(recon)[-1] == "merge_two"  # combining runs come after the runs they combine
    assert "merge_two" not in {
        spec.run for spec in study_runs("segmentation")
    }  # extra_one is recon-only


def test_run_spec_names() -> None:
    spec = UnlearningRunSpec("segmentation", "noisy_label", HORIZON_SWEEP, "long")
    assert spec.run == "noisy_label_long"
    assert "unlearning.segmentation.noisy_label_long" in repr(spec)
