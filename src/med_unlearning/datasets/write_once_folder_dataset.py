"""``WriteOnceFolderDataset``: a partitioned folder that generated data may only fill when empty."""

from __future__ import annotations

import json
import os
import socket
import uuid
from copy import deepcopy
from datetime import UTC, datetime
from typing import Any

from kedro.io.core import DatasetError
from kedro_datasets.partitions import PartitionedDataset

from med_unlearning.datasets._common import ImagePreview
from med_unlearning.run_lock import process_alive

__all__ = ["IN_PROGRESS_MARKER", "SAMPLE_MARKER", "STAGING_INFIX", "WriteOnceFolderDataset"]

#: Marker file written last into a folder filled with generated sample data.
SAMPLE_MARKER = ".med_unlearning_sample.json"
#: Marker file written first into a staging folder while sample data is generated.
IN_PROGRESS_MARKER = ".med_unlearning_sample.in_progress.json"
#: Staging folders are siblings named ``.<folder>.sample-partial-<token>``.
STAGING_INFIX = ".sample-partial-"


class WriteOnceFolderDataset(PartitionedDataset):
    """A ``PartitionedDataset`` that never writes into a folder that already holds files.

    Used to save generated sample data into a raw-data folder. ``save`` counts the files
    under ``path`` (recursively, every file counts): if there is any, it logs a warning,
    writes nothing and calls none of the lazy partition callables, so real (or earlier)
    data is never touched. Otherwise it generates every partition into a hidden sibling
    staging folder (``.<folder>.sample-partial-<token>``, holding an in-progress marker with
    the writer's host and pid), writes ``.med_unlearning_sample.json`` (partition ids and a
    UTC timestamp) last and only then moves the staging folder into place. An interrupted
    run therefore never leaves a partial folder where readers look; a failed save removes
    its staging folder, and a staging folder left by a killed run (its process is gone) is
    removed with a warning by the next save.

    A folder holding only files named like this save's partitions and no completion
    marker is an incomplete folder of an earlier generator (one that wrote in place): it is
    regenerated with a warning. A folder holding any other file is never touched. Markers
    are never listed as partitions. Loading behaves as ``PartitionedDataset``, so one entry
    serves both the sample generator (save) and every reader (load).

    :meth:`preview` shows one item in kedro-viz through the inner dataset's ``preview``
    (e.g. a middle slice as a PNG).

    .. code-block:: yaml

        fastmri_raw:
          type: med_unlearning.datasets.WriteOnceFolderDataset
          path: data/01_raw/fastmri
          dataset: med_unlearning.datasets.FastMRIVolumeDataset
          filename_suffix: .h5
          metadata:
            kedro-viz:
              preview_args: {partition: brain}   # optional: the item to preview
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
            if path.rsplit(self._sep, 1)[-1] not in (SAMPLE_MARKER, IN_PROGRESS_MARKER)
        ]

    def preview_partition(self, partition: str | None = None) -> str:
        """The partition id :meth:`preview` shows.

        Args:
            partition: an id (``"brain/file_a"``) or an id suffix/prefix path component
                (``"pre/T1"`` matches ``"070/pre/T1"``; ``"brain"`` matches
                ``"brain/file_a"``). The first match in sorted order; with no match, or
                ``None``, the first partition.

        Raises:
            DatasetError: the folder holds no partition.
        """
        self._invalidate_caches()
        ids = sorted(self._path_to_partition(path) for path in self._list_partitions())
        if not ids:
            raise DatasetError(f"No partitions found in '{self._path}'")
        if partition:
            key = partition.strip(self._sep)
            for candidate in ids:
                if (candidate == key or candidate.endswith(self._sep + key)
                        or candidate.startswith(key + self._sep)):
                    return candidate
        return ids[0]

    def preview(self, partition: str | None = None) -> ImagePreview:
        """Preview one item for kedro-viz: the inner dataset's ``preview`` of it.

        kedro-viz calls this with the entry's ``metadata: kedro-viz: preview_args``.

        Args:
            partition: which item (see :meth:`preview_partition`); default the first.

        Raises:
            DatasetError: the folder is empty, or the inner dataset has no ``preview``.
        """
        partition_id = self.preview_partition(partition)
        kwargs = deepcopy(self._dataset_config)
        kwargs[self._filepath_arg] = self._join_protocol(self._partition_to_path(partition_id))
        dataset = self._dataset_type(**kwargs)
        if not hasattr(dataset, "preview"):
            raise DatasetError(
                f"{self._dataset_type.__name__} has no preview; {self._path} cannot be previewed"
            )
        return dataset.preview()

    def _folder(self) -> str:
        return self._filesystem._strip_protocol(self._normalized_path).rstrip(self._sep)

    def existing_files(self) -> list[str]:
        """Every file under the folder (recursively), sorted; empty if it does not exist."""
        self._invalidate_caches()
        if not self._filesystem.exists(self._normalized_path):
            return []
        return sorted(self._filesystem.find(self._normalized_path))

    def _staging_folders(self) -> list[str]:
        """Staging folders of this folder left next to it (by name)."""
        folder = self._folder()
        parent, _, name = folder.rpartition(self._sep)
        if not self._filesystem.exists(parent or "."):
            return []
        prefix = f".{name}{STAGING_INFIX}"
        prefix = f"{parent}{self._sep}{prefix}" if parent else prefix
        return sorted(
            path for path in self._filesystem.ls(parent or ".", detail=False)
            if str(path).startswith(prefix)
        )

    def _remove_stale_staging(self) -> None:
        """Remove staging folders whose writer is gone (never a running writer's)."""
        for staging in self._staging_folders():
            marker_path = self._sep.join([staging, IN_PROGRESS_MARKER])
            try:
                with self._filesystem.open(marker_path, "r") as stream:
                    owner = json.load(stream)
            except (OSError, ValueError):
                continue  # not recognisably ours: leave it
            if owner.get("host") == socket.gethostname() and process_alive(owner.get("pid")):
                continue
            self._logger.warning(
                "Removing %s: sample data generation into it was interrupted (process %s on "
                "%s is gone); it will be generated again",
                staging, owner.get("pid"), owner.get("host"),
            )
            self._filesystem.rm(staging, recursive=True)

    def _incomplete_own_files(self, existing: list[str], partitions: list[str]) -> bool:
        """True if ``existing`` are only files of these partitions, without a completion marker."""
        if not existing:
            return False
        expected = {self._partition_to_path(partition) for partition in partitions}
        expected.add(self._sep.join([self._folder(), IN_PROGRESS_MARKER]))
        return all(self._filesystem._strip_protocol(path) in expected for path in existing)

    def save(self, data: dict[str, Any]) -> None:
        self._remove_stale_staging()
        existing = self.existing_files()
        if self._incomplete_own_files(existing, sorted(data)):
            self._logger.warning(
                "%s holds %d of the %d sample files and no completion marker (%s): an "
                "interrupted earlier generation; generating it again",
                self._path, len(existing), len(data), SAMPLE_MARKER,
            )
            for path in existing:
                self._filesystem.rm(path)
            self._filesystem.rm(self._folder(), recursive=True)  # only empty folders are left
            self._invalidate_caches()
            existing = []
        if existing:
            self._logger.warning(
                "%s already holds %d files; leaving it alone (sample data is only written "
                "into an empty folder)",
                self._path,
                len(existing),
            )
            return
        self._save_staged(data)

    def _save_staged(self, data: dict[str, Any]) -> None:
        folder = self._folder()
        parent, _, name = folder.rpartition(self._sep)
        token = uuid.uuid4().hex[:12]
        staging = (
            f"{parent}{self._sep}.{name}{STAGING_INFIX}{token}" if parent
            else f".{name}{STAGING_INFIX}{token}"
        )
        self._filesystem.makedirs(staging, exist_ok=True)
        owner = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "target": self._path,
            "started_at": datetime.now(UTC).isoformat(),
        }
        with self._filesystem.open(self._sep.join([staging, IN_PROGRESS_MARKER]), "w") as stream:
            json.dump(owner, stream, indent=2)
        original_path = self._path
        try:
            self._path = self._join_protocol(staging)
            try:
                super().save(data)
            finally:
                self._path = original_path
            marker = {
                "written_by": "med_unlearning sample data",
                "partitions": sorted(data),
                "created_at": datetime.now(UTC).isoformat(),
            }
            with self._filesystem.open(self._sep.join([staging, SAMPLE_MARKER]), "w") as stream:
                json.dump(marker, stream, indent=2)
            self._filesystem.rm(self._sep.join([staging, IN_PROGRESS_MARKER]))
            self._invalidate_caches()
            if self._filesystem.exists(folder):
                if self.existing_files():  # someone wrote into it meanwhile: keep theirs
                    raise DatasetError(
                        f"{self._path} received files while sample data was being generated; "
                        "left alone (the generated data is discarded)"
                    )
                self._filesystem.rm(folder, recursive=True)  # an empty folder
            self._filesystem.mv(staging, folder, recursive=True)
        finally:
            if self._filesystem.exists(staging):
                self._filesystem.rm(staging, recursive=True)
            self._invalidate_caches()
