"""Segmentation metrics: Dice per class (MONAI), mean Dice, and MAE of class probabilities.

Conventions (shared with :mod:`med_unlearning.data.labels`):

- labels are class indices; voxels equal to ``ignore_index`` count in no metric;
- Dice is reported for the foreground classes (1..K-1); a class absent from the ground truth
  gives NaN (MONAI's ``ignore_empty``), and the mean Dice averages the classes that are present;
- MAE (the segmentation study's second metric) is the mean absolute difference between the
  predicted class probabilities and the one-hot ground truth, over classes and valid voxels
  (0 = perfect and confident; a uniform guess over K classes gives 2(K-1)/K²).

:func:`slice_losses` scores each axial slice of one volume from the same probabilities
(cross-entropy, soft Dice loss, MAE over the slice's labelled voxels): the per-slice loss
features of the membership-inference attack, without a second inference pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from monai.losses import DiceLoss
from monai.metrics import compute_dice

from med_unlearning.data.labels import IGNORE_INDEX

__all__ = [
    "SLICE_LOSSES",
    "dice_per_class",
    "mae_probabilities",
    "segmentation_scores",
    "slice_losses",
]

#: The per-slice losses :func:`slice_losses` returns, in order.
SLICE_LOSSES = ("cross_entropy", "soft_dice_loss", "mae")

#: Probabilities are clipped here before the log of the cross-entropy (a confident wrong
#: voxel then costs ~23 nats instead of infinity).
_MIN_PROBABILITY = 1e-10


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


def slice_losses(
    probabilities: np.ndarray | torch.Tensor,
    target: np.ndarray | torch.Tensor,
    ignore_index: int = IGNORE_INDEX,
    axis: int = -1,
) -> dict[str, np.ndarray]:
    """Per-slice losses of one volume over each slice's labelled voxels.

    Per slice along ``axis`` (default the last, MRBrainS18's axial 3 mm axis):

    - ``cross_entropy``: mean ``−log p(true class)`` over the labelled voxels;
    - ``soft_dice_loss``: MONAI's soft Dice loss (``1 − 2Σpy / (Σp + Σy)``) per foreground
      class, averaged over the classes present in the slice's truth (the convention of the
      mean Dice); NaN when the slice has no labelled foreground;
    - ``mae``: :func:`mae_probabilities` restricted to the slice.

    Ignored voxels count in none of them; a slice without any labelled voxel gets NaN.

    Args:
        probabilities: softmax output ``[K, X, Y, Z]``.
        target: true class indices ``[X, Y, Z]`` (``ignore_index`` where ignored).
        ignore_index: label value excluded from every loss.
        axis: the slicing axis of ``target`` (of the spatial axes of ``probabilities``).

    Returns:
        ``{name: float64 [slices]}`` for the names of :data:`SLICE_LOSSES`.

    Raises:
        ValueError: when the probabilities are not shaped ``[K, *target.shape]``.
    """
    probs = torch.as_tensor(probabilities).double()
    labels = _as_index_tensor(target)
    if probs.shape[1:] != labels.shape or labels.ndim != 3:
        raise ValueError(
            f"probabilities shape {tuple(probs.shape)} does not match target shape "
            f"{tuple(labels.shape)} (expected [K, X, Y, Z] and [X, Y, Z])"
        )
    num_classes = probs.shape[0]
    spatial_axis = axis % labels.ndim
    # Slices first: probabilities [S, K, a, b], labels [S, a, b].
    probs = probs.movedim(1 + spatial_axis, 0)
    labels = labels.movedim(spatial_axis, 0)
    valid = labels != ignore_index
    safe_labels = torch.where(valid, labels, 0)
    one_hot = torch.nn.functional.one_hot(safe_labels, num_classes).movedim(-1, 1).double()
    mask = valid[:, None].double()
    voxels = valid.flatten(1).sum(dim=1).double()
    log_true = torch.log(
        torch.gather(probs, 1, safe_labels[:, None]).clamp_min(_MIN_PROBABILITY)
    )[:, 0]
    # Empty slices divide 0 by 0 here; they are set to NaN below.
    cross_entropy = -(log_true * valid).flatten(1).sum(dim=1) / voxels
    absolute = ((probs - one_hot).abs() * mask).flatten(1).sum(dim=1)
    mae = absolute / (voxels * num_classes)
    dice = DiceLoss(include_background=False, reduction="none")(probs * mask, one_hot * mask)
    dice = dice.reshape(dice.shape[0], -1)
    present = (one_hot * mask)[:, 1:].flatten(2).sum(dim=2) > 0
    present_count = present.sum(dim=1)
    soft_dice = torch.where(
        present_count > 0,
        (dice * present).sum(dim=1) / present_count.clamp_min(1),
        torch.nan,
    )
    empty = voxels == 0
    return {
        "cross_entropy": torch.where(empty, torch.nan, cross_entropy).numpy(),
        "soft_dice_loss": soft_dice.numpy(),
        "mae": torch.where(empty, torch.nan, mae).numpy(),
    }
