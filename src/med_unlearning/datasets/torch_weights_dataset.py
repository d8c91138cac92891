"""``OptionalTorchWeightsDataset``: a read-only PyTorch weights file that may be unset."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset
from kedro.io.core import DatasetError

from med_unlearning.datasets._common import local_path

__all__ = ["OptionalTorchWeightsDataset"]

logger = logging.getLogger(__name__)


def _unset(filepath: str | os.PathLike | None) -> bool:
    return filepath is None or not str(filepath).strip() or str(filepath).strip() == "null"


class OptionalTorchWeightsDataset(AbstractDataset[None, Any]):
    """A ``torch.save`` file of tensors (e.g. MedicalNet's ``resnet_50_23dataset.pth``).

    - no path configured (``filepath`` ``None`` or empty): loads ``None`` (random init);
    - a path: loads it with ``torch.load(path, map_location="cpu", weights_only=True)``, so
      the file can hold tensors and plain containers only and never runs code;
    - a path that is missing or not readable that way is a :class:`DatasetError` naming the
      file (and ``parameter``, the setting that chose it).

    Read-only: the file is an input you provide. What the loaded object means (a
    ``{'state_dict': …}`` mapping, prefixes) is for the node to interpret.

    .. code-block:: yaml

        segmentation.medicalnet_weights:
          type: med_unlearning.datasets.OptionalTorchWeightsDataset
          filepath: ${runtime_params:medicalnet_weights,${globals:medicalnet_weights,null}}
          parameter: medicalnet_weights
    """

    def __init__(
        self,
        *,
        filepath: str | os.PathLike | None = None,
        parameter: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Create the dataset.

        Args:
            filepath: the local weights file; ``None`` or ``""`` = no weights.
            parameter: the setting that gives ``filepath``, named in errors.
            metadata: free-form metadata (kedro-viz layer), ignored by Kedro.
        """
        self._path: Path | None = (
            None if _unset(filepath) else local_path(str(filepath), type(self).__name__)
        )
        self._parameter = parameter
        self.metadata = metadata

    def _given_by(self) -> str:
        return f" (set by {self._parameter})" if self._parameter else ""

    def load(self) -> Any:
        if self._path is None:
            unset = f" ({self._parameter} is null)" if self._parameter else ""
            logger.info("No weights file configured%s: loading None", unset)
            return None
        if not self._path.is_file():
            raise DatasetError(
                f"weights file {str(self._path)!r}{self._given_by()} does not exist; fix the "
                "path or unset it (null) to train from random initialisation"
            )
        import torch  # the rest of the catalog must not pay for importing torch

        try:
            return torch.load(self._path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises several types for a bad or unsafe pickle
            raise DatasetError(
                f"cannot read weights file {str(self._path)!r}{self._given_by()} with "
                f"torch.load(weights_only=True) (tensors and plain containers only, no "
                f"code): {type(error).__name__}: {error}"
            ) from error

    def save(self, data: Any) -> None:
        raise DatasetError(
            f"{type(self).__name__}({self._path}) is read-only: it holds weights you provide"
        )

    def _exists(self) -> bool:
        return self._path is not None and self._path.is_file()

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": None if self._path is None else str(self._path),
            "parameter": self._parameter,
        }
