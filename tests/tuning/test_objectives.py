"""The selection objectives, on constructed score tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from med_unlearning.tuning.objectives import (
    Criterion,
    TuningObjectiveError,
    item_losses,
    loss_attack_auc,
    oracle_free_objective,
    oracle_objective,
)

TOLERANCES = {"ssim": 0.01, "psnr": 1.5}


def _rows(method: str, set_name: str, values: dict[str, float], metric: str = "ssim") -> list:
    return [
        {"method": method, "set": set_name, "item_id": item, "metric": metric,
         "value": value, "higher_is_better": True}
        for item, value in values.items()
    ]  # fmt: skip


def _table(*groups: list) -> pd.DataFrame:
    return pd.DataFrame([row for group in groups for row in group])


def test_oracle_objective_is_zero_for_the_oracle_and_counts_tolerance_units():
    oracle_retain = {"b1": 0.80, "b2": 0.90}
    oracle_forget = {"k1": 0.60, "k2": 0.70}
    table = _table(
        _rows("oracle", "retain_val", oracle_retain),
        _rows("oracle", "forget_train", oracle_forget),
        _rows("same", "retain_val", oracle_retain),
        _rows("same", "forget_train", oracle_forget),
        # 3 tolerance units below on retain, 4 above on forget: distance 5
        _rows("trial", "retain_val", {"b1": 0.77, "b2": 0.87}),
        _rows("trial", "forget_train", {"k1": 0.64, "k2": 0.74}),
    )
    retain, forget = Criterion("retain_val", "ssim"), Criterion("forget_train", "ssim")
    assert oracle_objective(table, "same", retain, forget, TOLERANCES).value == pytest.approx(0)
    result = oracle_objective(table, "trial", retain, forget, TOLERANCES)
    assert result.value == pytest.approx(5.0)
    assert result.terms["retain_units"] == pytest.approx(-3.0)
    assert result.terms["forget_units"] == pytest.approx(4.0)


def test_oracle_objective_pairs_items_and_names_what_is_missing():
    table = _table(
        _rows("oracle", "retain_val", {"b1": 0.8}),
        _rows("trial", "retain_val", {"b1": 0.8}),
    )
    with pytest.raises(TuningObjectiveError, match="ssim@forget_train.*'trial'"):
        oracle_objective(
            table, "trial", Criterion("retain_val", "ssim"), Criterion("forget_train", "ssim"),
            TOLERANCES,
        )  # fmt: skip


def test_loss_attack_auc_is_one_half_for_identical_losses_and_one_for_separated():
    same = pd.Series([0.1, 0.2, 0.3])
    assert loss_attack_auc(same, same) == pytest.approx(0.5)
    assert loss_attack_auc(pd.Series([0.1, 0.2]), pd.Series([0.5, 0.6])) == pytest.approx(1.0)
    # over-forgetting: members look worse than unseen items -> AUC 0 (far from chance too)
    assert loss_attack_auc(pd.Series([0.9, 0.8]), pd.Series([0.5, 0.6])) == pytest.approx(0.0)


def test_difficulty_calibration_removes_what_the_reference_also_finds_hard():
    rng = np.random.default_rng(0)
    difficulty = {f"v{i}": float(value) for i, value in enumerate(rng.uniform(0, 0.5, 12))}
    members = {key: 1 - value for key, value in list(difficulty.items())[:6]}
    nonmembers = {key: 1 - value for key, value in list(difficulty.items())[6:]}
    # members happen to be the easy items: raw losses separate them, calibrated ones do not
    members = {key: value + 0.3 for key, value in members.items()}
    table = _table(
        _rows("model", "forget_train", members), _rows("model", "forget_val", nonmembers),
        _rows("zf", "forget_train", members), _rows("zf", "forget_val", nonmembers),
    )  # fmt: skip
    raw = loss_attack_auc(
        item_losses(table, "model", "forget_train", "ssim"),
        item_losses(table, "model", "forget_val", "ssim"),
    )
    calibrated = loss_attack_auc(
        item_losses(table, "model", "forget_train", "ssim", calibrate_by="zf"),
        item_losses(table, "model", "forget_val", "ssim", calibrate_by="zf"),
    )
    assert raw > 0.9
    assert calibrated == pytest.approx(0.5)


def test_oracle_free_objective_penalises_lost_retain_quality_but_not_gains():
    retain = {"b1": 0.8, "b2": 0.9}
    forget_train, forget_val = {"k1": 0.5, "k2": 0.6}, {"k3": 0.55, "k4": 0.55}
    base = [_rows("original", "retain_val", retain)]
    better = _table(
        *base, _rows("trial", "retain_val", {"b1": 0.85, "b2": 0.95}),
        _rows("trial", "forget_train", forget_train), _rows("trial", "forget_val", forget_val),
    )  # fmt: skip
    worse = _table(
        *base, _rows("trial", "retain_val", {"b1": 0.78, "b2": 0.88}),
        _rows("trial", "forget_train", forget_train), _rows("trial", "forget_val", forget_val),
    )  # fmt: skip
    args = (Criterion("retain_val", "ssim"), "forget_train", "forget_val", "ssim", TOLERANCES, 0.1)
    gained = oracle_free_objective(better, None, "trial", *args)
    lost = oracle_free_objective(worse, None, "trial", *args)
    assert gained.terms["retain_units_lost"] == 0.0
    assert gained.terms["attack_auc"] == pytest.approx(0.5)
    assert gained.value == pytest.approx(0.0)
    assert lost.terms["retain_units_lost"] == pytest.approx(2.0)
    assert lost.value == pytest.approx(2.0)
    assert math.isfinite(lost.value)
