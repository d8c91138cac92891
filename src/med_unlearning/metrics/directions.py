"""Which way is better, for every metric the project computes: one table, one rule.

Scoring writes the direction into the tidy results table (``higher_is_better``), and the
results-table validation fills it in when a table lacks the column; both read it here, so a
metric cannot be "better when higher" in one place and "better when lower" in another.

The table names the metrics with a fixed direction; every Dice score (``dice_mean``,
``mean_dice``, ``dice_<class>``) is better when higher. A metric that is in neither is
refused (:class:`UnknownMetricDirection`) rather than given a guessed direction.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["HIGHER_IS_BETTER", "UnknownMetricDirection", "has_direction", "higher_is_better"]

#: Direction of the metrics with a fixed one (every Dice score is better when higher too).
HIGHER_IS_BETTER: Mapping[str, bool] = {
    # reconstruction, per volume and per slice (``metrics.image_quality``)
    "psnr": True,
    "ssim": True,
    "nmse": False,
    # segmentation, per subject and per slice (``metrics.segmentation``)
    "mae": False,
    "hd95": False,
    "cross_entropy": False,
    "soft_dice_loss": False,
}


class UnknownMetricDirection(KeyError):
    """A metric with no known direction (neither in :data:`HIGHER_IS_BETTER` nor a Dice
    score); the message names it."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _is_dice_score(metric: str) -> bool:
    """``dice_mean``, ``mean_dice`` and ``dice_<class>`` (not a Dice *loss*, which is in the
    table)."""
    return metric in ("dice", "mean_dice") or metric.startswith("dice_")


def has_direction(metric: str) -> bool:
    """Whether :func:`higher_is_better` knows ``metric``."""
    return metric in HIGHER_IS_BETTER or _is_dice_score(metric)


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is better.

    Raises:
        UnknownMetricDirection: ``metric`` has no known direction.
    """
    if metric in HIGHER_IS_BETTER:
        return HIGHER_IS_BETTER[metric]
    if _is_dice_score(metric):
        return True
    raise UnknownMetricDirection(f"metric {metric!r} has no known direction")
