"""Membership inference: grouped folds, difficulty calibration, null check, intervals."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from med_unlearning.metrics.membership import (
    MEMBERSHIP_COLUMNS,
    MembershipInputError,
    attack_metrics,
    grouped_folds,
    loss_features,
    membership_attacks,
    membership_attacks_from_params,
    membership_inference_attack,
    null_checks,
    slice_loss_features,
    tpr_at_fpr,
)
from med_unlearning.metrics.membership.bootstrap import _auc_fast, _tpr_fast
from med_unlearning.params.evaluation import EvaluationParams

FEATURES = {"recon": ("forget_train", "forget_test", ["ssim", "nmse"])}


def _slice_rows(method: str, set_name: str, losses: dict[str, np.ndarray]) -> list[dict]:
    """Per-slice rows: ``losses[volume]`` = 1 − SSIM per slice; NMSE = (1 − SSIM) / 2."""
    rows = []
    for volume, values in losses.items():
        for index, loss in enumerate(values):
            for metric, value, higher in (("ssim", 1 - loss, True), ("nmse", loss / 2, False)):
                rows.append({"task": "recon", "method": method, "set": set_name,
                             "item_id": volume, "slice": index, "metric": metric,
                             "value": float(value), "higher_is_better": higher})  # fmt: skip
    return rows


def _study(seed: int = 0, n_volumes: int = 8, slices: int = 6, overfit: float = 0.0):
    """Slices whose loss is the volume's difficulty + noise; the member volumes are *easier*.

    ``oracle``, ``zero_filled`` and ``reference`` never saw any member: their losses differ
    only by noise around each volume's difficulty. ``original`` saw the members: their loss
    is ``overfit`` lower than the reference's.
    """
    rng = np.random.default_rng(seed)
    difficulty = {
        "forget_train": {f"m{v}": rng.normal(0.10, 0.02) for v in range(n_volumes)},
        "forget_test": {f"n{v}": rng.normal(0.20, 0.02) for v in range(n_volumes)},
    }
    shape = {set_name: {v: rng.normal(0, 0.02, slices) for v in vols}
             for set_name, vols in difficulty.items()}  # fmt: skip
    rows = []
    for method, drop in (("oracle", 0.0), ("zero_filled", 0.0), ("reference", 0.0),
                         ("original", overfit)):  # fmt: skip
        for set_name, vols in difficulty.items():
            losses = {}
            for volume, base in vols.items():
                noise = rng.normal(0, 0.003, slices)
                shift = drop if set_name == "forget_train" else 0.0
                losses[volume] = np.clip(base + shape[set_name][volume] + noise - shift, 1e-4, None)
            rows += _slice_rows(method, set_name, losses)
    slices_table = pd.DataFrame(rows)
    keys = ["task", "method", "set", "item_id", "metric", "higher_is_better"]
    volumes = slices_table.groupby(keys)["value"].mean().reset_index()
    return volumes, slices_table


def _attack(volumes: pd.DataFrame, slices: pd.DataFrame, **kwargs) -> pd.DataFrame:
    options = {"granularity": "slice", "slices": slices, "n_splits": 4, "n_resamples": 300,
               "null_methods": {"recon": ["oracle", "zero_filled"]}}  # fmt: skip
    options.update(kwargs)
    return membership_attacks(volumes, FEATURES, **options).set_index("method")


def test_difficulty_alone_is_not_membership_after_calibration() -> None:
    volumes, slices = _study(seed=1)
    table = _attack(volumes, slices)
    for null in ("oracle", "zero_filled"):
        row = table.loc[null]
        # Uncalibrated, the easier member volumes look like members.
        assert row["uncalibrated_auc"] > 0.9
        assert row["uncalibrated_auc_ci_low"] > 0.5
        # Calibrated by the reference's loss on the same slice, the signal is gone.
        assert abs(row["auc"] - 0.5) < 0.2
        assert row["auc_ci_low"] <= 0.5 <= row["auc_ci_high"]
        assert row["calibration"] == "reference" and row["role"] == "null model"
    assert (table["task_attack_status"].dropna() == "valid").all()
    assert table.at["reference", "role"] == "calibrator"
    assert math.isnan(table.at["reference", "auc"])


def test_an_overfit_model_is_detected_after_calibration() -> None:
    volumes, slices = _study(seed=2, overfit=0.03)
    row = _attack(volumes, slices).loc["original"]
    assert row["auc"] > 0.95 and row["auc_ci_low"] > 0.8
    assert row["tpr_at_fpr"] > 0.5
    assert row["auc_minus_oracle_ci_low"] > 0.1
    assert row["private"] == "exposed"


def test_null_methods_equivalent_to_the_oracle_are_private() -> None:
    volumes, slices = _study(seed=3)
    table = _attack(volumes, slices, privacy_tolerance=0.3)
    assert table.at["zero_filled", "private"] in ("yes", "inconclusive")
    assert table.at["oracle", "auc_minus_oracle"] == pytest.approx(0.0)


def test_without_a_reference_the_attack_is_uncalibrated_and_fails_its_null_check() -> None:
    volumes, slices = _study(seed=4)
    keep = lambda t: t.loc[t["method"] != "reference"]  # noqa: E731
    table = _attack(keep(volumes), keep(slices))
    assert table["calibration"].str.startswith("none").all()
    assert table.at["oracle", "auc_ci_low"] > 0.5
    assert (table["task_attack_status"] == "uninformative").all()
    assert (table["private"] == "uninformative").all()
    assert "null model(s) oracle" in table.at["original", "private_detail"]
    assert "uncalibrated" in table.at["original", "note"]
    nulls = null_checks(table.reset_index())
    assert set(nulls["method"]) == {"oracle", "zero_filled"} and not nulls["at_chance"].any()


def test_grouped_folds_never_split_a_group() -> None:
    labels = np.repeat([1, 0], 30)
    groups = np.repeat([f"g{i}" for i in range(10)], 6)
    for repeat in grouped_folds(labels, groups, n_splits=5, n_repeats=3, seed=0):
        assert len(repeat) == 5
        for train, test in repeat:
            assert not set(groups[train]) & set(groups[test])


def test_fast_auc_and_tpr_match_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(25, dtype=int), np.zeros(30, dtype=int)]
    scores = np.round(rng.normal(labels * 0.7, 1.0), 1)  # ties included
    assert _auc_fast(labels, scores) == pytest.approx(roc_auc_score(labels, scores))
    for fpr in (0.05, 0.1, 0.3):
        assert _tpr_fast(labels, scores + rng.normal(0, 1e-6, 55), fpr) == pytest.approx(
            tpr_at_fpr(labels, scores + 0.0, fpr), abs=0.05
        )


def test_attack_metrics_are_seeded_and_paired() -> None:
    rng = np.random.default_rng(1)
    labels = np.repeat([1, 0], 20)
    groups = np.repeat([f"g{i}" for i in range(8)], 5)
    scores = {"a": rng.normal(labels, 1.0), "b": rng.normal(0, 1.0, 40)}
    first = attack_metrics(labels, scores, groups, n_resamples=200, seed=3, reference="b")
    again = attack_metrics(labels, scores, groups, n_resamples=200, seed=3, reference="b")
    assert first == again
    assert first["b"]["auc_minus_reference"] == 0.0
    assert first["a"]["auc_ci_low"] <= first["a"]["auc"] <= first["a"]["auc_ci_high"]


def test_single_model_attack_and_tiny_inputs() -> None:
    rng = np.random.default_rng(0)
    members, nonmembers = rng.normal(0, 1, 40), rng.normal(3, 1, 40)
    result = membership_inference_attack(
        members, nonmembers, member_groups=np.repeat(np.arange(8), 5),
        nonmember_groups=np.repeat(np.arange(8), 5), n_resamples=100,
    )  # fmt: skip
    assert result.auc < 0.1 or result.auc > 0.9  # separable, in whichever direction
    tiny = membership_inference_attack([0.1], [0.2, 0.3])
    assert math.isnan(tiny.auc) and "not computable" in tiny.note
    with pytest.raises(MembershipInputError):
        membership_inference_attack(np.zeros((3, 2)), np.zeros((3, 3)))


def test_volume_attack_and_missing_sets() -> None:
    volumes, _ = _study(seed=5)
    partial = volumes.loc[~((volumes["method"] == "zero_filled")
                            & (volumes["set"] == "forget_test"))]  # fmt: skip
    flat = membership_attacks(partial, FEATURES, granularity="volume", n_splits=3,
                              n_resamples=100)  # fmt: skip
    assert list(flat.columns) == list(MEMBERSHIP_COLUMNS)
    table = flat.set_index("method")
    assert table.at["original", "n_members"] == 8
    assert table.at["original", "granularity"] == "volume"
    assert math.isnan(table.at["zero_filled", "auc"])
    assert "forget_test" in table.at["zero_filled", "note"]
    with pytest.raises(ValueError, match="granularity.*'pixel'"):
        membership_attacks(volumes, FEATURES, granularity={"recon": "pixel"})


def test_loss_features_turn_scores_into_losses() -> None:
    volumes, slices = _study(seed=6)
    features = loss_features(volumes, "recon", "oracle", "forget_train", ["ssim", "nmse"])
    rows = volumes.query("method == 'oracle' and set == 'forget_train'")
    ssim = rows.loc[rows["metric"] == "ssim"].set_index("item_id")["value"]
    np.testing.assert_allclose(features["ssim"], 1.0 - ssim.loc[features.index])
    per_slice = slice_loss_features(slices, "recon", "oracle", "forget_train", ["ssim"])
    assert per_slice.index.names == ["item_id", "slice"] and len(per_slice) == 48
    psnr = pd.DataFrame({"task": "recon", "method": "m", "set": "s", "item_id": ["a", "b"],
                         "metric": "psnr", "value": [30.0, 35.0], "higher_is_better": True})
    np.testing.assert_allclose(loss_features(psnr, "recon", "m", "s", ["psnr"])["psnr"],
                               [-30.0, -35.0])  # fmt: skip


def test_default_params_attack_slices_with_a_null_check() -> None:
    params = EvaluationParams()
    assert params.tasks["recon"].attack.granularity == "slice"
    assert params.tasks["recon"].null_methods == ["oracle", "zero_filled"]
    assert params.tasks["segmentation"].null_methods == ["oracle"]
    assert params.membership.reference_method == "reference"
    volumes, slices = _study(seed=7)
    table = membership_attacks_from_params(volumes, params, slices).set_index("method")
    assert table.at["oracle", "calibration"] == "reference"
    assert table.at["oracle", "fpr"] == params.membership.fpr


def test_logistic_scorer_uses_grouped_folds_and_detects_overfitting() -> None:
    volumes, slices = _study(seed=8, overfit=0.03)
    table = _attack(volumes, slices, scorer="logistic", n_splits=3)
    assert table.at["original", "auc"] > 0.9
    assert table.at["original", "n_splits"] == 3
    assert "3 folds grouped by volume" in table.at["original", "note"]
    with pytest.raises(ValueError, match="scorer"):
        _attack(volumes, slices, scorer="magic")


def test_one_volume_per_class_is_not_computable_and_says_so() -> None:
    volumes, slices = _study(seed=9, n_volumes=1)
    table = _attack(volumes, slices)
    assert table["auc"].isna().all()
    assert (table["task_attack_status"] == "not computable").all()
    assert table.at["nl_ft" if "nl_ft" in table.index else "original", "note"].startswith(
        "not computable: 1 member and 1 non-member volume"
    )
    assert (table["private"] == "n/a").all()


def _site_study(seed: int = 0, subjects: int = 6, slices: int = 8, site_shift: float = 0.05):
    """Segmentation-like per-slice losses with a second site (the forget request's kind).

    Members (``forget``) and ``forget_test`` subjects come from site B, ``test`` subjects
    from site A. No model saw any member; the oracle's loss on site B is ``site_shift``
    above the reference's (another seed extrapolates to the unseen site differently), the
    same on every site-B subject.
    """
    rng = np.random.default_rng(seed)
    sets = {"forget": "B", "forget_test": "B", "test": "A"}
    difficulty = {name: {f"{name}{i}": rng.normal(0.3, 0.03) for i in range(subjects)}
                  for name in sets}  # fmt: skip
    slice_rows, volume_rows = [], []
    for method in ("oracle", "reference"):
        for set_name, site in sets.items():
            for subject, base in difficulty[set_name].items():
                shift = site_shift if method == "oracle" and site == "B" else 0.0
                losses = base + shift + rng.normal(0, 0.01, slices)
                for index, loss in enumerate(losses):
                    for metric, value in (("cross_entropy", loss), ("soft_dice_loss", loss / 2)):
                        slice_rows.append({
                            "task": "segmentation", "method": method, "set": set_name,
                            "item_id": subject, "slice": index, "metric": metric,
                            "value": float(value), "higher_is_better": False,
                        })  # fmt: skip
                volume_rows.append({
                    "task": "segmentation", "method": method, "set": set_name,
                    "item_id": subject, "metric": "dice_mean",
                    "value": float(1 - losses.mean()), "higher_is_better": True,
                })  # fmt: skip
    return pd.DataFrame(volume_rows), pd.DataFrame(slice_rows)


def _segmentation_params() -> EvaluationParams:
    params = EvaluationParams()
    return params.model_copy(update={"tasks": {"segmentation": params.tasks["segmentation"]}})


def test_non_members_of_the_members_kind_keep_a_site_effect_out_of_the_null_check() -> None:
    volumes, slices = _site_study(seed=11)
    params = _segmentation_params()
    assert params.tasks["segmentation"].attack.nonmember_set == "forget_test"
    row = membership_attacks_from_params(volumes, params, slices).set_index("method").loc["oracle"]
    assert row["nonmember_set"] == "forget_test"
    assert row["auc_ci_low"] <= 0.5 <= row["auc_ci_high"]
    assert row["task_attack_status"] == "valid"


def test_without_same_kind_non_members_the_attack_falls_back_and_says_so(caplog) -> None:
    volumes, slices = _site_study(seed=11)
    same_kind = lambda t: t.loc[t["set"] != "forget_test"]  # noqa: E731
    with caplog.at_level("WARNING", logger="med_unlearning.metrics.membership"):
        table = membership_attacks_from_params(
            same_kind(volumes), _segmentation_params(), same_kind(slices)
        ).set_index("method")
    assert "non-members are 'test' instead" in caplog.text
    row = table.loc["oracle"]
    # Typical subjects as non-members: the oracle's site shift reads as (non-)membership,
    # so the null check fails and every verdict of the task is uninformative.
    assert row["nonmember_set"] == "test"
    assert not row["auc_ci_low"] <= 0.5 <= row["auc_ci_high"]
    assert row["task_attack_status"] == "uninformative"
