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

from med_unlearning.task_names import ID_COLUMNS as TASK_ID_COLUMNS

__all__ = ["ID_COLUMNS", "OptionalCSVDataset"]

logger = logging.getLogger(__name__)

#: Id columns always read as text, so ids such as ``"070"`` keep their leading zeros.
ID_COLUMNS = tuple(TASK_ID_COLUMNS.values())


class OptionalCSVDataset(AbstractDataset[None, pd.DataFrame]):
    """Read-only CSV table; a missing file at the default path loads as an empty ``DataFrame``.

    Used for optional user metadata (extra columns such as site, device or diagnosis,
    joined by id). The id columns ``volume_id`` and ``subject_id`` are read as strings.
    The loaded frame records its file in ``DataFrame.attrs["source"]`` so that later
    errors can name it.

    With ``default_filepath``, only that path may be absent: a ``filepath`` the user chose
    (through ``parameter``, e.g. ``--params raw.fastmri_metadata_csv=...``) that does not
    exist is an error naming the parameter and the path, not a silent "no extra columns".

    .. code-block:: yaml

        fastmri_user_metadata:
          type: med_unlearning.datasets.OptionalCSVDataset
          filepath: ${runtime_params:raw.fastmri_metadata_csv,data/01_raw/fastmri_metadata.csv}
          default_filepath: data/01_raw/fastmri_metadata.csv
          parameter: raw.fastmri_metadata_csv
    """

    def __init__(
        self,
        *,
        filepath: str | os.PathLike,
        load_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        default_filepath: str | os.PathLike | None = None,
        parameter: str | None = None,
    ) -> None:
        """Create the dataset.

        Args:
            filepath: the CSV file (local path or fsspec URL).
            load_args: keyword arguments for ``pandas.read_csv``.
            metadata: free-form metadata, ignored by Kedro.
            default_filepath: the default location, the only one allowed to be absent
                (``None``: any ``filepath`` may be absent).
            parameter: the parameter that sets ``filepath``, named in the error.
        """
        self._explicit = default_filepath is not None and not _same_path(
            filepath, default_filepath
        )
        self._parameter = parameter
        self._protocol, path = get_protocol_and_path(filepath)
        self._filepath = PurePosixPath(path)
        self._fs = fsspec.filesystem(self._protocol)
        self._load_args = dict(load_args or {})
        self.metadata = metadata

    def load(self) -> pd.DataFrame:
        path = get_filepath_str(self._filepath, self._protocol)
        if not self._fs.exists(path):
            if self._explicit:
                given = f" given by {self._parameter}" if self._parameter else ""
                raise DatasetError(
                    f"user metadata table {path}{given} does not exist; fix the path, or unset "
                    "it to use the default location (absent there = no extra columns)"
                )
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


def _same_path(first: str | os.PathLike, second: str | os.PathLike) -> bool:
    """Whether two catalog paths name the same file (local paths are normalised)."""
    protocols = [get_protocol_and_path(str(path)) for path in (first, second)]
    (protocol_a, path_a), (protocol_b, path_b) = protocols
    if protocol_a != protocol_b:
        return False
    if protocol_a == "file":
        return os.path.abspath(os.path.normpath(path_a)) == os.path.abspath(
            os.path.normpath(path_b)
        )
    return path_a.rstrip("/") == path_b.rstrip("/")
