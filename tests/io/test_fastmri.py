"""fastMRI HDF5 reader/writer: schema, laziness, atomic writes, bad input, header parsing."""

from __future__ import annotations

import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest

from med_unlearning.io import fastmri as fastmri_io
from med_unlearning.io.fastmri import (
    FastMRIFormatError,
    FastMRIVolume,
    LazyH5Array,
    middle_slice_image,
    parse_ismrmrd_header,
    read_fastmri_volume,
    volume_max,
    write_fastmri_volume,
)


def _dataset_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the name of every h5py dataset whose values are read."""
    reads: list[str] = []
    original = h5py.Dataset.__getitem__

    def recording(self, index):  # type: ignore[no-untyped-def]
        reads.append(self.name)
        return original(self, index)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", recording)
    return reads


@pytest.mark.parametrize("multicoil", [True, False])
def test_round_trip_keeps_schema_values_and_attrs(
    tmp_path: Path, make_volume, multicoil: bool
) -> None:
    volume = make_volume(multicoil=multicoil, site="nyu")
    path = tmp_path / "file1000.h5"
    write_fastmri_volume(path, volume)

    loaded = read_fastmri_volume(path)
    recon_key = "reconstruction_rss" if multicoil else "reconstruction_esc"
    with h5py.File(path, "r") as h5_file:
        assert set(h5_file.keys()) == {"kspace", recon_key, "ismrmrd_header"}
        assert h5_file["kspace"].dtype == np.complex64
        assert h5_file[recon_key].dtype == np.float32
    assert loaded.reconstruction_key == recon_key
    assert loaded.num_coils == (4 if multicoil else 1)
    np.testing.assert_array_equal(np.asarray(loaded.kspace), volume.kspace)
    np.testing.assert_array_equal(np.asarray(loaded.reconstruction), volume.reconstruction)
    assert loaded.ismrmrd_header == volume.ismrmrd_header
    assert loaded.attrs == volume.attrs
    assert loaded.source == path


def test_read_is_lazy_and_reads_slices_on_demand(tmp_path: Path, make_volume, monkeypatch) -> None:
    volume = make_volume(slices=4)
    path = tmp_path / "vol.h5"
    write_fastmri_volume(path, volume)
    reads = _dataset_reads(monkeypatch)

    loaded = read_fastmri_volume(path)

    assert isinstance(loaded.kspace, LazyH5Array)
    assert isinstance(loaded.reconstruction, LazyH5Array)
    assert loaded.kspace.shape == (4, 4, 32, 24) and loaded.num_slices == 4
    assert reads == ["/ismrmrd_header"]
    np.testing.assert_array_equal(loaded.kspace[2], volume.kspace[2])
    np.testing.assert_array_equal(loaded.reconstruction[1], volume.reconstruction[1])
    assert reads[1:] == ["/kspace", "/reconstruction_rss"]


def test_lazy_array_pickles_without_data(tmp_path: Path, make_volume) -> None:
    volume = make_volume()
    path = tmp_path / "vol.h5"
    write_fastmri_volume(path, volume)
    lazy = read_fastmri_volume(path).kspace

    payload = pickle.dumps(lazy)
    clone = pickle.loads(payload)

    assert len(payload) < 1000
    np.testing.assert_array_equal(clone[1], volume.kspace[1])


def _write_real_layout(path: Path, singlecoil: bool, header: bytes) -> None:
    """A file laid out exactly as the public fastMRI files are (written with h5py directly)."""
    rng = np.random.default_rng(7)
    with h5py.File(path, "w") as h5_file:
        if singlecoil:
            shape = (2, 640, 368)
            h5_file["reconstruction_esc"] = rng.random((2, 320, 320), dtype=np.float32)
        else:
            shape = (2, 2, 640, 368)
        kspace = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
        h5_file["kspace"] = kspace
        h5_file["reconstruction_rss"] = rng.random((2, 320, 320), dtype=np.float32)
        h5_file.create_dataset("ismrmrd_header", data=header, dtype=h5py.string_dtype())
        h5_file.attrs["acquisition"] = "CORPD_FBK"
        h5_file.attrs["max"] = 0.0004
        h5_file.attrs["norm"] = 0.07
        h5_file.attrs["patient_id"] = "7c8b0bb4a4b1d0d9"
        h5_file.attrs["scanner_note"] = np.int32(3)


@pytest.mark.parametrize("singlecoil", [False, True])
def test_real_fastmri_layout_loads_and_rewrites_unchanged(
    tmp_path: Path, make_header, singlecoil: bool
) -> None:
    original, copy = tmp_path / "file1000001.h5", tmp_path / "copy.h5"
    _write_real_layout(original, singlecoil, make_header(encoded=(640, 368), recon=(320, 320)))

    volume = read_fastmri_volume(original)
    write_fastmri_volume(copy, volume)

    assert volume.kspace.shape[-2:] == (640, 368)
    assert volume.reconstruction.shape == (2, 320, 320)
    if singlecoil:  # single-coil files carry both targets; ESC is the single-coil one
        assert volume.reconstruction_key == "reconstruction_esc"
        assert set(volume.extra_datasets) == {"reconstruction_rss"}
    with h5py.File(original, "r") as before, h5py.File(copy, "r") as after:
        assert set(before.keys()) == set(after.keys())
        for key in before:
            np.testing.assert_array_equal(before[key][()], after[key][()])
            assert before[key].dtype.kind == after[key].dtype.kind
        assert dict(before.attrs) == dict(after.attrs)


def test_missing_reconstruction_reads_as_none_and_previews_from_kspace(
    tmp_path: Path, make_volume
) -> None:
    volume = make_volume()
    volume.reconstruction = None
    path = tmp_path / "test_file.h5"
    write_fastmri_volume(path, volume)

    loaded = read_fastmri_volume(path)
    image = middle_slice_image(loaded)

    assert loaded.reconstruction is None
    coil_images = np.fft.fftshift(
        np.fft.ifft2(np.fft.ifftshift(volume.kspace[1], axes=(-2, -1)), norm="ortho"), axes=(-2, -1)
    )
    np.testing.assert_allclose(image, np.sqrt((np.abs(coil_images) ** 2).sum(0)), rtol=1e-5)


def test_volume_max_prefers_the_attribute(make_volume) -> None:
    volume = make_volume(max=12.5)
    assert volume_max(volume) == 12.5


def test_volume_max_falls_back_to_the_reconstruction(tmp_path: Path, make_volume) -> None:
    volume = make_volume()
    del volume.attrs["max"]
    path = tmp_path / "no_max.h5"
    write_fastmri_volume(path, volume)

    loaded = read_fastmri_volume(path)

    assert "max" not in loaded.attrs
    assert volume_max(loaded) == pytest.approx(float(volume.reconstruction.max()))


def test_volume_max_without_attribute_or_reconstruction_names_the_file(
    tmp_path: Path, make_volume
) -> None:
    volume = make_volume()
    del volume.attrs["max"]
    volume.reconstruction = None
    path = tmp_path / "bare.h5"
    write_fastmri_volume(path, volume)

    with pytest.raises(FastMRIFormatError, match=r"bare\.h5.*'max'"):
        volume_max(read_fastmri_volume(path))


@pytest.mark.parametrize("bad_max", [float("nan"), 0.0, "big"])
def test_volume_max_rejects_unusable_values(make_volume, bad_max) -> None:
    with pytest.raises(FastMRIFormatError, match="max"):
        volume_max(make_volume(max=bad_max))


def _truncated(path: Path, make_volume) -> None:
    write_fastmri_volume(path, make_volume())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _text(path: Path, make_volume) -> None:
    path.write_text("this is not an HDF5 file\n")


def _no_kspace(path: Path, make_volume) -> None:
    with h5py.File(path, "w") as h5_file:
        h5_file["reconstruction_rss"] = np.zeros((2, 4, 4), np.float32)


def _real_kspace(path: Path, make_volume) -> None:
    with h5py.File(path, "w") as h5_file:
        h5_file["kspace"] = np.zeros((2, 3, 8, 8), np.float32)


def _two_dim_kspace(path: Path, make_volume) -> None:
    with h5py.File(path, "w") as h5_file:
        h5_file["kspace"] = np.zeros((8, 8), np.complex64)


def _slice_mismatch(path: Path, make_volume) -> None:
    with h5py.File(path, "w") as h5_file:
        h5_file["kspace"] = np.zeros((3, 2, 8, 8), np.complex64)
        h5_file["reconstruction_rss"] = np.zeros((2, 4, 4), np.float32)


@pytest.mark.parametrize(
    ("make_bad_file", "expected"),
    [
        (_truncated, "not a readable HDF5 file"),
        (_text, "not a readable HDF5 file"),
        (_no_kspace, "missing dataset 'kspace'"),
        (_real_kspace, "'kspace' has dtype float32; expected complex"),
        (_two_dim_kspace, r"'kspace' has shape \(8, 8\)"),
        (_slice_mismatch, "'reconstruction_rss' has 2 slices but 'kspace' has 3"),
    ],
)
def test_bad_files_raise_a_clear_error_naming_the_file(
    tmp_path: Path, make_volume, make_bad_file, expected: str
) -> None:
    path = tmp_path / "broken_volume.h5"
    make_bad_file(path, make_volume)

    with pytest.raises(FastMRIFormatError, match=expected) as error:
        read_fastmri_volume(path)

    assert str(path) in str(error.value)


def test_missing_file_is_a_file_not_found_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="absent.h5"):
        read_fastmri_volume(tmp_path / "absent.h5")


def test_writer_rejects_real_valued_kspace(tmp_path: Path, make_volume) -> None:
    volume = make_volume()
    volume.kspace = np.abs(volume.kspace)

    with pytest.raises(FastMRIFormatError, match="kspace.*expected complex"):
        write_fastmri_volume(tmp_path / "out.h5", volume)
    assert not list(tmp_path.iterdir())


def test_failed_write_keeps_the_previous_file_and_leaves_no_partial_file(
    tmp_path: Path, make_volume
) -> None:
    path = tmp_path / "vol.h5"
    write_fastmri_volume(path, make_volume(seed=1))
    before = path.read_bytes()
    broken = make_volume(seed=2, unstorable=object())  # h5py cannot store this attribute

    with pytest.raises(TypeError):
        write_fastmri_volume(path, broken)

    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["vol.h5"]


def test_parse_ismrmrd_header_reads_fastmri_fields(make_header) -> None:
    info = parse_ismrmrd_header(make_header(model="Prisma_fit", field=2.89362, coils=16,
                                            encoded=(640, 368), recon=(320, 320)))

    assert info.encoded_matrix == (640, 368, 1)
    assert info.recon_matrix == (320, 320, 1)
    assert info.encoded_fov_mm == (440.0, 220.0, 5.0)
    assert (info.encoding_step_1.minimum, info.encoding_step_1.maximum) == (0, 367)
    assert info.encoding_step_1.center == 184
    assert (info.system_vendor, info.system_model) == ("SIEMENS", "Prisma_fit")
    assert info.field_strength_t == pytest.approx(2.89362)
    assert info.receiver_channels == 16


def test_parse_ismrmrd_header_tolerates_missing_elements_and_no_namespace() -> None:
    xml = b"<ismrmrdHeader><acquisitionSystemInformation><systemModel>Aera</systemModel>" \
          b"</acquisitionSystemInformation></ismrmrdHeader>"

    info = parse_ismrmrd_header(xml)

    assert info.system_model == "Aera"
    assert info.system_vendor is None and info.encoded_matrix is None
    assert info.encoding_step_1.center is None
    assert parse_ismrmrd_header(b"") == type(info)()


def test_parse_ismrmrd_header_rejects_malformed_xml_naming_the_source() -> None:
    with pytest.raises(FastMRIFormatError, match=r"file7\.h5.*ismrmrd_header"):
        parse_ismrmrd_header(b"<ismrmrdHeader><encoding>", source="file7.h5")


def test_volume_repr_is_informative(make_volume) -> None:
    text = repr(make_volume())
    assert "complex64[3, 4, 32, 24]" in text and "AXFLAIR" in text


def test_in_memory_volume_has_no_source() -> None:
    volume = FastMRIVolume(np.zeros((1, 4, 4), np.complex64), None, b"")
    assert volume.source is None and volume.num_coils == 1 and not volume.is_multicoil


def test_slice_reads_reuse_one_open_file_and_see_a_replaced_file(
    tmp_path: Path, make_volume
) -> None:
    first = make_volume(slices=3)
    path = tmp_path / "vol.h5"
    write_fastmri_volume(path, first)
    lazy = read_fastmri_volume(path).kspace
    np.testing.assert_array_equal(lazy[0], first.kspace[0])
    handle = fastmri_io._reading_handle(lazy.path, lazy.file_options)
    np.testing.assert_array_equal(lazy[2], first.kspace[2])
    assert fastmri_io._reading_handle(lazy.path, lazy.file_options) is handle

    second = make_volume(slices=3)
    second.kspace = second.kspace + 1
    write_fastmri_volume(path, second)

    np.testing.assert_array_equal(read_fastmri_volume(path).kspace[1], second.kspace[1])
    np.testing.assert_array_equal(lazy[1], second.kspace[1])


def test_at_most_max_open_files_stay_open(tmp_path: Path, make_volume, monkeypatch) -> None:
    monkeypatch.setattr(fastmri_io, "MAX_OPEN_FILES", 2)
    volume = make_volume(slices=2)
    arrays = []
    for index in range(4):
        path = tmp_path / f"vol{index}.h5"
        write_fastmri_volume(path, volume)
        arrays.append(read_fastmri_volume(path).kspace)
    for lazy in arrays:
        np.testing.assert_array_equal(lazy[1], volume.kspace[1])
    open_here = [key for key in fastmri_io._OPEN_FILES if key[0].parent == tmp_path]
    assert len(open_here) <= 2
