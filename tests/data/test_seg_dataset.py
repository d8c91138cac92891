"""MRBrainS18 subjects: loading, checks with clear errors, preprocessing, random patches."""

from __future__ import annotations

import math

import nibabel as nib
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from med_unlearning.data.labels import IGNORE_INDEX, LabelValueError, get_label_mapping
from med_unlearning.data.samples import SegmentationSample
from med_unlearning.data.seg_dataset import (
    MissingModalityError,
    PatchDataset,
    SegmentationDataError,
    load_subjects,
)
from med_unlearning.io.nifti import NiftiGridError

SHAPE = (20, 18, 8)
AFFINE = np.array(
    [[0.958, 0, 0, -10.0], [0, 0.958, 0, 12.0], [0, 0, 3.0, -30.0], [0, 0, 0, 1]], dtype=float
)
EVAL8 = get_label_mapping("evaluation_8")


def phantom_labels(seed: int, shape: tuple[int, int, int] = SHAPE) -> np.ndarray:
    """Nested shells with MRBrainS18 labels inside a zero margin (skull area left empty)."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    radius = np.sqrt(grid[0] ** 2 + grid[1] ** 2 + (0.5 * grid[2]) ** 2)
    radius += rng.normal(0, 0.03, shape)
    labels = np.zeros(shape, dtype=np.uint8)
    for limit, label in ((0.85, 5), (0.75, 1), (0.55, 3), (0.3, 2), (0.15, 6)):
        labels[radius < limit] = label
    labels[(radius < 0.55) & (grid[2] < -0.6)] = 8
    labels[(labels == 3) & (grid[0] > 0.25)] = 9  # an "infarction"
    return labels


def phantom_subject(subject: str, seed: int = 0, modalities=("T1",), shape=SHAPE) -> dict:
    """Partitions of one subject: ``<subject>/pre/<name>`` images and ``<subject>/segm``."""
    labels = phantom_labels(seed, shape)
    rng = np.random.default_rng(seed + 100)
    files = {f"{subject}/segm": nib.Nifti1Image(labels, AFFINE)}
    names = {"T1": "T1", "IR": "reg_IR", "FLAIR": "FLAIR"}
    for index, modality in enumerate(modalities):
        contrast = np.array([0, 60, 70, 100, 50, 20, 10, 40, 80, 30, 30], dtype=np.float32)
        image = (contrast[labels] + index * 7 + rng.normal(0, 2, shape)) * (labels > 0)
        image = nib.Nifti1Image(image.astype(np.float32), AFFINE)
        files[f"{subject}/pre/{names[modality]}"] = image
    return files


def test_load_stacks_modalities_maps_labels_crops_and_normalises() -> None:
    partitions = phantom_subject("070", modalities=("T1", "IR", "FLAIR"))
    subject = load_subjects(partitions, ["070"], ["T1", "IR", "FLAIR"], EVAL8, crop_margin=1)["070"]
    assert subject.modalities == ("T1", "IR", "FLAIR")
    assert subject.image.dtype == np.float32 and subject.image.shape[0] == 3
    assert subject.image.shape[1:] == subject.label.shape
    assert subject.full_shape == SHAPE and np.allclose(subject.affine, AFFINE)
    assert subject.spacing == pytest.approx((0.958, 0.958, 3.0))
    # cropped to the labelled box plus one voxel, never past the grid
    raw = phantom_labels(0)
    nonzero = np.argwhere(raw > 0)
    assert subject.crop_start == tuple(int(v) for v in np.maximum(nonzero.min(0) - 1, 0))
    # z-scored on non-zero voxels, channel by channel; background stays 0
    for channel in subject.image:
        values = channel[channel != 0]
        assert abs(values.mean()) < 1e-4 and values.std() == pytest.approx(1.0, abs=1e-3)
    # labels on the full grid are the mapped raw labels (9 -> ignored)
    np.testing.assert_array_equal(subject.full_label(), EVAL8.apply(raw))
    assert (subject.label == IGNORE_INDEX).any()
    assert subject.files == {
        "T1": "070/pre/T1.nii.gz",
        "IR": "070/pre/reg_IR.nii.gz",
        "FLAIR": "070/pre/FLAIR.nii.gz",
        "segm": "070/segm.nii.gz",
    }
    assert "070" in repr(subject)


def test_loaders_are_called_lazily_and_reg_t1_is_preferred() -> None:
    partitions = phantom_subject("1")
    registered = partitions.pop("1/pre/T1")
    partitions["1/pre/reg_T1"] = registered
    # an unregistered T1 on another grid, as in real MRBrainS18 folders
    partitions["1/pre/T1"] = nib.Nifti1Image(np.ones((40, 40, 40), np.float32), np.eye(4))
    calls = []
    lazy = {
        key: (lambda key=key, image=image: calls.append(key) or image)
        for key, image in partitions.items()
    }
    subject = load_subjects(lazy, ["1"], ["T1"], EVAL8)["1"]
    assert subject.files["T1"] == "1/pre/reg_T1.nii.gz"
    assert "1/pre/T1" not in calls


def test_missing_modality_names_subject_and_file() -> None:
    with pytest.raises(MissingModalityError, match=r"'070'.*'FLAIR'.*070/pre/FLAIR\.nii\.gz"):
        load_subjects(phantom_subject("070"), ["070"], ["T1", "FLAIR"], EVAL8)


def test_missing_label_is_an_error_only_when_required() -> None:
    partitions = phantom_subject("5")
    del partitions["5/segm"]
    with pytest.raises(MissingModalityError, match=r"5/segm\.nii\.gz"):
        load_subjects(partitions, ["5"], ["T1"], EVAL8)
    subject = load_subjects(partitions, ["5"], ["T1"], EVAL8, require_label=False)["5"]
    assert subject.label is None and subject.full_label() is None


def test_label_grid_must_match_the_image() -> None:
    partitions = phantom_subject("7")
    partitions["7/segm"] = nib.Nifti1Image(np.zeros((20, 18, 9), np.uint8), AFFINE)
    with pytest.raises(NiftiGridError, match=r"7/segm\.nii\.gz.*shape"):
        load_subjects(partitions, ["7"], ["T1"], EVAL8)
    shifted = AFFINE.copy()
    shifted[0, 3] += 5
    partitions["7/segm"] = nib.Nifti1Image(phantom_labels(0), shifted)
    with pytest.raises(NiftiGridError, match=r"affines"):
        load_subjects(partitions, ["7"], ["T1"], EVAL8)


def test_label_values_outside_the_legend_name_subject_and_file() -> None:
    partitions = phantom_subject("14")
    labels = phantom_labels(0)
    labels[0, 0, 0] = 12
    partitions["14/segm"] = nib.Nifti1Image(labels, AFFINE)
    with pytest.raises(LabelValueError, match=r"'14'.*14/segm\.nii\.gz.*\[12\]"):
        load_subjects(partitions, ["14"], ["T1"], EVAL8)


def test_unknown_subjects_and_non_finite_images_are_errors() -> None:
    partitions = phantom_subject("1")
    with pytest.raises(SegmentationDataError, match=r"\['148'\].*subjects found: \['1'\]"):
        load_subjects(partitions, ["148"], ["T1"], EVAL8)
    image = np.asarray(partitions["1/pre/T1"].dataobj).copy()
    image[3, 3, 3] = np.nan
    partitions["1/pre/T1"] = nib.Nifti1Image(image, AFFINE)
    with pytest.raises(SegmentationDataError, match=r"1/pre/T1\.nii\.gz.*NaN"):
        load_subjects(partitions, ["1"], ["T1"], EVAL8)


@pytest.fixture
def subjects() -> list:
    partitions = {**phantom_subject("1", seed=1), **phantom_subject("4", seed=4)}
    return list(load_subjects(partitions, ["1", "4"], ["T1"], EVAL8).values())


def test_patches_have_the_right_shapes_types_and_ids(subjects: list) -> None:
    dataset = PatchDataset(subjects, (8, 8, 4), samples_per_subject=3)
    assert len(dataset) == 6
    torch.manual_seed(0)
    items = [dataset[i] for i in range(len(dataset))]
    assert [item.ids for item in items] == ["1", "4"] * 3
    for item in items:
        assert item.image.shape == (1, 8, 8, 4) and item.image.dtype == torch.float32
        assert item.label.shape == (8, 8, 4) and item.label.dtype == torch.int64
        assert set(item.label.unique().tolist()) <= set(range(9)) | {IGNORE_INDEX}
    assert not all(torch.equal(items[0].image, other.image) for other in items[2::2])


def test_a_loader_batch_is_a_segmentation_sample_with_the_documented_shapes(
    subjects: list,
) -> None:
    dataset = PatchDataset(subjects, (8, 8, 4), samples_per_subject=2)
    assert isinstance(dataset[0], SegmentationSample)
    batch = next(iter(DataLoader(dataset, batch_size=3, shuffle=False)))
    assert type(batch) is SegmentationSample
    assert batch._fields == ("image", "label", "ids")
    assert batch.image.shape == (3, 1, 8, 8, 4) and batch.image.dtype == torch.float32
    assert batch.label.shape == (3, 8, 8, 4) and batch.label.dtype == torch.int64
    assert batch.ids == ("1", "4", "1")


def test_patches_are_reproducible_from_the_torch_seed(subjects: list) -> None:
    dataset = PatchDataset(subjects, (8, 8, 4), samples_per_subject=2)
    torch.manual_seed(5)
    first = [dataset[i].image for i in range(4)]
    torch.manual_seed(5)
    second = [dataset[i].image for i in range(4)]
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


def test_positive_patches_are_centred_on_labels_and_small_volumes_padded(subjects: list) -> None:
    dataset = PatchDataset(subjects, (4, 4, 2), samples_per_subject=10, pos_fraction=1.0)
    torch.manual_seed(0)
    for index in range(len(dataset)):
        label = dataset[index].label
        assert label[2, 2, 1] != 0  # the patch centre is a labelled voxel
    big = PatchDataset(subjects, (32, 32, 10), samples_per_subject=1)
    item = big[0]
    assert item.image.shape == (1, 32, 32, 10) and item.label.shape == (32, 32, 10)


def test_patch_dataset_rejects_bad_input(subjects: list) -> None:
    with pytest.raises(SegmentationDataError, match="at least one subject"):
        PatchDataset([], (8, 8, 4), 1)
    unlabeled = load_subjects(
        {key: value for key, value in phantom_subject("5").items() if not key.endswith("segm")},
        ["5"], ["T1"], EVAL8, require_label=False,
    )["5"]
    with pytest.raises(SegmentationDataError, match=r"\['5'\] have no label"):
        PatchDataset([unlabeled], (8, 8, 4), 1)
    with pytest.raises(ValueError, match="pos_fraction"):
        PatchDataset(subjects, (8, 8, 4), 1, pos_fraction=1.5)
    assert math.isclose(PatchDataset(subjects, (8, 8, 4), 1, pos_fraction=0.25).pos_fraction, 0.25)


def test_noisy_background_is_cropped_away_but_labels_never_are() -> None:
    partitions = phantom_subject("148", seed=3)
    labels = phantom_labels(3)
    image = np.asarray(partitions["148/pre/T1"].dataobj).copy()
    image += np.random.default_rng(0).uniform(0.1, 1.0, SHAPE).astype(np.float32)  # MR noise floor
    labels[0, 0, 0] = 5  # a labelled voxel in a corner of the noise
    partitions["148/pre/T1"] = nib.Nifti1Image(image, AFFINE)
    partitions["148/segm"] = nib.Nifti1Image(labels, AFFINE)
    subject = load_subjects(partitions, ["148"], ["T1"], EVAL8, crop_margin=0)["148"]
    assert subject.crop_start == (0, 0, 0)  # the corner label is kept
    np.testing.assert_array_equal(subject.full_label(), EVAL8.apply(labels))
    without_corner = labels.copy()
    without_corner[0, 0, 0] = 0
    partitions["148/segm"] = nib.Nifti1Image(without_corner, AFFINE)
    cropped = load_subjects(partitions, ["148"], ["T1"], EVAL8, crop_margin=0)["148"]
    head = np.argwhere(without_corner > 0)
    assert cropped.crop_start == tuple(int(v) for v in head.min(0))
    assert cropped.image.shape[1:] == tuple(int(v) for v in head.max(0) - head.min(0) + 1)
    everything = load_subjects(partitions, ["148"], ["T1"], EVAL8, crop_threshold=0.0)["148"]
    assert everything.image.shape[1:] == SHAPE  # threshold 0: any positive voxel is foreground
