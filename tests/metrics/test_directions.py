"""One metric-direction table (``metrics.directions``), used by scoring and by the
results-table validation alike."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from med_unlearning.metrics import scoring
from med_unlearning.metrics.directions import (
    HIGHER_IS_BETTER,
    UnknownMetricDirection,
    has_direction,
    higher_is_better,
)
from med_unlearning.metrics.image_quality import IMAGE_QUALITY_METRICS
from med_unlearning.metrics.results_table import ResultsTableError, validate_results_table
from med_unlearning.metrics.segmentation import SLICE_LOSSES, segmentation_scores

SRC = Path(__file__).resolve().parents[2] / "src" / "med_unlearning"


def _computed_metrics() -> set[str]:
    """Every metric name the project writes into a results or per-slice table."""
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(3), size=(4, 4, 2)).transpose(3, 0, 1, 2)
    labels = rng.integers(0, 3, size=(4, 4, 2))
    per_subject = segmentation_scores(probabilities, labels, ["background", "gm", "wm"])
    # scoring renames ``mean_dice`` to ``dice_mean``; both spellings reach the tables' readers
    return {*IMAGE_QUALITY_METRICS, *SLICE_LOSSES, *per_subject, "dice_mean"}


def test_every_computed_metric_has_a_direction() -> None:
    metrics = _computed_metrics()
    assert {"psnr", "ssim", "nmse", "cross_entropy", "soft_dice_loss", "mae", "dice_gm",
            "mean_dice", "dice_mean"} <= metrics  # fmt: skip
    assert all(has_direction(metric) for metric in metrics)


def test_directions_of_the_known_metrics() -> None:
    better_high = {m for m in _computed_metrics() if higher_is_better(m)}
    assert better_high == {"psnr", "ssim", "dice_gm", "dice_wm", "mean_dice", "dice_mean"}
    # a Dice *loss* is lower-is-better although its name contains "dice"
    assert higher_is_better("soft_dice_loss") is False
    assert higher_is_better("hd95") is False


def test_scoring_and_validation_agree_on_every_metric() -> None:
    """The former users (scoring's rows, the validation's fill-in) read the same table."""
    metrics = sorted(_computed_metrics())
    rows = pd.DataFrame(
        [row for metric in metrics
         for row in scoring._tidy("t", "m", "s", "i", {metric: 0.5}, {})]
    )  # fmt: skip
    from_scoring = dict(zip(rows["metric"], rows["higher_is_better"], strict=True))
    filled = validate_results_table(rows.drop(columns="higher_is_better"))
    from_validation = dict(zip(filled["metric"], filled["higher_is_better"], strict=True))
    assert from_scoring == from_validation == {m: higher_is_better(m) for m in metrics}


def test_unknown_metric_is_refused_not_guessed() -> None:
    with pytest.raises(UnknownMetricDirection, match="'bogus' has no known direction"):
        higher_is_better("bogus")
    table = pd.DataFrame({"task": ["t"], "method": ["m"], "set": ["s"], "item_id": ["i"],
                          "metric": ["bogus"], "value": [1.0]})  # fmt: skip
    with pytest.raises(ResultsTableError, match="'bogus' has no known direction"):
        validate_results_table(table)


def test_no_other_module_defines_a_direction_table() -> None:
    """A second table could disagree with this one again (as scoring's and comparison's did)."""
    owners = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = (node.targets if isinstance(node, ast.Assign)
                       else [node.target] if isinstance(node, ast.AnnAssign) else [])  # fmt: skip
            for target in targets:
                if isinstance(target, ast.Name) and "HIGHER_IS_BETTER" in target.id.upper():
                    owners.append(f"{path.relative_to(SRC)}:{target.id}")
    assert owners == ["metrics/directions.py:HIGHER_IS_BETTER"]
    assert set(HIGHER_IS_BETTER) >= {"psnr", "ssim", "nmse", "mae"}
