"""Which models the evaluation scores, and how alias runs and costs enter its tables."""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn

from med_unlearning.io.checkpoint import CheckpointMetadata, ModelCheckpoint
from med_unlearning.metrics.scoring import (
    RECON_SETS,
    RESULT_COLUMNS,
    SEGMENTATION_SETS,
    ModelScores,
)
from med_unlearning.metrics.task_scores import alias_of, collect_task_scores, merged_label
from med_unlearning.pipelines.evaluation.nodes import make_recon_score_node
from med_unlearning.pipelines.evaluation.pipeline import _expected_methods, evaluated_models


def _scores(method: str, wall_time: float) -> ModelScores:
    results = pd.DataFrame(
        [{"task": "recon", "method": method, "set": "forget_val", "item_id": "k1",
          "metric": "psnr", "value": 20.0, "higher_is_better": True,
          "retain_fraction": float("nan"), "epochs": float("nan")}],
        columns=list(RESULT_COLUMNS),
    )
    return ModelScores(results=results, cost={"task": "recon", "method": method,
                                              "wall_time_s": wall_time})


def _alias_checkpoint(
    run: str, target: str, strategy_params: dict[str, float] | None = None
) -> ModelCheckpoint:
    return ModelCheckpoint(
        state_dict={},
        metadata=CheckpointMetadata(
            task="recon", architecture="varnet", architecture_params={}, data_manifest=["b1"],
            strategy="nl_ft", wall_time_s=0.0, extra={"alias_of": target, "run": run},
            strategy_params=strategy_params,
        ),
    )


def test_every_task_scores_reference_and_seed_repeats() -> None:
    recon, segmentation = evaluated_models("recon"), evaluated_models("segmentation")
    assert recon["reference"] == ("recon.reference.checkpoint", None)
    assert segmentation["reference"] == ("segmentation.reference.checkpoint", None)
    assert recon["nl_ft@seed1"] == ("unlearning.recon.nl_ft_seed1.checkpoint", "seed")
    assert {"ga_l1_ft@seed2", "nl_ft@seed2"} <= set(recon)
    assert {"noisy_label@seed1", "noisy_label@seed2"} <= set(segmentation)


def test_validation_sets_are_scored() -> None:
    assert RECON_SETS["retain_val"] == ("retain_val",)
    assert RECON_SETS["forget_val"] == ("forget_val",)
    assert SEGMENTATION_SETS["val"] == ("retain_val", "forget_val")


def test_alias_runs_are_not_scored_and_merge_into_the_run_they_equal() -> None:
    checkpoint = _alias_checkpoint("nl_ft_r5", "nl_ft_r1")
    assert alias_of(checkpoint) == "nl_ft@r1"
    alias = make_recon_score_node("nl_ft@r5", "retain_fraction")(checkpoint, {}, None, {}, {})
    assert alias.results.empty and alias.cost["alias_of"] == "nl_ft@r1"
    also = make_recon_score_node("nl_ft@r10", "retain_fraction")(
        _alias_checkpoint("nl_ft_r10", "nl_ft_r1"), {}, None, {}, {}
    )
    results, costs, _, _ = collect_task_scores(
        **{"nl_ft_at_r1": _scores("nl_ft@r1", 2.0), "nl_ft_at_r5": alias,
           "nl_ft_at_r10": also, "oracle": _scores("oracle", 9.0)}
    )
    assert set(results["method"]) == {"nl_ft@r1", "oracle"}
    assert list(costs["method"]) == ["nl_ft@r1", "oracle"]
    merged = costs.set_index("method")["merged"].to_dict()
    assert merged == {"nl_ft@r1": "r1 = r5 = r10", "oracle": ""}
    assert costs["seed"].isna().all()  # these fake scores record no seed
    expected = _expected_methods(costs, None)
    assert "nl_ft@r1" in expected["recon"]
    assert not {"nl_ft@r5", "nl_ft@r10"} & set(expected["recon"])
    assert "nl_ft@r20" in expected["recon"]


def test_merged_label() -> None:
    assert merged_label("ft@r1", []) == ""
    assert merged_label("ft@r1", ["ft@r5"]) == "r1 = r5"
    assert merged_label("ft@r1", ["ft@r50", "ft@r10", "ft@r5"]) == "r1 = r5 = r10 = r50"


def test_a_real_checkpoint_is_no_alias() -> None:
    model = nn.Linear(2, 2)
    checkpoint = ModelCheckpoint(
        state_dict={k: v.detach().clone() for k, v in model.state_dict().items()},
        metadata=CheckpointMetadata(
            task="recon", architecture="varnet", architecture_params={}, data_manifest=["b1"]
        ),
    )
    assert alias_of(checkpoint) is None
    assert torch.is_tensor(next(iter(checkpoint.state_dict.values())))


def test_alias_records_are_verified_with_the_figures_of_the_run_they_equal() -> None:
    from med_unlearning.metrics.erasure_verification import verify_erasure_requests

    summary = pd.DataFrame(
        [{"task": "recon", "method": "nl_ft@r1", "set": "forget_val", "metric": "psnr",
          "mean": 20.0, "std": 1.0, "n": 4}]
    )
    verdicts = pd.DataFrame([{"task": "recon", "method": "nl_ft@r1", "forgot": "yes"}])
    membership = pd.DataFrame(columns=["task", "method"])
    records = {
        "nl_ft_r5": lambda: {"strategy": "nl_ft", "variant": "r5", "alias_of": "nl_ft_r1"},
        "nl_ft_r20": lambda: {"strategy": "nl_ft", "variant": "r20"},
    }
    verified = verify_erasure_requests(records, verdicts, summary, membership, "recon")
    alias = verified["nl_ft_r5"]["verification"]
    figures = alias["metrics"]["forget_val/psnr"]
    assert (figures["mean"], figures["std"], figures["n"]) == (20.0, 1.0, 4)
    assert alias["verdict"]["forgot"] == "yes"
    assert verified["nl_ft_r20"]["verification"]["verdict"] is None


def test_each_runs_settings_source_reaches_the_verdicts() -> None:
    from med_unlearning.metrics.verdicts import recorded_settings_sources, settings_selected_on

    tuned = _scores("nl_ft", 2.0)
    tuned.cost["settings_source"] = "recorded tuning run, objective oracle"
    _, costs, _, _ = collect_task_scores(nl_ft=tuned, oracle=_scores("oracle", 9.0))
    sources = recorded_settings_sources(costs)
    assert sources == {"recon/nl_ft": "recorded tuning run, objective oracle"}
    assert settings_selected_on("nl_ft", sources, "recon").startswith("recorded tuning run")
    assert settings_selected_on("nl_ft", sources, "segmentation") == "conf defaults (not tuned)"


def test_an_alias_of_the_main_run_is_its_sweep_point_with_the_main_runs_figures() -> None:
    checkpoint = _alias_checkpoint("nl_ft_r10", "nl_ft", {"retain_fraction": 0.1})
    assert alias_of(checkpoint) == "nl_ft"
    alias = make_recon_score_node("nl_ft@r10", "retain_fraction")(checkpoint, {}, None, {}, {})
    assert alias.results.empty  # nothing scored twice
    results, costs, _, _ = collect_task_scores(
        **{"nl_ft": _scores("nl_ft", 7.0), "nl_ft_at_r10": alias, "oracle": _scores("oracle", 9.0)}
    )
    point = results.loc[results["method"] == "nl_ft@r10"]
    main = results.loc[results["method"] == "nl_ft"]
    assert len(point) == len(main) == 1
    assert point["value"].tolist() == main["value"].tolist()
    assert point["retain_fraction"].tolist() == [0.1]  # on the sweep's curve
    assert main["retain_fraction"].isna().all()  # the main run stays a main method
    assert costs.set_index("method")["wall_time_s"].to_dict() == {
        "nl_ft": 7.0, "nl_ft@r10": 7.0, "oracle": 9.0,
    }
