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
    slice_loss_features,
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


def _params(granularity: str, **membership: int) -> EvaluationParams:
    data = EvaluationParams().model_dump()
    for task in data["tasks"].values():
        task["attack"]["granularity"] = granularity
    data["membership"].update(membership)
    return EvaluationParams.model_validate(data)


def test_attacks_from_params_use_the_configured_sets(attack_table: pd.DataFrame) -> None:
    params = _params("volume", n_splits=3, seed=1)
    table = membership_attacks_from_params(attack_table, params)
    assert set(table["method"]) == {"original", "oracle", "nl_ft"}
    assert set(table["member_set"]) == {params.tasks["recon"].attack.member_set}
    original = table.set_index("method").loc["original"]
    assert original["n_splits"] == 3 * params.membership.n_repeats


# ------------------------------------------------------------------------------------------
# Per-slice items


def _slices(
    method: str, set_name: str, volumes: int, ssim: tuple[float, float], rng: np.random.Generator,
    slices_per_volume: int = 8,
) -> list[dict]:
    """Per-slice rows of ``volumes`` volumes; SSIM ~ N(mean, spread), NMSE = (1 − SSIM) / 2."""
    rows = []
    for volume in range(volumes):
        for index in range(slices_per_volume):
            value = float(rng.normal(*ssim))
            for metric, metric_value, higher in (
                ("ssim", value, True), ("nmse", (1 - value) / 2, False)
            ):
                rows.append(
                    {"task": "recon", "method": method, "set": set_name,
                     "item_id": f"{set_name}-{volume}", "slice": index, "metric": metric,
                     "value": metric_value, "higher_is_better": higher}
                )  # fmt: skip
    return rows


@pytest.fixture
def slice_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-volume results listing the methods, per-slice table) with 2 volumes per set."""
    rng = np.random.default_rng(11)
    rows = []
    rows += _slices("original", "forget_train", 2, (0.95, 0.01), rng)
    rows += _slices("original", "forget_test", 2, (0.80, 0.01), rng)
    rows += _slices("oracle", "forget_train", 2, (0.80, 0.02), rng)
    rows += _slices("oracle", "forget_test", 2, (0.80, 0.02), rng)
    slices = pd.DataFrame(rows)
    volumes = (
        slices.groupby(["task", "method", "set", "item_id", "metric", "higher_is_better"])
        ["value"].mean().reset_index()
    )  # fmt: skip
    return volumes, slices


def test_slice_loss_features_index_slices_and_turn_scores_into_losses(
    slice_tables: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    _, slices = slice_tables
    features = slice_loss_features(slices, "recon", "original", "forget_train", ["ssim", "nmse"])
    assert features.index.names == ["item_id", "slice"] and len(features) == 16
    rows = slices.query("method == 'original' and set == 'forget_train'")
    ssim = rows.loc[rows["metric"] == "ssim"].set_index(["item_id", "slice"])["value"]
    np.testing.assert_allclose(features["ssim"], 1.0 - ssim.loc[features.index])
    empty = slice_loss_features(slices, "recon", "nobody", "forget_train", ["ssim"])
    assert empty.empty and list(empty.columns) == ["ssim"]


def test_slice_attack_separates_members_and_counts_their_volumes(
    slice_tables: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    volumes, slices = slice_tables
    table = membership_attacks_from_params(volumes, _params("slice", n_repeats=3), slices)
    by_method = table.set_index("method")
    original, oracle = by_method.loc["original"], by_method.loc["oracle"]
    assert original["granularity"] == "slice"
    assert original["accuracy_mean"] > 0.9 and original["auc_mean"] > 0.9
    assert abs(oracle["accuracy_mean"] - 0.5) < 0.2
    assert (original["n_members"], original["n_nonmembers"]) == (16, 16)
    assert (original["n_member_volumes"], original["n_nonmember_volumes"]) == (2, 2)
    assert "slices of 2 member and 2 non-member volume(s)" in original["note"]
    assert "correlated within a volume" in original["note"]
    # The same two volumes per set, attacked per volume: too few items to learn anything.
    per_volume = membership_attacks_from_params(volumes, _params("volume"), slices)
    assert per_volume.set_index("method").at["original", "n_members"] == 2


def test_slice_attack_on_identical_distributions_is_near_chance() -> None:
    accuracies = []
    for seed in range(6):
        rng = np.random.default_rng(seed)
        rows = _slices("m", "forget_train", 3, (0.8, 0.02), rng)
        rows += _slices("m", "forget_test", 3, (0.8, 0.02), rng)
        slices = pd.DataFrame(rows)
        table = membership_attacks(
            slices.query("slice == 0").drop(columns="slice"),
            {"recon": ("forget_train", "forget_test", ["ssim"])},
            granularity="slice", slices=slices, seed=seed,
        )
        accuracies.append(table.at[0, "accuracy_mean"])
    assert abs(float(np.mean(accuracies)) - 0.5) < 0.12


def test_slice_attack_without_slices_or_with_a_bad_granularity(
    slice_tables: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    volumes, _ = slice_tables
    features = {"recon": ("forget_train", "forget_test", ["ssim"])}
    table = membership_attacks(volumes, features, granularity="slice", slices=None)
    assert table["accuracy_mean"].isna().all()
    assert table["note"].str.contains("no per-slice results for ssim@forget_train").all()
    with pytest.raises(ValueError, match="granularity.*'pixel'"):
        membership_attacks(volumes, features, granularity={"recon": "pixel"})


def test_default_params_attack_slices_with_per_task_features() -> None:
    params = EvaluationParams()
    recon, segmentation = params.tasks["recon"].attack, params.tasks["segmentation"].attack
    assert recon.granularity == segmentation.granularity == "slice"
    assert recon.feature_metrics() == ["ssim", "nmse"]
    assert segmentation.feature_metrics() == ["cross_entropy", "soft_dice_loss"]
    volume = _params("volume").tasks["segmentation"].attack
    assert volume.feature_metrics() == ["dice_mean", "mae"]
