"""Non-finite test data or outputs stop evaluation, naming the volume and the slices."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from tests.metrics.test_scoring import _recon_checkpoint
from tests.tasks.test_recon import tiny_volume

from med_unlearning.io.checkpoint import ModelCheckpoint
from med_unlearning.metrics.finite import NonFiniteError, non_finite_slices, require_finite
from med_unlearning.metrics.scoring import score_recon_checkpoint

SPLITS = pd.DataFrame(
    {"volume_id": ["b0", "k0", "k1"], "role": ["retain_test", "forget_train", "forget_test"]}
)


def _volumes(**changed):  # type: ignore[no-untyped-def]
    volumes = {name: tiny_volume(index) for index, name in enumerate(["b0", "k0", "k1"])}
    for name, volume in changed.items():
        volumes[name] = volume
    return volumes


def test_non_finite_slices_and_message() -> None:
    array = np.zeros((4, 3, 3))
    array[1, 0, 0] = np.nan
    array[3, 2, 1] = np.inf
    assert non_finite_slices(array) == [1, 3]
    assert non_finite_slices(np.moveaxis(array, 0, -1), axis=-1) == [1, 3]
    message = r"volume v: the output holds NaN .* slice\(s\) \[1, 3\]"
    with pytest.raises(NonFiniteError, match=message):
        require_finite(array, what="the output", item="volume v")
    require_finite(np.ones((2, 2)), what="x", item="y")
    with pytest.raises(NonFiniteError, match="peak"):
        require_finite(float("nan"), what="the peak", item="volume v")


def test_nan_in_a_test_volume_kspace_is_an_error_naming_volume_and_slice() -> None:
    volume = tiny_volume(1)
    kspace = np.array(volume.kspace)
    kspace[2, 0, 5, 5] = np.nan
    broken = dataclasses.replace(volume, kspace=kspace)
    message = r"volume k0: the zero-filled input .* slice\(s\) \[2\]"
    with pytest.raises(NonFiniteError, match=message):
        score_recon_checkpoint(_recon_checkpoint(), "m", _volumes(k0=broken), SPLITS, device="cpu")


def test_nan_in_the_ground_truth_is_an_error() -> None:
    volume = tiny_volume(2)
    target = np.array(volume.reconstruction)
    target[0, 1, 1] = np.inf
    broken = dataclasses.replace(volume, reconstruction=target)
    with pytest.raises(NonFiniteError, match=r"volume k1: the ground truth .* slice\(s\) \[0\]"):
        score_recon_checkpoint(_recon_checkpoint(), "m", _volumes(k1=broken), SPLITS, device="cpu")


def test_nan_output_of_a_model_is_an_error_naming_the_method() -> None:
    checkpoint = _recon_checkpoint()
    state = {name: tensor.clone() for name, tensor in checkpoint.state_dict.items()}
    name = next(key for key, tensor in state.items() if tensor.is_floating_point())
    state[name].fill_(float("nan"))
    broken = ModelCheckpoint(state, checkpoint.metadata)
    with pytest.raises(NonFiniteError, match="volume b0: the output of model 'nan_model'"):
        score_recon_checkpoint(broken, "nan_model", _volumes(), SPLITS, device="cpu")


def test_finite_data_scores_every_volume() -> None:
    scores = score_recon_checkpoint(_recon_checkpoint(), "m", _volumes(), SPLITS, device="cpu")
    assert set(scores.results["item_id"]) == {"b0", "k0", "k1"}
    assert np.isfinite(scores.results["value"]).all()
    assert torch.isfinite(torch.tensor(scores.results["value"].to_numpy())).all()


def test_nan_in_a_segmentation_subject_is_an_error_naming_subject_and_slice() -> None:
    from tests.tasks.test_segmentation import TINY, phantom

    from med_unlearning.data.labels import get_label_mapping
    from med_unlearning.data.seg_dataset import load_subjects
    from med_unlearning.io.checkpoint import CheckpointMetadata
    from med_unlearning.metrics.scoring import score_segmentation_checkpoint
    from med_unlearning.params.runtime import RuntimeParams
    from med_unlearning.params.segmentation import SegmentationParams
    from med_unlearning.tasks.segmentation import SegmentationTask

    params = SegmentationParams.model_validate(TINY)
    runtime = RuntimeParams(device="cpu", progress=False)
    task = SegmentationTask.from_params(params, runtime)
    model = task.build_model()
    checkpoint = ModelCheckpoint(
        model.state_dict(),
        CheckpointMetadata(
            task="segmentation", architecture=task.architecture,
            architecture_params=task.architecture_params, data_manifest=["1"],
        ),
    )
    subjects = load_subjects(
        {**phantom("1", 1), **phantom("070", 70)}, ["1", "070"], ["T1"],
        get_label_mapping(params.data.label_mapping),
    )
    image = np.array(subjects["070"].image)
    image[0, 3, 3, 1] = np.nan
    subjects["070"] = dataclasses.replace(subjects["070"], image=image)
    splits = pd.DataFrame({"subject_id": ["1", "070"], "role": ["retain_train", "forget_train"]})
    with pytest.raises(NonFiniteError, match=r"subject 070: the input image .* slice\(s\) \[1\]"):
        score_segmentation_checkpoint(checkpoint, "m", subjects, splits, params, runtime)
