"""``ModelCheckpointDataset``: a versioned safetensors checkpoint with its lineage record."""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

import fsspec
from kedro.io import AbstractVersionedDataset
from kedro.io.core import (
    VERSION_FORMAT,
    DatasetError,
    Version,
    get_filepath_str,
    get_protocol_and_path,
)

from med_unlearning.datasets._common import JSONPreview
from med_unlearning.io.checkpoint import (
    ModelCheckpoint,
    checkpoint_from_bytes,
    checkpoint_to_bytes,
    load_checkpoint,
    read_checkpoint_metadata,
    save_checkpoint,
    stale_temporaries,
)

__all__ = ["ModelCheckpointDataset"]

logger = logging.getLogger(__name__)


class ModelCheckpointDataset(AbstractVersionedDataset[ModelCheckpoint, ModelCheckpoint]):
    """A :class:`~med_unlearning.io.checkpoint.ModelCheckpoint` in one ``.safetensors`` file.

    Loading never unpickles (safetensors holds raw tensors), and checks the stored content
    hash. Local saves go to a temporary file renamed over the target. With
    ``versioned: true`` every save lands in ``<filepath>/<timestamp>/<name>`` and loads pick
    the latest version (or the one given with ``--load-versions``); a version folder holding
    no checkpoint file is never picked.

    An interrupted local save leaves nothing behind: a failed write removes its temporary
    file and the version folder it created. What a *killed* writer leaves (its temporary
    file, an empty version folder) is removed, with a warning, by the next save of this
    dataset — only temporary files named for this checkpoint by a process of this host that
    no longer runs (see :func:`~med_unlearning.io.checkpoint.stale_temporaries`), and
    version folders that are empty; nothing else is touched:

    .. code-block:: yaml

        recon_model_full:
          type: med_unlearning.datasets.ModelCheckpointDataset
          filepath: ${_root}/06_models/recon/full.safetensors
          versioned: true
    """

    def __init__(
        self,
        *,
        filepath: str | os.PathLike,
        version: Version | None = None,
        missing_ok: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Create a dataset for one checkpoint file.

        Args:
            filepath: path of the ``.safetensors`` file, local or any fsspec URL.
            version: set by Kedro from ``versioned: true``; ``None`` for an unversioned file.
            missing_ok: loading a checkpoint that was never written gives ``None`` (with a
                warning) instead of an error — for optional inputs such as the unlearning
                runs the evaluation reports as missing.
            metadata: free-form metadata, ignored by Kedro (kedro-viz shows it).
        """
        self._missing_ok = missing_ok
        protocol, path = get_protocol_and_path(filepath, version)
        self._protocol = protocol
        self._fs = fsspec.filesystem(protocol)
        self.metadata = metadata
        super().__init__(
            filepath=PurePosixPath(path),
            version=version,
            exists_function=self._fs.exists,
            glob_function=self._fs.glob,
        )

    def load(self) -> ModelCheckpoint | None:
        if self._missing_ok and not self._exists():
            logger.warning("No checkpoint at %s yet; loading None (missing_ok)", self._filepath)
            return None
        load_path = get_filepath_str(self._get_load_path(), self._protocol)
        if self._protocol == "file":
            return load_checkpoint(load_path)
        with self._fs.open(load_path, "rb") as stream:
            return checkpoint_from_bytes(stream.read(), source=load_path)

    def save(self, data: ModelCheckpoint) -> None:
        if not isinstance(data, ModelCheckpoint):
            raise DatasetError(
                f"{type(self).__name__}({self._filepath}) saves ModelCheckpoint objects, "
                f"got {type(data).__name__}"
            )
        save_path = get_filepath_str(self._get_save_path(), self._protocol)
        if self._protocol == "file":
            self._remove_leftovers()
            folder_existed = Path(save_path).parent.exists()
            try:
                save_checkpoint(save_path, data)
            except BaseException:
                if self._version is not None and not folder_existed:
                    _remove_if_empty(Path(save_path).parent)
                raise
        else:
            with self._fs.open(save_path, "wb") as stream:
                stream.write(checkpoint_to_bytes(data))
        self._fs.invalidate_cache(get_filepath_str(self._filepath, self._protocol))

    def _remove_leftovers(self) -> None:
        """Remove what killed saves of this checkpoint left (see the class docstring)."""
        target = Path(get_filepath_str(self._filepath, self._protocol))
        if self._version is None:
            folders = [target.parent]
        elif target.is_dir():
            folders = [entry for entry in target.iterdir() if entry.is_dir()]
        else:
            folders = []
        for folder in folders:
            for leftover in stale_temporaries(folder, target.name):
                logger.warning(
                    "Removing %s: an interrupted save of %s left it (its process is gone)",
                    leftover, target,
                )
                leftover.unlink(missing_ok=True)
            if self._version is not None and _is_version_name(folder.name):
                if _remove_if_empty(folder):
                    logger.warning(
                        "Removed the empty version folder %s of %s (an interrupted save)",
                        folder, target,
                    )

    def _exists(self) -> bool:
        try:
            load_path = get_filepath_str(self._get_load_path(), self._protocol)
        except DatasetError:
            return False
        return bool(self._fs.exists(load_path))

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": str(self._filepath),
            "protocol": self._protocol,
            "version": self._version,
            "missing_ok": self._missing_ok,
        }

    def _release(self) -> None:
        super()._release()
        self._fs.invalidate_cache(get_filepath_str(self._filepath, self._protocol))

    def preview(self) -> JSONPreview:
        """The checkpoint's metadata record (no tensors read) as JSON for kedro-viz."""
        load_path = get_filepath_str(self._get_load_path(), self._protocol)
        if self._protocol == "file":
            record = json.loads(read_checkpoint_metadata(load_path).to_json())
        else:
            record = json.loads(self.load().metadata.to_json())
        return JSONPreview(json.dumps(record, indent=2, sort_keys=True))


def _is_version_name(name: str) -> bool:
    try:
        datetime.strptime(name, VERSION_FORMAT)
    except ValueError:
        return False
    return True


def _remove_if_empty(folder: Path) -> bool:
    """Remove ``folder`` if it exists and holds nothing; whether it was removed."""
    try:
        folder.rmdir()
    except OSError:  # not empty, gone, or not ours to remove
        return False
    return True
