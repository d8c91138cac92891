"""Torch datasets over fastMRI volumes: one item per slice, undersampled on the fly.

:class:`FastMRISliceDataset` indexes the slices of a set of volumes (read lazily: one slice
is read from its file per item, unless ``cache=True`` keeps the volumes in memory) and hands
each slice to a transform. :class:`ReconSliceTransform` turns a slice into the sample the
reconstruction task consumes, a :class:`~med_unlearning.data.samples.ReconSample` (its
fields: undersampled k-space, mask, zero-filled image, target, volume max and the item's
names, with their shapes and dtypes documented there).

Values stay at the file's raw scale (fastMRI: ~1e-4); the networks normalise internally
(see :mod:`med_unlearning.models.recon`).

Matrix sizes: volumes may differ in k-space size (real fastMRI brain does); each item's
output and target are centre-cropped to the target size (``min`` of the reconstruction and
the k-space sizes). A batch must hold equal shapes, so with ``uniform_shape=True`` (needed
for batch sizes above 1) the dataset checks at construction that every volume has the same
coil count, k-space and target size, and raises :class:`ReconDataError` naming the first
volume that differs. With batch size 1 (the study's setting) mixed sizes are fine.

Masks: ``ReconSliceTransform(mask_seed="per_volume")`` (validation/test) seeds the mask with
the volume id, so every slice of a volume, in every run, gets the same mask;
``mask_seed="random"`` (training) draws a new offset per item from torch's seeded RNG.

Zero-padded columns: real fastMRI k-space is wider than what was measured; the ISMRMRD
header's ``kspace_encoding_step_1`` limits say which columns were acquired (their centre is
generally not ``W / 2``). As in fastMRI's VarNet transform, the mask is False outside the
acquired columns (:func:`acquired_columns`), so padding never counts as "sampled" data.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from med_unlearning.data.masks import KspaceUndersampler, seed_for_volume, training_seed
from med_unlearning.data.samples import ReconSample
from med_unlearning.io.fastmri import FastMRIFormatError, FastMRIVolume, volume_max

__all__ = [
    "FastMRISliceDataset",
    "acquired_columns",
    "ReconDataError",
    "ReconSliceTransform",
    "load_volumes",
    "read_reconstruction_h5",
    "target_size",
    "write_reconstruction_h5",
]

logger = logging.getLogger(__name__)

#: fastMRI's name for a submitted reconstruction inside its HDF5 file.
RECONSTRUCTION_KEY = "reconstruction"

VolumeSource = FastMRIVolume | Callable[[], FastMRIVolume]


class ReconDataError(ValueError):
    """Volumes that cannot be served as requested; the message names the volume and field."""


def load_volumes(
    volumes: Mapping[str, VolumeSource], volume_ids: Sequence[str] | None = None
) -> dict[str, FastMRIVolume]:
    """Resolve a partitioned mapping (id -> volume or zero-argument loader) to volumes.

    Args:
        volumes: e.g. the ``fastmri_raw`` PartitionedDataset's dict.
        volume_ids: which ids to load, in this order (``None`` = all, sorted).

    Raises:
        ReconDataError: an id that is not in ``volumes``.
    """
    ids = sorted(volumes) if volume_ids is None else list(volume_ids)
    missing = [volume_id for volume_id in ids if volume_id not in volumes]
    if missing:
        known = sorted(volumes)
        raise ReconDataError(
            f"volumes {missing} are not among the {len(known)} fastMRI volumes found "
            f"(e.g. {known[:5]}); check the splits table against the raw data folder"
        )
    loaded = {}
    for volume_id in ids:
        source = volumes[volume_id]
        loaded[volume_id] = source if isinstance(source, FastMRIVolume) else source()
    return loaded


def target_size(volume: FastMRIVolume) -> tuple[int, int]:
    """The image size ``(h, w)`` outputs are cropped to.

    The reconstruction's size, else the ISMRMRD header's recon matrix, else the k-space
    size; never larger than the k-space.
    """
    kspace_h, kspace_w = (int(size) for size in volume.kspace.shape[-2:])
    if volume.reconstruction is not None:
        height, width = (int(size) for size in volume.reconstruction.shape[-2:])
    else:
        recon_matrix = volume.header_info.recon_matrix if volume.ismrmrd_header else None
        height, width = (recon_matrix[0], recon_matrix[1]) if recon_matrix else (kspace_h, kspace_w)
    return min(height, kspace_h), min(width, kspace_w)


def acquired_columns(volume: FastMRIVolume) -> tuple[int, int] | None:
    """The measured phase-encoding columns ``[start, end)`` of a volume's k-space.

    fastMRI's convention: ``start = W // 2 − center`` and ``end = start + maximum + 1`` from
    the header's ``kspace_encoding_step_1`` limits (``W`` = k-space width). ``None`` when
    the header is absent or silent, its encoded width is not the k-space's, or the limits
    fall outside the k-space (then every column counts as acquired).
    """
    if not volume.ismrmrd_header:
        return None
    info = volume.header_info
    limits = info.encoding_step_1
    width = int(volume.kspace.shape[-1])
    if limits.center is None or limits.maximum is None:
        return None
    if info.encoded_matrix is not None and info.encoded_matrix[1] != width:
        return None
    start = width // 2 - int(limits.center)
    end = start + int(limits.maximum) + 1
    if not 0 <= start < end <= width:
        return None
    return start, end


def _center_crop_array(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    height, width = image.shape[-2:]
    top = (height - size[0]) // 2
    left = (width - size[1]) // 2
    return image[..., top : top + size[0], left : left + size[1]]


def _volume_peak(volume_id: str, volume: FastMRIVolume) -> float:
    """The volume's max, or NaN when neither the attribute nor a reconstruction gives one."""
    try:
        return float(volume_max(volume))
    except FastMRIFormatError as error:
        logger.warning("%s: %s; using each slice target's max instead", volume_id, error)
        return math.nan


class ReconSliceTransform:
    """Turn one k-space slice (and its target) into a reconstruction sample.

    Args:
        undersampler: the mask to apply.
        mask_seed: ``per_volume`` (validation/test: seed = CRC-32 of the volume id) or
            ``random`` (training: a new seed per item from torch's seeded RNG).
    """

    def __init__(
        self,
        undersampler: KspaceUndersampler,
        mask_seed: Literal["per_volume", "random"] = "per_volume",
    ) -> None:
        if mask_seed not in ("per_volume", "random"):
            raise ValueError(f"mask_seed must be 'per_volume' or 'random', got {mask_seed!r}")
        self.undersampler = undersampler
        self.mask_seed = mask_seed

    def __repr__(self) -> str:
        return f"ReconSliceTransform({self.undersampler!r}, mask_seed={self.mask_seed!r})"

    def __call__(
        self,
        kspace: np.ndarray,
        target: np.ndarray | None,
        *,
        volume_id: str,
        slice_index: int,
        max_value: float,
        crop_size: tuple[int, int],
        acquired: tuple[int, int] | None = None,
    ) -> ReconSample:
        """Build the sample (:class:`~med_unlearning.data.samples.ReconSample`) for one slice.

        ``acquired``: the measured columns ``[start, end)`` (:func:`acquired_columns`);
        columns outside are unsampled in the mask (``None`` = all columns measured).
        """
        seed = seed_for_volume(volume_id) if self.mask_seed == "per_volume" else training_seed()
        undersampled = self.undersampler(kspace, seed)
        if acquired is not None and acquired != (0, int(kspace.shape[-1])):
            undersampled = _without_padding(undersampled, *acquired)
        zero_filled = _center_crop_array(undersampled.zero_filled.numpy(), crop_size)
        has_target = target is not None
        if has_target:
            target_image = _center_crop_array(np.asarray(target, dtype=np.float32), crop_size)
        else:
            target_image = np.zeros(crop_size, dtype=np.float32)
        peak = max_value
        if not math.isfinite(peak) or peak <= 0:
            peak = float(target_image.max()) if has_target else 0.0
        if not math.isfinite(peak) or peak <= 0:
            peak = 1.0  # an all-zero slice: any positive range gives a finite SSIM of 1
        return ReconSample(
            masked_kspace=undersampled.masked_kspace,
            mask=undersampled.mask,
            zero_filled=torch.from_numpy(np.ascontiguousarray(zero_filled, dtype=np.float32)),
            target=torch.from_numpy(np.ascontiguousarray(target_image)),
            has_target=torch.tensor(has_target),
            max_value=torch.tensor(peak, dtype=torch.float32),
            ids=f"{volume_id}:slice {slice_index}",
            volume_id=volume_id,
            slice_index=torch.tensor(slice_index, dtype=torch.long),
        )


def _without_padding(undersampled: Any, start: int, end: int) -> Any:
    """``undersampled`` with the columns outside ``[start, end)`` unsampled (and zeroed)."""
    mask = undersampled.mask.clone()
    mask[..., :start, :] = False
    mask[..., end:, :] = False
    masked_kspace = undersampled.masked_kspace * mask.to(undersampled.masked_kspace.dtype)
    return dataclasses.replace(undersampled, mask=mask, masked_kspace=masked_kspace)


def _shape_signature(volume: FastMRIVolume) -> tuple[Any, ...]:
    return (tuple(int(n) for n in volume.kspace.shape[1:]), target_size(volume))


class FastMRISliceDataset(Dataset):
    """Every slice of the given fastMRI volumes, as reconstruction samples.

    Args:
        volumes: volume id -> volume (or a zero-argument loader, as PartitionedDataset gives).
        transform: turns a slice into a sample (:class:`ReconSliceTransform`).
        volume_ids: the volumes to use (``None`` = all of ``volumes``); items are ordered by
            volume id, then slice.
        uniform_shape: require every volume to share coil count, k-space and target size
            (needed to batch more than one slice).
        cache: read every volume into memory once (fast for small data; off for real data).

    Raises:
        ReconDataError: no volumes, an unknown id, or (``uniform_shape``) differing shapes.
    """

    def __init__(
        self,
        volumes: Mapping[str, VolumeSource],
        transform: ReconSliceTransform,
        volume_ids: Sequence[str] | None = None,
        *,
        uniform_shape: bool = False,
        cache: bool = False,
    ) -> None:
        ids = sorted(volumes) if volume_ids is None else sorted(volume_ids)
        if not ids:
            raise ReconDataError("no fastMRI volumes to build a slice dataset from")
        self.transform = transform
        self.volumes = load_volumes(volumes, ids)
        if uniform_shape:
            self._check_uniform_shapes()
        self.max_values = {vid: _volume_peak(vid, volume) for vid, volume in self.volumes.items()}
        self.crop_sizes = {vid: target_size(volume) for vid, volume in self.volumes.items()}
        self.acquired = {vid: acquired_columns(volume) for vid, volume in self.volumes.items()}
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
        if cache:
            for vid, volume in self.volumes.items():
                recon = volume.reconstruction
                self._arrays[vid] = (
                    np.asarray(volume.kspace),
                    None if recon is None else np.asarray(recon),
                )
        self.items = [
            (vid, index) for vid in ids for index in range(self.volumes[vid].num_slices)
        ]

    def _check_uniform_shapes(self) -> None:
        first_id = next(iter(self.volumes))
        expected = _shape_signature(self.volumes[first_id])
        for volume_id, volume in self.volumes.items():
            found = _shape_signature(volume)
            if found != expected:
                raise ReconDataError(
                    f"volume {volume_id!r} ({volume.name}) has k-space [coils, H, W] "
                    f"{list(found[0])} and target size {list(found[1])}, but {first_id!r} has "
                    f"{list(expected[0])} and {list(expected[1])}: slices of different shapes "
                    "cannot share a batch. Set recon.training.batch_size: 1 (the study's "
                    "setting) or use volumes of one matrix size"
                )

    @property
    def volume_ids(self) -> list[str]:
        """The volumes served, sorted."""
        return list(self.volumes)

    def __len__(self) -> int:
        return len(self.items)

    def _read_slice(self, volume_id: str, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        if volume_id in self._arrays:
            kspace, recon = self._arrays[volume_id]
            return kspace[index], None if recon is None else recon[index]
        volume = self.volumes[volume_id]
        recon = volume.reconstruction
        return volume.kspace[index], None if recon is None else recon[index]

    def __getitem__(self, position: int) -> ReconSample:
        volume_id, index = self.items[position]
        kspace, target = self._read_slice(volume_id, index)
        return self.transform(
            kspace,
            target,
            volume_id=volume_id,
            slice_index=index,
            max_value=self.max_values[volume_id],
            crop_size=self.crop_sizes[volume_id],
            acquired=self.acquired[volume_id],
        )

    def __repr__(self) -> str:
        return (
            f"FastMRISliceDataset(volumes={len(self.volumes)}, slices={len(self.items)}, "
            f"transform={self.transform!r}, cached={bool(self._arrays)})"
        )


def write_reconstruction_h5(
    path: str | Path, reconstruction: np.ndarray, attrs: Mapping[str, Any] | None = None
) -> None:
    """Write a reconstruction in fastMRI's submission convention, atomically.

    The file holds one float32 dataset ``reconstruction`` ``[slices, h, w]`` and the given
    attributes; it is written to a temporary name and renamed over ``path``.

    Raises:
        ReconDataError: ``reconstruction`` is not a 3-D real array.
    """
    array = np.asarray(reconstruction)
    if array.ndim != 3 or np.iscomplexobj(array):
        raise ReconDataError(
            f"{path}: a reconstruction must be a real [slices, h, w] array, got dtype "
            f"{array.dtype} and shape {array.shape}"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with h5py.File(temporary, "w") as h5_file:
            h5_file.create_dataset(RECONSTRUCTION_KEY, data=array.astype(np.float32))
            for name, value in (attrs or {}).items():
                h5_file.attrs[name] = value
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def read_reconstruction_h5(path: str | Path) -> np.ndarray:
    """Read the ``reconstruction`` dataset written by :func:`write_reconstruction_h5`.

    Raises:
        ReconDataError: the file has no ``reconstruction`` dataset.
    """
    with h5py.File(path, "r") as h5_file:
        if RECONSTRUCTION_KEY not in h5_file:
            raise ReconDataError(
                f"{path}: no '{RECONSTRUCTION_KEY}' dataset (found {sorted(h5_file.keys())})"
            )
        return np.asarray(h5_file[RECONSTRUCTION_KEY])
