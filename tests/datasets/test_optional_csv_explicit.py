"""Only the default user-metadata path may be absent; a path the user gives must exist."""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro.io.core import DatasetError

from med_unlearning.datasets import OptionalCSVDataset


def test_missing_default_path_loads_empty(tmp_path: Path) -> None:
    default = tmp_path / "01_raw" / "fastmri_metadata.csv"
    dataset = OptionalCSVDataset(
        filepath=str(default), default_filepath=str(default), parameter="raw.fastmri_metadata_csv"
    )
    assert dataset.load().empty
    same = OptionalCSVDataset(  # the same file spelt differently is still the default
        filepath=str(tmp_path / "01_raw" / "." / "fastmri_metadata.csv"),
        default_filepath=str(default),
    )
    assert same.load().empty


def test_missing_explicit_path_is_an_error_naming_parameter_and_path(tmp_path: Path) -> None:
    given = tmp_path / "typo" / "sites.csv"
    dataset = OptionalCSVDataset(
        filepath=str(given),
        default_filepath=str(tmp_path / "01_raw" / "fastmri_metadata.csv"),
        parameter="raw.fastmri_metadata_csv",
    )
    with pytest.raises(DatasetError, match=rf"{given}.*given by raw\.fastmri_metadata_csv does "
                       "not exist"):
        dataset.load()
    given.parent.mkdir()
    given.write_text("volume_id,site\n007,A\n")
    assert dataset.load()["volume_id"].tolist() == ["007"]


def test_through_the_catalog_with_params(kedro_session, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.csv"
    with kedro_session(raw={"fastmri_metadata_csv": str(missing)}) as session:
        catalog = session.load_context().catalog
        with pytest.raises(DatasetError, match=r"given by raw\.fastmri_metadata_csv"):
            catalog.load("fastmri_user_metadata")
        assert catalog.load("mrbrains_user_metadata").empty  # its default: absent is fine
