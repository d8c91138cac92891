"""OptionalCSVDataset: absent file -> empty table; ids stay text; read-only."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from kedro.io.core import DatasetError

from med_unlearning.datasets import OptionalCSVDataset


def test_missing_file_loads_an_empty_table(tmp_path: Path, caplog) -> None:
    dataset = OptionalCSVDataset(filepath=str(tmp_path / "absent.csv"))
    with caplog.at_level(logging.INFO):
        table = dataset.load()
    assert table.empty and not dataset.exists()
    assert "No user metadata table" in caplog.text


def test_present_file_loads_with_text_ids_and_its_source(tmp_path: Path) -> None:
    path = tmp_path / "mrbrains18_metadata.csv"
    path.write_text("subject_id,site,age\n070,utrecht,63\n148,amsterdam,71\n")

    table = OptionalCSVDataset(filepath=str(path)).load()

    assert list(table["subject_id"]) == ["070", "148"]
    assert list(table["age"]) == [63, 71]
    assert table.attrs["source"] == str(path)


def test_user_dtypes_merge_with_the_id_dtypes(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("volume_id,code\n001,007\n")
    table = OptionalCSVDataset(filepath=str(path), load_args={"dtype": {"code": str}}).load()
    assert (table.loc[0, "volume_id"], table.loc[0, "code"]) == ("001", "007")


def test_save_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="read-only"):
        OptionalCSVDataset(filepath=str(tmp_path / "m.csv")).save({"a": [1]})
