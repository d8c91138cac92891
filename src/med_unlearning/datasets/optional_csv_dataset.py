"""``OptionalCSVDataset``: a user-supplied CSV table that may be absent."""

from __future__ import annotations

import logging
import os
from pathlib import PurePosixPath
from typing import Any

import fsspec
import pandas as pd
from kedro.io import AbstractDataset
from kedro.io.core import DatasetError, get_filepath_str, get_protocol_and_path

__all__ = ["ID_COLUMNS", "OptionalCSVDataset"]

logger = logging.getLogger(__name__)

#: Id columns always read as text, so ids such as ``"070"`` keep their leading zeros.
ID_COLUMNS = ("volume_id", "subject_id")


class OptionalCSVDataset(AbstractDataset[None, pd.DataFrame]):
    """Read-only CSV table; a missing file loads as an empty ``DataFrame``.

    Used for optional user metadata (extra columns such as site, device or diagnosis,
    joined by id). The id columns ``volume_id`` and ``subject_id`` are read as strings.
    The loaded frame records its file in ``DataFrame.attrs["source"]`` so that later
    errors can name it.

    .. code-block:: yaml

        fastmri_user_metadata:
          type: med_unlearning.datasets.OptionalCSVDataset
          filepath: data/01_raw/fastmri_metadata.csv
    """

    def __init__(
        self,
        *,
        filepath: str | os.PathLike,
        load_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Create the dataset.

        Args:
            filepath: the CSV file (local path or fsspec URL); it may not exist.
            load_args: keyword arguments for ``pandas.read_csv``.
            metadata: free-form metadata, ignored by Kedro.
        """
        self._protocol, path = get_protocol_and_path(filepath)
        self._filepath = PurePosixPath(path)
        self._fs = fsspec.filesystem(self._protocol)
        self._load_args = dict(load_args or {})
        self.metadata = metadata

    def load(self) -> pd.DataFrame:
        path = get_filepath_str(self._filepath, self._protocol)
        if not self._fs.exists(path):
            logger.info("No user metadata table at %s; no extra columns will be joined", path)
            return pd.DataFrame()
        load_args = dict(self._load_args)
        dtypes = load_args.pop("dtype", None)
        if dtypes is None or isinstance(dtypes, dict):
            dtypes = {**{column: str for column in ID_COLUMNS}, **(dtypes or {})}
        with self._fs.open(path, "rb") as stream:
            table = pd.read_csv(stream, dtype=dtypes, **load_args)
        table.attrs["source"] = path
        return table

    def save(self, data: Any) -> None:
        raise DatasetError(
            f"OptionalCSVDataset({self._filepath}) is read-only: it holds a table you provide"
        )

    def _exists(self) -> bool:
        return bool(self._fs.exists(get_filepath_str(self._filepath, self._protocol)))

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "load_args": self._load_args}
