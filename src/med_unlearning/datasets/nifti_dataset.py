"""``NiftiDataset``: one NIfTI image (lazy nibabel image) as a Kedro dataset."""

from __future__ import annotations

import os
from typing import Any

import nibabel as nib
from kedro.io import AbstractDataset
from kedro.io.core import DatasetError

from med_unlearning.datasets._common import ImagePreview, local_path, png_preview
from med_unlearning.io.nifti import middle_axial_slice, read_nifti, write_nifti

__all__ = ["NiftiDataset"]

_SAVE_ARGS = frozenset({"compresslevel"})


class NiftiDataset(AbstractDataset[nib.Nifti1Image, nib.Nifti1Image]):
    """One ``.nii``/``.nii.gz`` file (see :mod:`med_unlearning.io.nifti`).

    Loading returns a lazy ``nibabel.Nifti1Image``: shape, affine and header are read at
    once, voxels only when asked for. Saving accepts ``Nifti1Image``/``Nifti2Image``, keeps
    the affine and header, and writes atomically. Usually used inside a
    ``partitions.PartitionedDataset`` (partition ids such as ``"070/pre/T1"``):

    .. code-block:: yaml

        mrbrains_raw:
          type: partitions.PartitionedDataset
          path: data/01_raw/mrbrains18
          dataset: med_unlearning.datasets.NiftiDataset
          filename_suffix: .nii.gz
    """

    def __init__(
        self,
        *,
        filepath: str | os.PathLike,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Create a dataset for one NIfTI file.

        Args:
            filepath: local path to a ``.nii`` or ``.nii.gz`` file.
            load_args: keyword arguments for ``nibabel.load`` (e.g. ``{"mmap": False}``).
            save_args: ``compresslevel`` (gzip level for ``.nii.gz``, default 1).
            metadata: free-form metadata, ignored by Kedro (kedro-viz shows it).
        """
        self._filepath = local_path(filepath, type(self).__name__)
        self._load_args = dict(load_args or {})
        self._save_args = dict(save_args or {})
        unknown = sorted(set(self._save_args) - _SAVE_ARGS)
        if unknown:
            raise DatasetError(
                f"{type(self).__name__}({self._filepath}): unknown save_args {unknown}; "
                f"expected some of {sorted(_SAVE_ARGS)}"
            )
        self.metadata = metadata

    def load(self) -> nib.Nifti1Image:
        return read_nifti(self._filepath, **self._load_args)

    def save(self, data: nib.Nifti1Image) -> None:
        if not isinstance(data, nib.Nifti1Image):
            raise DatasetError(
                f"{type(self).__name__}({self._filepath}) saves nibabel Nifti1Image/Nifti2Image "
                f"objects, got {type(data).__name__}"
            )
        write_nifti(self._filepath, data, **self._save_args)

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": str(self._filepath),
            "load_args": self._load_args,
            "save_args": self._save_args,
        }

    def preview(self) -> ImagePreview:
        """The middle axial slice as a PNG for kedro-viz."""
        image = read_nifti(self._filepath, **self._load_args)
        return png_preview(middle_axial_slice(image).T[::-1])
