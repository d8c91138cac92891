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


def _direct_slice_losses(
    probabilities: np.ndarray, labels: np.ndarray, index: int
) -> tuple[float, float, float]:
    """Cross-entropy, soft Dice loss and MAE of slice ``index`` (last axis), by hand."""
    probs, truth = probabilities[..., index], labels[..., index]
    valid = truth != IGNORE_INDEX
    p = probs[:, valid]
    y = np.eye(probs.shape[0])[truth[valid]].T
    cross_entropy = -np.mean(np.log(p[truth[valid], np.arange(valid.sum())]))
    losses = [
        1 - (2 * np.sum(p[c] * y[c]) + 1e-5) / (np.sum(p[c]) + np.sum(y[c]) + 1e-5)
        for c in range(1, probs.shape[0])
        if y[c].any()
    ]
    return cross_entropy, float(np.mean(losses)), float(np.mean(np.abs(p - y)))


def test_slice_losses_match_a_direct_computation_and_skip_ignored_voxels() -> None:
    from med_unlearning.metrics.segmentation import SLICE_LOSSES, slice_losses

    rng = np.random.default_rng(4)
    probabilities = rng.random((4, 6, 5, 3)) + 0.05
    probabilities /= probabilities.sum(axis=0)
    labels = rng.integers(0, 4, (6, 5, 3))
    labels[:2, :, 0] = IGNORE_INDEX
    labels[..., 2] = IGNORE_INDEX  # a slice without labelled voxels
    losses = slice_losses(probabilities, labels)
    assert tuple(losses) == SLICE_LOSSES
    for index in range(2):
        expected = _direct_slice_losses(probabilities, labels, index)
        actual = tuple(losses[name][index] for name in SLICE_LOSSES)
        np.testing.assert_allclose(actual, expected, rtol=1e-6)
    assert all(np.isnan(losses[name][2]) for name in SLICE_LOSSES)
    # MAE per slice agrees with the volume MAE on a one-slice volume
    assert losses["mae"][0] == pytest.approx(
        mae_probabilities(probabilities[..., :1], labels[..., :1])
    )


def test_slice_losses_along_another_axis_and_bad_shapes() -> None:
    from med_unlearning.metrics.segmentation import slice_losses

    rng = np.random.default_rng(5)
    probabilities = rng.dirichlet(np.ones(3), size=(4, 5, 6)).transpose(3, 0, 1, 2)
    labels = rng.integers(0, 3, (4, 5, 6))
    along_x = slice_losses(probabilities, labels, axis=0)
    moved = slice_losses(probabilities.transpose(0, 2, 3, 1), labels.transpose(1, 2, 0))
    for name, values in along_x.items():
        assert values.shape == (4,)
        np.testing.assert_allclose(values, moved[name])
    confident = np.moveaxis(np.eye(3)[labels], -1, 0)
    perfect = slice_losses(confident, labels)
    assert np.allclose(perfect["cross_entropy"], 0) and np.allclose(perfect["mae"], 0)
    assert np.allclose(perfect["soft_dice_loss"], 0, atol=1e-6)
    with pytest.raises(ValueError, match="expected"):
        slice_losses(probabilities[:, :, :, :2], labels)
