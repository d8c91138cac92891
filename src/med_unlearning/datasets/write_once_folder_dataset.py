"""``WriteOnceFolderDataset``: a partitioned folder that generated data may only fill when empty."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from kedro.io.core import DatasetError
from kedro_datasets.partitions import PartitionedDataset

__all__ = ["SAMPLE_MARKER", "WriteOnceFolderDataset"]

#: Marker file written last into a folder filled with generated sample data.
SAMPLE_MARKER = ".med_unlearning_sample.json"


class WriteOnceFolderDataset(PartitionedDataset):
    """A ``PartitionedDataset`` that never writes into a folder that already holds files.

    Used to save generated sample data into a raw-data folder. ``save`` counts the files
    under ``path`` (recursively, every file counts): if there is any, it logs a warning,
    writes nothing and calls none of the lazy partition callables, so real (or earlier)
    data is never touched. Otherwise it saves every partition and finally writes
    ``.med_unlearning_sample.json`` (partition ids and a UTC timestamp); the marker comes
    last, so an interrupted run leaves none. The marker is never listed as a partition.
    Loading behaves as ``PartitionedDataset``.

    .. code-block:: yaml

        fastmri_raw@sample:
          type: med_unlearning.datasets.WriteOnceFolderDataset
          path: data/01_raw/fastmri
          dataset: med_unlearning.datasets.FastMRIVolumeDataset
          filename_suffix: .h5
    """

    def __init__(self, **kwargs: Any) -> None:
        """Accept the arguments of ``PartitionedDataset`` except ``overwrite=True``.

        Raises:
            DatasetError: ``overwrite=True`` was given (this dataset never overwrites).
        """
        if kwargs.get("overwrite"):
            raise DatasetError(
                f"WriteOnceFolderDataset({kwargs.get('path')}) never overwrites; remove "
                "'overwrite: true'"
            )
        super().__init__(**kwargs)

    def _list_partitions(self) -> list[str]:
        return [
            path for path in super()._list_partitions()
            if path.rsplit(self._sep, 1)[-1] != SAMPLE_MARKER
        ]

    def existing_files(self) -> list[str]:
        """Every file under the folder (recursively), sorted; empty if it does not exist."""
        self._invalidate_caches()
        if not self._filesystem.exists(self._normalized_path):
            return []
        return sorted(self._filesystem.find(self._normalized_path))

    def save(self, data: dict[str, Any]) -> None:
        existing = self.existing_files()
        if existing:
            self._logger.warning(
                "%s already holds %d files; leaving it alone (sample data is only written "
                "into an empty folder)",
                self._path,
                len(existing),
            )
            return
        super().save(data)
        marker = {
            "written_by": "med_unlearning sample data",
            "partitions": sorted(data),
            "created_at": datetime.now(timezone.utc).isoformat(),
        }
        folder = self._filesystem._strip_protocol(self._normalized_path).rstrip(self._sep)
        marker_path = self._sep.join([folder, SAMPLE_MARKER])
        with self._filesystem.open(marker_path, "w") as stream:
            json.dump(marker, stream, indent=2)
        self._invalidate_caches()
