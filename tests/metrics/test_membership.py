"""Membership-inference attack: separable, indistinguishable, tiny and malformed inputs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from med_unlearning.metrics.membership import (
    MEMBERSHIP_COLUMNS,
    MembershipInputError,
    loss_features,
    membership_attacks,
    membership_attacks_from_params,
    membership_inference_attack,
)
from med_unlearning.params.evaluation import EvaluationParams


def test_members_with_clearly_lower_loss_are_detected() -> None:
    rng = np.random.default_rng(0)
    members = rng.normal(0.1, 0.03, 60)
    nonmembers = rng.normal(0.4, 0.05, 80)
    result = membership_inference_attack(members, nonmembers, seed=3)
    assert result.accuracy_mean > 0.8
    assert result.auc_mean > 0.8
    assert (result.n_members, result.n_nonmembers) == (60, 80)
    assert result.n_splits == 5


def test_identical_distributions_give_chance_accuracy() -> None:
    accuracies = []
    for seed in range(5):
        rng = np.random.default_rng(100 + seed)
        members = rng.normal(0.3, 0.1, (150, 2))
        nonmembers = rng.normal(0.3, 0.1, (150, 2))
        accuracies.append(membership_inference_attack(members, nonmembers, seed=seed).accuracy_mean)
    assert abs(np.mean(accuracies) - 0.5) < 0.15


def test_second_feature_carries_the_signal() -> None:
    rng = np.random.default_rng(1)
    noise_members, noise_nonmembers = rng.normal(0, 1, 50), rng.normal(0, 1, 50)
    members = np.c_[noise_members, rng.normal(0.0, 0.05, 50)]
    nonmembers = np.c_[noise_nonmembers, rng.normal(1.0, 0.05, 50)]
    assert membership_inference_attack(members, nonmembers, seed=0).accuracy_mean > 0.9
    only_noise = membership_inference_attack(noise_members, noise_nonmembers, seed=0)
    assert only_noise.accuracy_mean < 0.75


def test_fixed_seed_is_deterministic() -> None:
    rng = np.random.default_rng(2)
    members, nonmembers = rng.normal(0.2, 0.1, 30), rng.normal(0.3, 0.1, 45)
    first = membership_inference_attack(members, nonmembers, seed=7, n_repeats=3)
    second = membership_inference_attack(members, nonmembers, seed=7, n_repeats=3)
    assert first == second
    assert first.n_splits == 15


def test_few_items_reduce_the_folds_and_say_so() -> None:
    members, nonmembers = [0.10, 0.12, 0.11], [0.50, 0.52, 0.55, 0.60]
    result = membership_inference_attack(members, nonmembers, n_splits=5, seed=0)
    per_class = min(len(members), len(nonmembers))
    assert result.n_splits == per_class
    assert f"{per_class}-fold" in result.note
    assert "balanced" in result.note
    assert result.accuracy_mean == pytest.approx(1.0)


@pytest.mark.parametrize("members", [[0.1], [], [np.nan, 0.2]])
def test_fewer_than_two_items_per_class_is_nan_with_reason(members: list[float]) -> None:
    result = membership_inference_attack(members, [0.5, 0.6, 0.7], seed=0)
    assert math.isnan(result.accuracy_mean) and math.isnan(result.auc_mean)
    assert result.n_splits == 0
    assert "at least 2 items per class" in result.note


def test_non_finite_items_are_dropped_and_counted() -> None:
    members = [0.1, np.inf, 0.12, 0.11, np.nan]
    result = membership_inference_attack(members, [0.5, 0.6, 0.7], seed=0)
    assert result.n_members == 3
    assert "2 item(s) with non-finite features dropped" in result.note


def test_malformed_features_raise() -> None:
    with pytest.raises(MembershipInputError, match="nonmember_features"):
        membership_inference_attack(np.zeros((4, 2)), np.zeros((4, 2, 2)))
    with pytest.raises(MembershipInputError, match="2 features per item.*but nonmember"):
        membership_inference_attack(np.zeros((4, 2)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="n_splits"):
        membership_inference_attack([0.1, 0.2], [0.3, 0.4], n_splits=1)


def _tidy(method: str, set_name: str, ssim: list[float], nmse: list[float]) -> list[dict]:
    rows = []
    for index, (ssim_value, nmse_value) in enumerate(zip(ssim, nmse, strict=True)):
        for metric, value, higher in (("ssim", ssim_value, True), ("nmse", nmse_value, False)):
            rows.append(
                {
                    "task": "recon",
                    "method": method,
                    "set": set_name,
                    "item_id": f"{set_name}-{index}",
                    "metric": metric,
                    "value": value,
                    "higher_is_better": higher,
                }
            )
    return rows


@pytest.fixture
def attack_table() -> pd.DataFrame:
    rng = np.random.default_rng(5)

    def draw(ssim: float, spread: float, nmse: tuple[float, float]) -> tuple:
        return ssim + rng.normal(0, spread, 20), rng.uniform(*nmse, 20)

    rows = []
    # original: remembers its training knees (low loss) but not the unseen ones
    rows += _tidy("original", "forget_train", *draw(0.95, 0.005, (0.01, 0.02)))
    rows += _tidy("original", "forget_test", *draw(0.80, 0.005, (0.05, 0.06)))
    # oracle: never saw them; both sets come from one distribution
    rows += _tidy("oracle", "forget_train", *draw(0.80, 0.01, (0.04, 0.06)))
    rows += _tidy("oracle", "forget_test", *draw(0.80, 0.01, (0.04, 0.06)))
    # a run without its non-member results
    rows += _tidy("nl_ft", "forget_train", *draw(0.80, 0.01, (0.04, 0.06)))
    return pd.DataFrame(rows)


def test_loss_features_turn_scores_into_losses(attack_table: pd.DataFrame) -> None:
    features = loss_features(attack_table, "recon", "original", "forget_train", ["ssim", "nmse"])
    rows = attack_table.query("method == 'original' and set == 'forget_train'")
    ssim = rows.loc[rows["metric"] == "ssim"].set_index("item_id")["value"]
    nmse = rows.loc[rows["metric"] == "nmse"].set_index("item_id")["value"]
    np.testing.assert_allclose(features["ssim"], 1.0 - ssim.loc[features.index])
    np.testing.assert_allclose(features["nmse"], nmse.loc[features.index])
    assert list(features.columns) == ["ssim", "nmse"]


def test_psnr_feature_is_negated() -> None:
    table = pd.DataFrame(
        {"task": "recon", "method": "m", "set": "s", "item_id": ["a", "b"], "metric": "psnr",
         "value": [30.0, 35.0], "higher_is_better": True}
    )  # fmt: skip
    features = loss_features(table, "recon", "m", "s", ["psnr"])
    np.testing.assert_allclose(features["psnr"], [-30.0, -35.0])


def test_attacks_per_method_from_the_tidy_table(attack_table: pd.DataFrame) -> None:
    table = membership_attacks(
        attack_table, {"recon": ("forget_train", "forget_test", ["ssim", "nmse"])}, seed=0
    )
    assert list(table.columns) == list(MEMBERSHIP_COLUMNS)
    by_method = table.set_index("method")
    assert by_method.at["original", "accuracy_mean"] > 0.8
    assert abs(by_method.at["oracle", "accuracy_mean"] - 0.5) < 0.25
    assert math.isnan(by_method.at["nl_ft", "accuracy_mean"])
    assert "forget_test" in by_method.at["nl_ft", "note"]
    assert by_method.at["original", "features"] == "ssim+nmse"


def test_attacks_from_params_use_the_configured_sets(attack_table: pd.DataFrame) -> None:
    params = EvaluationParams.model_validate({"membership": {"n_splits": 3, "seed": 1}})
    table = membership_attacks_from_params(attack_table, params)
    assert set(table["method"]) == {"original", "oracle", "nl_ft"}
    assert set(table["member_set"]) == {params.tasks["recon"].attack.member_set}
    original = table.set_index("method").loc["original"]
    assert original["n_splits"] == 3 * params.membership.n_repeats
