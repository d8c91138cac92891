"""Scoring a checkpoint: per-volume rows and, from the same inference, per-slice rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from tests.tasks.test_recon import MASK, TINY_VARNET, tiny_volume
from tests.tasks.test_segmentation import TINY, phantom

from med_unlearning.io.checkpoint import CheckpointMetadata, ModelCheckpoint
from med_unlearning.metrics.image_quality import slice_metrics
from med_unlearning.metrics.scoring import (
    RESULT_COLUMNS,
    SLICE_COLUMNS,
    score_recon_checkpoint,
    score_segmentation_checkpoint,
)
from med_unlearning.metrics.segmentation import slice_losses
from med_unlearning.params.runtime import RuntimeParams
from med_unlearning.params.segmentation import SegmentationParams
from med_unlearning.tasks.recon import ReconTask
from med_unlearning.tasks.segmentation import SegmentationTask


def _recon_checkpoint() -> ModelCheckpoint:
    task = ReconTask("varnet", TINY_VARNET)
    torch.manual_seed(0)
    model = task.build_model()
    metadata = CheckpointMetadata(
        task="recon", architecture=task.architecture,
        architecture_params=task.architecture_params, data_manifest=["k0"], extra={"mask": MASK},
    )  # fmt: skip
    return ModelCheckpoint(model.state_dict(), metadata)


def test_recon_scoring_returns_per_slice_rows_of_every_set() -> None:
    volumes = {name: tiny_volume(index) for index, name in enumerate(["b0", "k0", "k1"])}
    splits = pd.DataFrame(
        {"volume_id": ["b0", "k0", "k1"], "role": ["retain_test", "forget_train", "forget_test"]}
    )
    scores = score_recon_checkpoint(
        _recon_checkpoint(), "m", volumes, splits, device="cpu", include_zero_filled=True
    )
    assert list(scores.results.columns) == list(RESULT_COLUMNS)
    slices = scores.slices
    assert list(slices.columns) == list(SLICE_COLUMNS)
    mine = slices.loc[slices["method"] == "m"]
    # 3 volumes x 3 slices x (psnr, ssim, nmse); the zero-filled baseline gets its own rows
    assert len(mine) == 27 and len(slices.loc[slices["method"] == "zero_filled"]) == 27
    assert set(mine["set"]) == {"retain_test", "forget_train", "forget_test"}
    # the per-slice SSIMs average to the volume's SSIM row (same reconstruction, no rerun)
    for volume_id in ("b0", "k0", "k1"):
        per_slice = mine.query("item_id == @volume_id and metric == 'ssim'")["value"]
        volume = scores.results.query(
            "method == 'm' and item_id == @volume_id and metric == 'ssim'"
        )["value"]
        assert per_slice.mean() == pytest.approx(float(volume.iloc[0]), abs=1e-6)
    nmse = mine.query("metric == 'nmse'")
    assert not nmse["higher_is_better"].any() and (nmse["value"] > 0).all()


def test_segmentation_scoring_returns_per_axial_slice_losses() -> None:
    from med_unlearning.data.labels import get_label_mapping
    from med_unlearning.data.seg_dataset import load_subjects

    params = SegmentationParams.model_validate(TINY)
    runtime = RuntimeParams(device="cpu", progress=False)
    task = SegmentationTask.from_params(params, runtime)
    torch.manual_seed(2)
    model = task.build_model()
    checkpoint = ModelCheckpoint(
        model.state_dict(),
        CheckpointMetadata(
            task="segmentation", architecture=task.architecture,
            architecture_params=task.architecture_params, data_manifest=["1"],
        ),
    )  # fmt: skip
    partitions = {**phantom("1", 1), **phantom("070", 70), **phantom("2", 2)}
    subjects = load_subjects(
        partitions, ["1", "070", "2"], ["T1"], get_label_mapping(params.data.label_mapping)
    )
    splits = pd.DataFrame(
        {"subject_id": ["1", "070", "2"], "role": ["retain_train", "forget_train", "retain_test"]}
    )
    scores = score_segmentation_checkpoint(checkpoint, "m", subjects, splits, params, runtime)
    assert set(scores.results["set"]) == {"retain", "forget", "test"}
    slices = scores.slices
    assert set(slices["metric"]) == {"cross_entropy", "soft_dice_loss", "mae"}
    subject = subjects["2"]
    expected = slice_losses(task.predict_probabilities(model, subject), subject.label)
    test_rows = slices.query("set == 'test' and item_id == '2'")
    for metric, values in expected.items():
        rows = test_rows.loc[test_rows["metric"] == metric].sort_values("slice")
        finite = np.flatnonzero(np.isfinite(values))
        assert list(rows["slice"]) == list(finite)
        np.testing.assert_allclose(rows["value"], values[finite], rtol=1e-5)


def test_image_quality_slice_metrics_are_what_recon_scoring_uses() -> None:
    volume = tiny_volume(5)
    values = slice_metrics(volume.reconstruction, volume.reconstruction * 0.9)
    assert values["ssim"].shape == (3,) and np.all(values["nmse"] == pytest.approx(0.01))
