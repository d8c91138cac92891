"""NIfTI reader/writer: affine and header kept, laziness, atomic writes, bad input, grids."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nibabel.arrayproxy import ArrayProxy

import med_unlearning.io.nifti as nifti_io
from med_unlearning.io.nifti import (
    NiftiFormatError,
    NiftiGridError,
    check_same_grid,
    middle_axial_slice,
    read_nifti,
    read_nifti_array,
    write_nifti,
)

SPACING = (0.958, 0.958, 3.0)


def _image(shape=(12, 10, 6), seed: int = 0, image_type=nib.Nifti1Image, dtype=np.float32):
    rng = np.random.default_rng(seed)
    affine = np.diag([*SPACING, 1.0])
    affine[:3, 3] = (-5.7, 4.2, -9.0)
    data = (rng.random(shape) * 100).astype(dtype)
    return image_type(data, affine)


@pytest.mark.parametrize("image_type", [nib.Nifti1Image, nib.Nifti2Image])
@pytest.mark.parametrize("name", ["T1.nii.gz", "T1.nii"])
def test_round_trip_keeps_voxels_affine_and_header(tmp_path: Path, image_type, name: str) -> None:
    image = _image(image_type=image_type)
    image.header["descrip"] = b"test subject"
    path = tmp_path / "070" / "pre" / name

    write_nifti(path, image)
    loaded = read_nifti(path)

    assert type(loaded) is image_type
    np.testing.assert_allclose(loaded.affine, image.affine, atol=1e-6)
    np.testing.assert_allclose(loaded.header.get_zooms(), SPACING, rtol=1e-6)
    assert loaded.header["descrip"] == b"test subject"
    assert loaded.get_data_dtype() == np.float32
    np.testing.assert_array_equal(read_nifti_array(loaded), np.asarray(image.dataobj))
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")


def test_read_is_lazy(tmp_path: Path) -> None:
    path = tmp_path / "segm.nii.gz"
    write_nifti(path, _image())

    loaded = read_nifti(path)

    assert not loaded.in_memory
    assert isinstance(loaded.dataobj, ArrayProxy)
    assert loaded.shape == (12, 10, 6)


def test_same_image_gives_identical_bytes(tmp_path: Path) -> None:
    write_nifti(tmp_path / "a.nii.gz", _image())
    write_nifti(tmp_path / "b.nii.gz", _image())
    assert (tmp_path / "a.nii.gz").read_bytes() == (tmp_path / "b.nii.gz").read_bytes()


def test_failed_write_keeps_the_previous_file_and_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "FLAIR.nii.gz"
    write_nifti(path, _image(seed=1))
    before = path.read_bytes()

    def failing_replace(source, target):  # type: ignore[no-untyped-def]
        raise OSError("disk full")

    monkeypatch.setattr(nifti_io.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_nifti(path, _image(seed=2))

    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["FLAIR.nii.gz"]


def test_write_rejects_non_nifti_objects_and_names(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="Nifti1Image"):
        write_nifti(tmp_path / "x.nii.gz", np.zeros((2, 2, 2)))
    with pytest.raises(NiftiFormatError, match=r"\.nii or \.nii\.gz"):
        write_nifti(tmp_path / "x.mgz", _image())
    assert not list(tmp_path.iterdir())


def _text(path: Path, valid: bytes) -> None:
    path.write_text("not an image")


def _gzip_of_garbage(path: Path, valid: bytes) -> None:
    path.write_bytes(gzip.compress(b"\x00garbage" * 60))


def _cut_inside_header(path: Path, valid: bytes) -> None:
    path.write_bytes(valid[:40])


@pytest.mark.parametrize("corrupt", [_text, _gzip_of_garbage, _cut_inside_header])
def test_corrupt_file_raises_a_clear_error_naming_it(tmp_path: Path, corrupt) -> None:
    write_nifti(tmp_path / "valid.nii.gz", _image())
    path = tmp_path / "reg_IR.nii.gz"
    corrupt(path, (tmp_path / "valid.nii.gz").read_bytes())

    with pytest.raises(NiftiFormatError, match="not a readable NIfTI image") as error:
        read_nifti(path)
    assert str(path) in str(error.value)


def test_truncated_compressed_voxels_raise_a_clear_error_when_read(tmp_path: Path) -> None:
    path = tmp_path / "T1.nii.gz"
    write_nifti(path, _image(shape=(30, 30, 10)))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])

    image = read_nifti(path)  # the header is intact; the loss shows when voxels are read
    with pytest.raises(NiftiFormatError, match="voxel data cannot be read") as error:
        read_nifti_array(image)
    assert str(path) in str(error.value)


def test_truncated_uncompressed_file_is_caught_at_open(tmp_path: Path) -> None:
    path = tmp_path / "T1.nii"
    write_nifti(path, _image())
    path.write_bytes(path.read_bytes()[:-100])

    with pytest.raises(NiftiFormatError, match="truncated") as error:
        read_nifti(path)
    assert str(path) in str(error.value)


def test_check_same_grid_accepts_equal_grids_within_tolerance() -> None:
    image, label = _image(), _image(seed=3, dtype=np.uint8)
    label.set_sform(label.affine + 1e-4)

    check_same_grid(image, label, "070/pre/FLAIR.nii.gz", "070/segm.nii.gz")


def test_check_same_grid_names_both_files_on_shape_mismatch() -> None:
    image, label = _image(), _image(shape=(12, 10, 5))

    with pytest.raises(NiftiGridError, match=r"070/segm\.nii\.gz has shape \(12, 10, 5\) but "
                                             r"070/pre/FLAIR\.nii\.gz has shape \(12, 10, 6\)"):
        check_same_grid(image, label, "070/pre/FLAIR.nii.gz", "070/segm.nii.gz")


def test_check_same_grid_names_both_files_on_affine_mismatch() -> None:
    image, label = _image(), _image()
    shifted = label.affine.copy()
    shifted[0, 3] += 0.01
    label.set_sform(shifted)

    expected = r"segm\.nii\.gz and FLAIR\.nii\.gz have different affines"
    with pytest.raises(NiftiGridError, match=expected):
        check_same_grid(image, label, "FLAIR.nii.gz", "segm.nii.gz")


def test_middle_axial_slice_reads_the_middle_of_the_third_axis(tmp_path: Path) -> None:
    image = _image()
    write_nifti(tmp_path / "a.nii.gz", image)

    middle = middle_axial_slice(read_nifti(tmp_path / "a.nii.gz"))

    np.testing.assert_array_equal(middle, np.asarray(image.dataobj)[:, :, 3])
