"""Shapes of a fastMRI file are checked against each other: target vs k-space vs header."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from med_unlearning.data.sample_fastmri import ismrmrd_header
from med_unlearning.io.fastmri import (
    FastMRIFormatError,
    FastMRIVolume,
    read_fastmri_volume,
    write_fastmri_volume,
)


def _header(recon: tuple[int, int], kspace: tuple[int, int] = (32, 32)) -> bytes:
    return ismrmrd_header(
        protocol="AXT2", scanner="Skyra", kspace_size=kspace, recon_size=recon, num_slices=2, num_coils=2,
        fov_mm=220.0, slice_thickness_mm=5.0, measurement_id="m",
    )


def _raw_file(
    path: Path, kspace_shape: tuple[int, ...], recon_shape: tuple[int, ...] | None,
    header: bytes = b"",
) -> Path:
    """A file written with h5py directly (the project's writer would refuse it)."""
    with h5py.File(path, "w") as handle:
        handle["kspace"] = np.ones(kspace_shape, np.complex64)
        if recon_shape is not None:
            handle["reconstruction_rss"] = np.ones(recon_shape, np.float32)
        if header:
            handle["ismrmrd_header"] = np.frombuffer(header, dtype="S1").tobytes()
        handle.attrs["acquisition"] = "AXT2"
    return path


def test_target_larger_than_kspace_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = _raw_file(tmp_path / "big.h5", (2, 2, 32, 32), (2, 40, 32))
    with pytest.raises(FastMRIFormatError, match=r"big\.h5: field 'reconstruction_rss' is 40x32 "
                       r"but 'kspace' is 32x32"):
        read_fastmri_volume(path)


def test_target_not_the_header_recon_matrix_is_an_error(tmp_path: Path) -> None:
    path = _raw_file(tmp_path / "hdr.h5", (2, 2, 32, 32), (2, 24, 24), _header((16, 16)))
    with pytest.raises(FastMRIFormatError, match=r"hdr\.h5: .* is 24x24 but the ISMRMRD header's "
                       r"recon matrix .* is 16x16"):
        read_fastmri_volume(path)


def test_consistent_file_reads(tmp_path: Path) -> None:
    path = _raw_file(tmp_path / "ok.h5", (2, 2, 32, 32), (2, 16, 16), _header((16, 16)))
    volume = read_fastmri_volume(path)
    assert volume.num_slices == 2 and tuple(volume.reconstruction.shape) == (2, 16, 16)


@pytest.mark.parametrize("shape", [(0, 2, 32, 32), (0, 32, 32), (2, 2, 0, 32)])
def test_zero_slices_or_empty_kspace_is_an_error_naming_the_file(
    tmp_path: Path, shape: tuple[int, ...]
) -> None:
    path = _raw_file(tmp_path / "empty.h5", shape, None)
    with pytest.raises(FastMRIFormatError, match=r"empty\.h5: field 'kspace' has shape .*(zero "
                       r"slices|empty dimension)"):
        read_fastmri_volume(path)


def test_the_writer_refuses_the_same_mismatches(tmp_path: Path) -> None:
    kspace = np.ones((2, 2, 32, 32), np.complex64)
    bad = [
        FastMRIVolume(kspace, np.ones((2, 40, 40), np.float32), b""),
        FastMRIVolume(kspace, np.ones((2, 24, 24), np.float32), _header((16, 16))),
        FastMRIVolume(np.ones((0, 2, 32, 32), np.complex64), None, b""),
    ]
    for index, volume in enumerate(bad):
        target = tmp_path / f"v{index}.h5"
        with pytest.raises(FastMRIFormatError, match=f"v{index}.h5"):
            write_fastmri_volume(target, volume)
        assert not target.exists()
