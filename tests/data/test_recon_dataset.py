"""Slice datasets over fastMRI volumes: samples, masks, max fallback, shapes, files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from med_unlearning.data.masks import KspaceUndersampler
from med_unlearning.data.recon_dataset import (
    FastMRISliceDataset,
    ReconDataError,
    ReconSliceTransform,
    load_volumes,
    read_reconstruction_h5,
    target_size,
    write_reconstruction_h5,
)
from med_unlearning.data.samples import ReconSample
from med_unlearning.io.fastmri import FastMRIVolume, read_fastmri_volume, write_fastmri_volume


def _fft2c(images: np.ndarray) -> np.ndarray:
    shifted = np.fft.ifftshift(images, axes=(-2, -1))
    return np.fft.fftshift(np.fft.fft2(shifted, norm="ortho"), axes=(-2, -1))


def _ifft2c(kspace: np.ndarray) -> np.ndarray:
    shifted = np.fft.ifftshift(kspace, axes=(-2, -1))
    return np.fft.fftshift(np.fft.ifft2(shifted, norm="ortho"), axes=(-2, -1))


def tiny_volume(
    seed: int = 0,
    slices: int = 3,
    coils: int = 2,
    kspace_size: tuple[int, int] = (32, 32),
    recon_size: tuple[int, int] | None = None,
    with_max: bool = True,
    with_recon: bool = True,
    scale: float = 1e-4,
) -> FastMRIVolume:
    """Smooth random images seen by smooth coils, in fastMRI's layout and raw scale."""
    rng = np.random.default_rng(seed)
    height, width = kspace_size
    rows, cols = np.meshgrid(np.linspace(-1, 1, height), np.linspace(-1, 1, width), indexing="ij")
    images = np.zeros((slices, height, width))
    for index in range(slices):
        for _ in range(4):
            centre = rng.uniform(-0.5, 0.5, size=2)
            images[index] += rng.uniform(0.3, 1) * np.exp(
                -((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) / rng.uniform(0.02, 0.2)
            )
    coil_maps = np.stack(
        [np.exp(-((rows - np.cos(c)) ** 2 + (cols - np.sin(c)) ** 2)) for c in range(coils)]
    )
    kspace = _fft2c(scale * images[:, None] * coil_maps[None]).astype(np.complex64)
    rss = np.sqrt((np.abs(_ifft2c(kspace)) ** 2).sum(axis=1)).astype(np.float32)
    if recon_size is not None:
        top, left = (height - recon_size[0]) // 2, (width - recon_size[1]) // 2
        rss = rss[:, top : top + recon_size[0], left : left + recon_size[1]]
    attrs = {"acquisition": "AXT2", "patient_id": f"p{seed}"}
    if with_max:
        attrs["max"] = float(rss.max())
    return FastMRIVolume(
        kspace=kspace, reconstruction=rss if with_recon else None, ismrmrd_header=b"", attrs=attrs
    )


def _dataset(volumes, mask_seed="per_volume", **kwargs) -> FastMRISliceDataset:
    undersampler = KspaceUndersampler("equispaced", [4], [0.08])
    return FastMRISliceDataset(volumes, ReconSliceTransform(undersampler, mask_seed), **kwargs)


def test_items_have_the_documented_fields_shapes_and_raw_scale() -> None:
    volume = tiny_volume()
    dataset = _dataset({"brain/v0": volume})
    assert len(dataset) == 3
    item = dataset[1]
    assert isinstance(item, ReconSample)
    assert item.masked_kspace.shape == (2, 32, 32, 2) and item.masked_kspace.dtype == torch.float32
    assert item.mask.shape == (1, 1, 32, 1) and item.mask.dtype == torch.bool
    assert item.zero_filled.shape == item.target.shape == (32, 32)
    np.testing.assert_array_equal(item.target.numpy(), volume.reconstruction[1])
    assert float(item.max_value) == pytest.approx(volume.attrs["max"])
    assert item.ids == "brain/v0:slice 1" and int(item.slice_index) == 1
    assert bool(item.has_target)
    assert 1e-6 < float(item.target.max()) < 1e-2  # raw scale kept


def test_a_loader_batch_is_a_recon_sample_with_the_documented_shapes() -> None:
    dataset = _dataset({"brain/v0": tiny_volume()})
    batch = next(iter(DataLoader(dataset, batch_size=2, shuffle=False)))
    assert type(batch) is ReconSample
    assert batch._fields == (
        "masked_kspace", "mask", "zero_filled", "target", "has_target", "max_value",
        "ids", "volume_id", "slice_index",
    )
    assert batch.masked_kspace.shape == (2, 2, 32, 32, 2)
    assert batch.masked_kspace.dtype == torch.float32
    assert batch.mask.shape == (2, 1, 1, 32, 1) and batch.mask.dtype == torch.bool
    assert batch.zero_filled.shape == batch.target.shape == (2, 32, 32)
    assert batch.zero_filled.dtype == batch.target.dtype == torch.float32
    assert batch.has_target.shape == (2,) and batch.has_target.dtype == torch.bool
    assert batch.max_value.shape == (2,) and batch.max_value.dtype == torch.float32
    assert batch.slice_index.tolist() == [0, 1] and batch.slice_index.dtype == torch.int64
    assert batch.ids == ("brain/v0:slice 0", "brain/v0:slice 1")
    assert batch.volume_id == ("brain/v0", "brain/v0")


def test_validation_masks_are_fixed_per_volume_and_training_masks_vary() -> None:
    volumes = {"a/v0": tiny_volume(0), "b/v1": tiny_volume(1)}
    dataset = _dataset(volumes)
    first = [dataset[index].mask for index in range(3)]
    assert all(torch.equal(mask, first[0]) for mask in first)  # same mask on every slice
    again = _dataset(dict(reversed(list(volumes.items()))))
    assert torch.equal(again[0].mask, first[0])  # whatever the order or the dataset
    training = _dataset(volumes, mask_seed="random")
    torch.manual_seed(0)
    draws = [training[0].mask for _ in range(12)]
    assert len({tuple(mask.reshape(-1).tolist()) for mask in draws}) > 1
    torch.manual_seed(0)
    assert torch.equal(training[0].mask, draws[0])  # reproducible from torch's seed


def test_missing_max_uses_the_reconstruction_max() -> None:
    volume = tiny_volume(with_max=False)
    item = _dataset({"v": volume})[0]
    assert float(item.max_value) == pytest.approx(float(np.max(volume.reconstruction)))
    assert np.isfinite(float(item.max_value)) and float(item.max_value) > 0


def test_no_reconstruction_gives_zero_targets_and_a_positive_range() -> None:
    item = _dataset({"v": tiny_volume(with_max=False, with_recon=False)})[0]
    assert not bool(item.has_target)
    assert float(item.target.abs().sum()) == 0.0
    assert float(item.max_value) == 1.0


def test_oversampled_kspace_is_cropped_to_the_reconstruction_size() -> None:
    volume = tiny_volume(kspace_size=(48, 32), recon_size=(32, 32))
    assert target_size(volume) == (32, 32)
    item = _dataset({"v": volume})[0]
    assert item.masked_kspace.shape == (2, 48, 32, 2)
    assert item.zero_filled.shape == item.target.shape == (32, 32)


def test_mixed_matrix_sizes_error_only_when_batching_needs_one_shape() -> None:
    volumes = {"v0": tiny_volume(0), "v1": tiny_volume(1, kspace_size=(32, 40))}
    assert len(_dataset(volumes)) == 6  # batch size 1: fine
    with pytest.raises(ReconDataError, match=r"volume 'v1'.*\[2, 32, 40\].*batch_size: 1"):
        _dataset(volumes, uniform_shape=True)


def test_lazy_files_and_cache_give_the_same_items(tmp_path: Path) -> None:
    write_fastmri_volume(tmp_path / "v0.h5", tiny_volume(0))
    lazy = read_fastmri_volume(tmp_path / "v0.h5")
    source = {"v0": lambda: lazy}
    streamed, cached = _dataset(source), _dataset(source, cache=True)
    for index in range(3):
        for field in ("masked_kspace", "target", "zero_filled", "max_value"):
            torch.testing.assert_close(
                getattr(streamed[index], field), getattr(cached[index], field), rtol=0, atol=0
            )
    assert "slices=3" in repr(cached)


def test_unknown_volume_ids_are_named() -> None:
    with pytest.raises(ReconDataError, match=r"\['missing'\] are not among"):
        load_volumes({"v0": tiny_volume()}, ["v0", "missing"])
    with pytest.raises(ReconDataError, match="no fastMRI volumes"):
        _dataset({"v0": tiny_volume()}, volume_ids=[])


def test_reconstruction_files_round_trip(tmp_path: Path) -> None:
    data = np.random.default_rng(0).random((3, 8, 8)).astype(np.float32)
    path = tmp_path / "out" / "v0.h5"
    write_reconstruction_h5(path, data, {"volume_id": "v0"})
    np.testing.assert_array_equal(read_reconstruction_h5(path), data)
    assert not list(path.parent.glob(".*tmp"))
    with pytest.raises(ReconDataError, match="real \\[slices, h, w\\]"):
        write_reconstruction_h5(path, data[0])
