"""Segmentation metrics: Dice per class (MONAI), mean Dice, and MAE of class probabilities.

Conventions (shared with :mod:`med_unlearning.data.labels`):

- labels are class indices; voxels equal to ``ignore_index`` count in no metric;
- Dice is reported for the foreground classes (1..K-1); a class absent from the ground truth
  gives NaN (MONAI's ``ignore_empty``), and the mean Dice averages the classes that are present;
- MAE (the segmentation study's second metric) is the mean absolute difference between the
  predicted class probabilities and the one-hot ground truth, over classes and valid voxels
  (0 = perfect and confident; a uniform guess over K classes gives 2(K-1)/K²).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from monai.metrics import compute_dice

from med_unlearning.data.labels import IGNORE_INDEX

__all__ = ["dice_per_class", "mae_probabilities", "segmentation_scores"]


def _as_index_tensor(labels: np.ndarray | torch.Tensor) -> torch.Tensor:
    tensor = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels)
    return tensor.long()


def dice_per_class(
    prediction: np.ndarray | torch.Tensor,
    target: np.ndarray | torch.Tensor,
    num_classes: int,
    ignore_index: int = IGNORE_INDEX,
) -> np.ndarray:
    """Dice of each foreground class for one volume (MONAI ``compute_dice``).

    Args:
        prediction: predicted class indices, shape ``[X, Y, Z]``.
        target: true class indices (``ignore_index`` where ignored), same shape.
        num_classes: number of classes including the background.
        ignore_index: label value excluded from the score.

    Returns:
        ``float64 [num_classes - 1]``: Dice of classes 1..K-1; NaN where the class is absent
        from ``target``.

    Raises:
        ValueError: when the shapes differ.
    """
    prediction_t = _as_index_tensor(prediction)
    target_t = _as_index_tensor(target)
    if prediction_t.shape != target_t.shape:
        raise ValueError(
            f"prediction shape {tuple(prediction_t.shape)} != target shape {tuple(target_t.shape)}"
        )
    scores = compute_dice(
        y_pred=prediction_t[None, None],
        y=target_t[None, None],
        include_background=False,
        num_classes=num_classes,
        ignore_index=ignore_index,
    )
    return scores[0].double().numpy()


def mae_probabilities(
    probabilities: np.ndarray | torch.Tensor,
    target: np.ndarray | torch.Tensor,
    ignore_index: int = IGNORE_INDEX,
) -> float:
    """Mean absolute error between class probabilities ``[K, X, Y, Z]`` and one-hot truth.

    Averaged over the K classes and the voxels whose target is not ``ignore_index``; NaN when
    every voxel is ignored.
    """
    probs = torch.as_tensor(probabilities).double()
    labels = _as_index_tensor(target)
    if probs.shape[1:] != labels.shape:
        raise ValueError(
            f"probabilities shape {tuple(probs.shape)} does not match target shape "
            f"{tuple(labels.shape)} (expected [K, *target.shape])"
        )
    valid = labels != ignore_index
    if not bool(valid.any()):
        return float("nan")
    one_hot = torch.nn.functional.one_hot(labels[valid], probs.shape[0]).double()
    return float((probs[:, valid].T - one_hot).abs().mean())


def segmentation_scores(
    probabilities: np.ndarray | torch.Tensor,
    target: np.ndarray | torch.Tensor,
    class_names: Sequence[str],
    ignore_index: int = IGNORE_INDEX,
) -> dict[str, float]:
    """Every score of one volume: ``dice_<class>`` per foreground class, ``mean_dice``, ``mae``.

    Args:
        probabilities: softmax output ``[K, X, Y, Z]`` (the prediction is its argmax).
        target: true class indices ``[X, Y, Z]``.
        class_names: the K class names (index 0 = background, not scored by Dice).
        ignore_index: label value excluded from every score.
    """
    probs = torch.as_tensor(probabilities)
    if probs.shape[0] != len(class_names):
        raise ValueError(
            f"{probs.shape[0]} probability channels for {len(class_names)} class names"
        )
    dice = dice_per_class(probs.argmax(0), target, len(class_names), ignore_index)
    scores = {
        f"dice_{name}": float(value) for name, value in zip(class_names[1:], dice, strict=True)
    }
    present = dice[~np.isnan(dice)]
    scores["mean_dice"] = float(present.mean()) if present.size else float("nan")
    scores["mae"] = mae_probabilities(probs, target, ignore_index)
    return scores
