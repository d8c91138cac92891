"""``ModelCheckpointDataset``: a versioned safetensors checkpoint with its lineage record."""

from __future__ import annotations

import json
import logging
import os
from pathlib import PurePosixPath
from typing import Any

import fsspec
from kedro.io import AbstractVersionedDataset
from kedro.io.core import DatasetError, Version, get_filepath_str, get_protocol_and_path

from med_unlearning.datasets._common import JSONPreview
from med_unlearning.io.checkpoint import (
    ModelCheckpoint,
    checkpoint_from_bytes,
    checkpoint_to_bytes,
    load_checkpoint,
    read_checkpoint_metadata,
    save_checkpoint,
)

__all__ = ["ModelCheckpointDataset"]

logger = logging.getLogger(__name__)


class ModelCheckpointDataset(AbstractVersionedDataset[ModelCheckpoint, ModelCheckpoint]):
    """A :class:`~med_unlearning.io.checkpoint.ModelCheckpoint` in one ``.safetensors`` file.

    Loading never unpickles (safetensors holds raw tensors), and checks the stored content
    hash. Local saves go to a temporary file renamed over the target. With
    ``versioned: true`` every save lands in ``<filepath>/<timestamp>/<name>`` and loads pick
    the latest version (or the one given with ``--load-versions``):

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
            save_checkpoint(save_path, data)
        else:
            with self._fs.open(save_path, "wb") as stream:
                stream.write(checkpoint_to_bytes(data))
        self._fs.invalidate_cache(get_filepath_str(self._filepath, self._protocol))

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
