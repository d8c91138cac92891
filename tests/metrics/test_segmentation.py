"""Segmentation metrics: Dice per class with ignored voxels, mean Dice, MAE of probabilities."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from med_unlearning.data.labels import IGNORE_INDEX
from med_unlearning.metrics.segmentation import (
    dice_per_class,
    mae_probabilities,
    segmentation_scores,
)


def _one_hot(labels: np.ndarray, classes: int) -> torch.Tensor:
    one_hot = torch.nn.functional.one_hot(torch.as_tensor(labels).long(), classes)
    return one_hot.movedim(-1, 0).float()


def test_dice_matches_the_definition_per_class() -> None:
    target = np.zeros((4, 4, 2), dtype=np.uint8)
    target[:2] = 1  # 16 voxels of class 1
    prediction = np.zeros_like(target)
    prediction[1:3] = 1  # 16 predicted, 8 overlapping
    dice = dice_per_class(prediction, target, num_classes=3)
    assert dice.shape == (2,)
    assert dice[0] == pytest.approx(2 * 8 / (16 + 16))
    assert math.isnan(dice[1])  # class 2 absent from the truth


def test_ignored_voxels_count_nowhere() -> None:
    target = np.array([[[1, 1, IGNORE_INDEX, IGNORE_INDEX]]], dtype=np.uint8)
    prediction = np.array([[[1, 1, 1, 0]]], dtype=np.uint8)
    assert dice_per_class(prediction, target, num_classes=2)[0] == pytest.approx(1.0)


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="shape"):
        dice_per_class(np.zeros((2, 2, 2)), np.zeros((2, 2, 3)), num_classes=2)


def test_mae_is_zero_for_a_confident_correct_prediction_and_known_for_uniform() -> None:
    target = np.random.default_rng(0).integers(0, 4, size=(5, 5, 3))
    assert mae_probabilities(_one_hot(target, 4), target) == pytest.approx(0.0)
    uniform = torch.full((4, 5, 5, 3), 0.25)
    assert mae_probabilities(uniform, target) == pytest.approx(2 * 3 / 16)
    everything_ignored = np.full_like(target, IGNORE_INDEX)
    assert math.isnan(mae_probabilities(uniform, everything_ignored))


def test_scores_name_every_class_and_average_present_ones() -> None:
    target = np.zeros((6, 6, 2), dtype=np.uint8)
    target[:3] = 1
    target[5, 5, :] = IGNORE_INDEX
    prediction = target.copy()
    prediction[prediction == IGNORE_INDEX] = 2
    prediction[0] = 0  # lose a third of class 1
    scores = segmentation_scores(_one_hot(prediction, 3), target, ["background", "a", "b"])
    assert set(scores) == {"dice_a", "dice_b", "mean_dice", "mae"}
    assert scores["dice_a"] == pytest.approx(2 * 8 / (8 + 12))
    assert math.isnan(scores["dice_b"])  # absent from the truth, not averaged
    assert scores["mean_dice"] == pytest.approx(scores["dice_a"])
    assert 0.0 < scores["mae"] < 1.0


def test_channel_count_must_match_class_names() -> None:
    with pytest.raises(ValueError, match="class names"):
        segmentation_scores(torch.zeros(3, 2, 2, 2), np.zeros((2, 2, 2)), ["background", "a"])
