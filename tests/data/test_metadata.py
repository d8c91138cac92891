"""Metadata tables: built from headers only, anatomy mapping, user columns, clear errors."""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from kedro_datasets.partitions import PartitionedDataset
from nibabel.arrayproxy import ArrayProxy

from med_unlearning.data.metadata import (
    FASTMRI_COLUMNS,
    MRBRAINS_COLUMNS,
    MetadataError,
    anatomy_from_acquisition,
    build_fastmri_metadata,
    build_mrbrains_metadata,
    group_mrbrains_partitions,
    join_user_metadata,
)
from med_unlearning.io.fastmri import FastMRIFormatError, FastMRIVolume, write_fastmri_volume
from med_unlearning.io.nifti import NiftiGridError, write_nifti


def _header(model: str | None, vendor: str = "SIEMENS", field: str = "2.89362") -> bytes:
    system = f"<systemModel>{model}</systemModel>" if model else ""
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD"><acquisitionSystemInformation>'
        f"<systemVendor>{vendor}</systemVendor>{system}"
        f"<systemFieldStrength_T>{field}</systemFieldStrength_T>"
        "</acquisitionSystemInformation></ismrmrdHeader>"
    ).encode()


def _volume(acquisition: str, slices: int, multicoil: bool = True, model: str | None = "Skyra",
            recon: bool = True, **attrs) -> FastMRIVolume:
    shape = (slices, 3, 20, 14) if multicoil else (slices, 20, 14)
    return FastMRIVolume(
        kspace=np.ones(shape, np.complex64),
        reconstruction=np.full((slices, 10, 10), 2.0, np.float32) if recon else None,
        ismrmrd_header=_header(model),
        attrs={"acquisition": acquisition, "patient_id": f"pt-{acquisition}", "norm": 1.0, **attrs},
    )


@pytest.fixture
def fastmri_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "fastmri"
    write_fastmri_volume(folder / "brain" / "file_brain_AXT2_001.h5", _volume("AXT2", 4, max=3.5))
    write_fastmri_volume(folder / "knee" / "file1000.h5",
                         _volume("CORPD_FBK", 2, multicoil=False, model=None, recon=False))
    return folder


def _partitions(folder: Path, dataset: str, suffix: str) -> dict:
    return PartitionedDataset(path=str(folder), dataset=dataset, filename_suffix=suffix).load()


def _fastmri_partitions(folder: Path) -> dict:
    return _partitions(folder, "med_unlearning.datasets.FastMRIVolumeDataset", ".h5")


@pytest.mark.parametrize(
    ("acquisition", "anatomy"),
    [
        ("CORPD_FBK", "knee"), ("CORPDFS_FBK", "knee"), ("sag_knee_pd", "knee"),
        ("AXT1", "brain"), ("AXT1POST", "brain"), ("AXT1PRE", "brain"), ("AXT2", "brain"),
        ("AXFLAIR", "brain"), (" axt2 ", "brain"), ("AXT2_FS", "brain"), (b"AXFLAIR", "brain"),
        ("SAGT2", "unknown"), ("", "unknown"),
    ],
)
def test_anatomy_from_acquisition(acquisition, anatomy: str) -> None:
    assert anatomy_from_acquisition(acquisition) == anatomy


def test_fastmri_table_from_headers(fastmri_folder: Path) -> None:
    table = build_fastmri_metadata(_fastmri_partitions(fastmri_folder), pd.DataFrame())

    assert tuple(table.columns) == FASTMRI_COLUMNS
    assert list(table["volume_id"]) == ["brain/file_brain_AXT2_001", "knee/file1000"]
    brain, knee = table.iloc[0], table.iloc[1]
    assert (brain["file_name"], brain["anatomy"], brain["acquisition"]) == (
        "file_brain_AXT2_001.h5", "brain", "AXT2")
    assert (brain["patient_id"], brain["scanner_model"], brain["scanner_vendor"]) == (
        "pt-AXT2", "Skyra", "SIEMENS")
    assert brain["field_strength"] == pytest.approx(2.89362)
    sizes = ("num_slices", "num_coils", "kspace_height", "kspace_width")
    assert tuple(brain[list(sizes)]) == (4, 3, 20, 14)
    assert (brain["recon_height"], brain["recon_width"]) == (10, 10)
    assert bool(brain["has_max"]) and brain["max"] == 3.5
    assert (knee["anatomy"], knee["num_slices"], knee["num_coils"]) == ("knee", 2, 1)
    assert knee["scanner_model"] == ""
    assert pd.isna(knee["recon_height"]) and not knee["has_max"] and math.isnan(knee["max"])


def test_fastmri_table_reads_no_voxels(fastmri_folder: Path, monkeypatch) -> None:
    reads: list[str] = []
    original = h5py.Dataset.__getitem__

    def recording(self, index):  # type: ignore[no-untyped-def]
        reads.append(self.name)
        return original(self, index)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", recording)
    build_fastmri_metadata(_fastmri_partitions(fastmri_folder), pd.DataFrame())

    assert set(reads) == {"/ismrmrd_header"}


def test_unreadable_fastmri_file_is_an_error_naming_it(fastmri_folder: Path) -> None:
    broken = fastmri_folder / "knee" / "file_broken.h5"
    broken.write_bytes(b"\x89HDF\r\n\x1a\n truncated")

    with pytest.raises(FastMRIFormatError, match="knee/file_broken") as error:
        build_fastmri_metadata(_fastmri_partitions(fastmri_folder), pd.DataFrame())
    assert str(broken) in str(error.value)


def test_user_columns_are_joined_by_id(fastmri_folder: Path) -> None:
    user = pd.DataFrame({"volume_id": ["knee/file1000"], "site": ["NYU"], "device": ["Skyra"]})

    table = build_fastmri_metadata(_fastmri_partitions(fastmri_folder), user)

    assert list(table.columns[-2:]) == ["site", "device"]
    assert table.set_index("volume_id").loc["knee/file1000", "site"] == "NYU"
    assert pd.isna(table.set_index("volume_id").loc["brain/file_brain_AXT2_001", "site"])


def _table() -> pd.DataFrame:
    return pd.DataFrame({"subject_id": ["070", "071", "148"], "has_T1": [True, True, False]})


def _user(**columns) -> pd.DataFrame:
    user = pd.DataFrame(columns)
    user.attrs["source"] = "/data/mrbrains18_metadata.csv"
    return user


def test_join_with_no_user_table_returns_the_table() -> None:
    table = _table()
    assert join_user_metadata(table, pd.DataFrame(), "subject_id") is table
    assert join_user_metadata(table, None, "subject_id") is table


def test_join_compares_ids_as_text() -> None:
    user = _user(subject_id=[" 071", "148"], site=["a", "b"])
    joined = join_user_metadata(_table(), user, "subject_id")
    assert list(joined["site"].fillna("-")) == ["-", "a", "b"]
    assert len(joined) == 3


def test_ids_matching_nothing_name_the_csv() -> None:
    user = _user(subject_id=["1", "4", "5"], site=["x", "y", "z"])
    with pytest.raises(MetadataError, match=r"mrbrains18_metadata\.csv: none of its 3 ids"):
        join_user_metadata(_table(), user, "subject_id")


def test_some_unmatched_ids_are_listed() -> None:
    user = _user(subject_id=["070", "999", "998"], site=["x", "y", "z"])
    with pytest.raises(MetadataError, match=r"2 id\(s\).*\['999', '998'\]"):
        join_user_metadata(_table(), user, "subject_id")


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ({"subject": ["070"], "site": ["x"]}, "missing id column 'subject_id'"),
        ({"subject_id": ["070", "070"], "site": ["x", "y"]}, r"duplicate ids.*'070'"),
        ({"subject_id": ["070"], "has_T1": [False]}, r"columns \['has_T1'\] clash"),
        ({"subject_id": ["070", None], "site": ["x", "y"]}, "empty 'subject_id'"),
    ],
)
def test_unusable_user_tables_are_rejected(user: dict, expected: str) -> None:
    with pytest.raises(MetadataError, match=expected):
        join_user_metadata(_table(), _user(**user), "subject_id")


def _image(shape=(12, 10, 4), spacing=(0.958, 0.958, 3.0)) -> nib.Nifti1Image:
    return nib.Nifti1Image(np.zeros(shape, np.float32), np.diag([*spacing, 1.0]))


@pytest.fixture
def mrbrains_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "mrbrains18"
    for name in ("pre/T1", "pre/reg_IR", "pre/FLAIR", "segm"):
        write_nifti(folder / "070" / f"{name}.nii.gz", _image())
    original_t1 = _image(shape=(20, 20, 20), spacing=(1, 1, 1))  # off-grid, like the real orig/
    write_nifti(folder / "070" / "orig" / "T1.nii.gz", original_t1)
    for name in ("pre/reg_T1", "pre/reg_IR"):  # no FLAIR and no segmentation
        write_nifti(folder / "148" / f"{name}.nii.gz", _image(shape=(8, 8, 5)))
    return folder


def _nifti_partitions(folder: Path) -> dict:
    return _partitions(folder, "med_unlearning.datasets.NiftiDataset", ".nii.gz")


def test_mrbrains_table_from_headers(mrbrains_folder: Path, monkeypatch) -> None:
    def no_voxels(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("voxels were read")

    monkeypatch.setattr(ArrayProxy, "__array__", no_voxels)
    monkeypatch.setattr(ArrayProxy, "__getitem__", no_voxels)

    table = build_mrbrains_metadata(_nifti_partitions(mrbrains_folder), pd.DataFrame())

    assert tuple(table.columns) == MRBRAINS_COLUMNS
    assert list(table["subject_id"]) == ["070", "148"]
    full, partial = table.iloc[0], table.iloc[1]
    assert full["modalities"] == "FLAIR;IR;T1"
    assert all(full[["has_T1", "has_IR", "has_FLAIR", "has_segmentation"]])
    assert (full["shape_x"], full["shape_y"], full["shape_z"]) == (12, 10, 4)
    assert (full["spacing_x"], full["spacing_y"], full["spacing_z"]) == (0.958, 0.958, 3.0)
    assert partial["modalities"] == "IR;T1"
    assert not partial["has_FLAIR"] and not partial["has_segmentation"]
    assert (partial["shape_x"], partial["shape_z"]) == (8, 5)


def test_segmentation_on_another_grid_names_both_files(mrbrains_folder: Path) -> None:
    write_nifti(mrbrains_folder / "148" / "segm.nii.gz", _image(shape=(8, 8, 4)))

    with pytest.raises(NiftiGridError) as error:
        build_mrbrains_metadata(_nifti_partitions(mrbrains_folder), pd.DataFrame())

    message = str(error.value)
    assert "148/segm.nii.gz has shape (8, 8, 4)" in message
    assert "148/pre/reg_T1.nii.gz has shape (8, 8, 5)" in message


def test_mrbrains_user_columns_join_on_text_ids(mrbrains_folder: Path) -> None:
    user = _user(subject_id=["148"], scanner=["Philips Ingenia"])
    table = build_mrbrains_metadata(_nifti_partitions(mrbrains_folder), user)
    assert table.set_index("subject_id").loc["148", "scanner"] == "Philips Ingenia"


def test_group_partitions_prefers_registered_files_and_ignores_orig() -> None:
    groups = group_mrbrains_partitions(
        ["1/pre/T1", "1/pre/reg_T1", "1/pre/IR", "1/pre/reg_IR", "1/orig/FLAIR", "1/segm",
         "site/2/pre/FLAIR", "stray_file"]
    )

    assert list(groups) == ["1", "site/2"]
    assert groups["1"].modalities == {"T1": "1/pre/reg_T1", "IR": "1/pre/reg_IR"}
    assert groups["1"].segmentation == "1/segm"
    assert sorted(groups["1"].ignored) == ["1/orig/FLAIR", "1/pre/IR", "1/pre/T1"]
    assert groups["site/2"].modalities == {"FLAIR": "site/2/pre/FLAIR"}
