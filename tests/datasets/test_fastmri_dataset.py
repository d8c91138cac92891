"""FastMRIVolumeDataset: round trips through Kedro, partitions, errors, preview."""

from __future__ import annotations

import inspect
from pathlib import Path

import h5py
import numpy as np
import pytest
from kedro.io import DataCatalog
from kedro.io.core import DatasetError
from kedro_datasets.partitions import PartitionedDataset

from med_unlearning.datasets import FastMRIVolumeDataset
from med_unlearning.io.fastmri import FastMRIFormatError, LazyH5Array


@pytest.mark.parametrize("multicoil", [True, False])
def test_round_trip_through_the_dataset(tmp_path: Path, make_volume, multicoil: bool) -> None:
    volume = make_volume(multicoil=multicoil)
    dataset = FastMRIVolumeDataset(filepath=str(tmp_path / "file1000.h5"))

    assert not dataset.exists()
    dataset.save(volume)
    loaded = dataset.load()

    assert dataset.exists()
    assert isinstance(loaded.kspace, LazyH5Array) and isinstance(loaded.reconstruction, LazyH5Array)
    np.testing.assert_array_equal(loaded.kspace[1], volume.kspace[1])
    np.testing.assert_array_equal(np.asarray(loaded.reconstruction), volume.reconstruction)
    assert loaded.attrs == volume.attrs and loaded.ismrmrd_header == volume.ismrmrd_header


def test_save_args_compress_the_arrays(tmp_path: Path, make_volume) -> None:
    path = tmp_path / "vol.h5"
    FastMRIVolumeDataset(filepath=str(path), save_args={"compression": "gzip"}).save(make_volume())
    with h5py.File(path, "r") as h5_file:
        assert h5_file["kspace"].compression == "gzip"


def test_unknown_save_args_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="unknown save_args.*'compresion'"):
        FastMRIVolumeDataset(filepath=str(tmp_path / "v.h5"), save_args={"compresion": "gzip"})


def test_partitioned_folder_with_sub_folders(tmp_path: Path, make_volume) -> None:
    folder = tmp_path / "fastmri"
    config = {
        "fastmri_raw": {
            "type": "partitions.PartitionedDataset",
            "path": str(folder),
            "dataset": "med_unlearning.datasets.FastMRIVolumeDataset",
            "filename_suffix": ".h5",
        }
    }
    catalog = DataCatalog.from_config(config)
    catalog.save("fastmri_raw", {"brain/file_a": make_volume(seed=1),
                                         "knee/deep/file_b": make_volume(seed=2)})

    partitions = catalog.load("fastmri_raw")

    assert sorted(partitions) == ["brain/file_a", "knee/deep/file_b"]
    assert partitions["knee/deep/file_b"]().attrs["patient_id"] == "p2"
    assert (folder / "knee" / "deep" / "file_b.h5").is_file()


def test_load_error_carries_the_format_error_and_file_name(tmp_path: Path) -> None:
    path = tmp_path / "broken.h5"
    path.write_text("not hdf5")

    with pytest.raises(DatasetError, match="broken.h5") as error:
        FastMRIVolumeDataset(filepath=str(path)).load()
    assert isinstance(error.value.__cause__, FastMRIFormatError)


def test_save_rejects_other_objects(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="saves FastMRIVolume objects"):
        FastMRIVolumeDataset(filepath=str(tmp_path / "v.h5")).save(np.zeros(3))


def test_remote_paths_are_refused_clearly() -> None:
    with pytest.raises(DatasetError, match="local files only"):
        FastMRIVolumeDataset(filepath="s3://bucket/file.h5")


def test_describe_and_repr_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "file1000.h5"
    dataset = FastMRIVolumeDataset(filepath=str(path), load_args={"locking": False})
    assert dataset._describe()["filepath"] == str(path)
    assert str(path) in repr(dataset) and "locking" in repr(dataset)
    # PartitionedDataset builds a placeholder dataset with an empty path for its repr
    assert "FastMRIVolumeDataset" in repr(
        PartitionedDataset(path=str(tmp_path), dataset=FastMRIVolumeDataset, filename_suffix=".h5")
    )


@pytest.mark.parametrize("with_recon", [True, False])
def test_preview_is_a_png_of_the_middle_slice(
    tmp_path: Path, make_volume, is_png, with_recon: bool
) -> None:
    dataset = FastMRIVolumeDataset(filepath=str(tmp_path / "v.h5"))
    dataset.save(make_volume(with_recon=with_recon))

    assert is_png(dataset.preview())
    annotation = inspect.signature(dataset.preview).return_annotation  # what kedro-viz reads
    assert getattr(annotation, "__name__", str(annotation)) == "ImagePreview"
