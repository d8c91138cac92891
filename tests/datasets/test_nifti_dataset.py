"""NiftiDataset: round trips through Kedro, laziness, partitions, errors, preview."""

from __future__ import annotations

import inspect
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from kedro.io import DataCatalog
from kedro.io.core import DatasetError

from med_unlearning.datasets import NiftiDataset
from med_unlearning.io.nifti import NiftiFormatError


@pytest.mark.parametrize("image_type", [nib.Nifti1Image, nib.Nifti2Image])
def test_round_trip_keeps_affine_zooms_and_voxels(tmp_path: Path, make_image, image_type) -> None:
    source = make_image()
    image = image_type(np.asarray(source.dataobj), source.affine)
    dataset = NiftiDataset(filepath=str(tmp_path / "070" / "pre" / "T1.nii.gz"))

    assert not dataset.exists()
    dataset.save(image)
    loaded = dataset.load()

    assert dataset.exists() and type(loaded) is image_type
    assert not loaded.in_memory
    np.testing.assert_allclose(loaded.affine, image.affine, atol=1e-6)
    np.testing.assert_allclose(loaded.header.get_zooms(), (0.958, 0.958, 3.0), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(loaded.dataobj), np.asarray(image.dataobj))


def test_partitioned_subject_folders(tmp_path: Path, make_image) -> None:
    catalog = DataCatalog.from_config(
        {
            "mrbrains_raw": {
                "type": "partitions.PartitionedDataset",
                "path": str(tmp_path / "mrbrains18"),
                "dataset": "med_unlearning.datasets.NiftiDataset",
                "filename_suffix": ".nii.gz",
            }
        }
    )
    subject = {"070/pre/T1": make_image(seed=1), "070/segm": make_image()}
    catalog.save("mrbrains_raw", subject)

    partitions = catalog.load("mrbrains_raw")

    assert sorted(partitions) == ["070/pre/T1", "070/segm"]
    assert partitions["070/pre/T1"]().shape == (10, 8, 6)


def test_corrupt_file_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "FLAIR.nii.gz"
    path.write_bytes(b"\x1f\x8b garbage")

    with pytest.raises(DatasetError, match="FLAIR.nii.gz") as error:
        NiftiDataset(filepath=str(path)).load()
    assert isinstance(error.value.__cause__, NiftiFormatError)


def test_save_rejects_other_objects(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="Nifti1Image"):
        NiftiDataset(filepath=str(tmp_path / "a.nii.gz")).save(np.zeros((2, 2, 2)))


def test_save_args_set_the_compression_level(tmp_path: Path, make_image) -> None:
    fast, small = tmp_path / "fast.nii.gz", tmp_path / "small.nii.gz"
    image = nib.Nifti1Image(np.zeros((40, 40, 20), np.float32), np.eye(4))
    NiftiDataset(filepath=str(fast), save_args={"compresslevel": 1}).save(image)
    NiftiDataset(filepath=str(small), save_args={"compresslevel": 9}).save(image)
    assert small.stat().st_size < fast.stat().st_size


def test_describe_and_preview(tmp_path: Path, make_image, is_png) -> None:
    path = tmp_path / "segm.nii.gz"
    dataset = NiftiDataset(filepath=str(path))
    dataset.save(make_image())

    assert str(path) in repr(dataset)
    assert is_png(dataset.preview())
    annotation = inspect.signature(dataset.preview).return_annotation  # what kedro-viz reads
    assert getattr(annotation, "__name__", str(annotation)) == "ImagePreview"
