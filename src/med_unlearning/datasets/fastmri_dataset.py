"""``FastMRIVolumeDataset``: one fastMRI HDF5 volume (lazy) as a Kedro dataset."""

from __future__ import annotations

import os
from typing import Any

from kedro.io import AbstractDataset
from kedro.io.core import DatasetError

from med_unlearning.datasets._common import ImagePreview, local_path, png_preview
from med_unlearning.io.fastmri import (
    FastMRIVolume,
    middle_slice_image,
    read_fastmri_volume,
    write_fastmri_volume,
)

__all__ = ["FastMRIVolumeDataset"]

_SAVE_ARGS = frozenset({"compression", "compression_opts"})


class FastMRIVolumeDataset(AbstractDataset[FastMRIVolume, FastMRIVolume]):
    """One ``.h5`` file in the fastMRI schema (see :mod:`med_unlearning.io.fastmri`).

    Loading validates the schema and reads headers and attributes only: ``kspace`` and the
    reconstruction are :class:`~med_unlearning.io.fastmri.LazyH5Array` handles that read
    slices on demand. Saving writes the exact fastMRI schema to a temporary file renamed
    over the target. Usually used inside a ``partitions.PartitionedDataset`` (one partition
    per volume):

    .. code-block:: yaml

        fastmri_raw:
          type: partitions.PartitionedDataset
          path: data/01_raw/fastmri
          dataset: med_unlearning.datasets.FastMRIVolumeDataset
          filename_suffix: .h5
    """

    def __init__(
        self,
        *,
        filepath: str | os.PathLike,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Create a dataset for one fastMRI file.

        Args:
            filepath: local path to the ``.h5`` file.
            load_args: keyword arguments for ``h5py.File`` when reading, e.g.
                ``{"locking": False}`` on file systems without locks.
            save_args: ``compression`` and ``compression_opts`` for the arrays
                (real fastMRI files are uncompressed, the default).
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

    def load(self) -> FastMRIVolume:
        return read_fastmri_volume(self._filepath, file_options=self._load_args)

    def save(self, data: FastMRIVolume) -> None:
        if not isinstance(data, FastMRIVolume):
            raise DatasetError(
                f"{type(self).__name__}({self._filepath}) saves FastMRIVolume objects, "
                f"got {type(data).__name__}"
            )
        write_fastmri_volume(self._filepath, data, **self._save_args)

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": str(self._filepath),
            "load_args": self._load_args,
            "save_args": self._save_args,
        }

    def preview(self) -> ImagePreview:
        """The middle slice (reconstruction, else RSS of the k-space) as a PNG for kedro-viz."""
        return png_preview(middle_slice_image(read_fastmri_volume(self._filepath, self._load_args)))
