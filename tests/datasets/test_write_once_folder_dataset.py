"""WriteOnceFolderDataset: never touches a non-empty folder; fills an empty one, marker last."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from kedro.io.core import DatasetError

from med_unlearning.datasets import WriteOnceFolderDataset
from med_unlearning.datasets.write_once_folder_dataset import SAMPLE_MARKER


def _dataset(folder: Path, suffix: str = ".h5") -> WriteOnceFolderDataset:
    return WriteOnceFolderDataset(
        path=str(folder), dataset="med_unlearning.datasets.FastMRIVolumeDataset",
        filename_suffix=suffix,
    )


def test_non_empty_folder_is_left_untouched(tmp_path: Path, make_volume, caplog) -> None:
    folder = tmp_path / "fastmri"
    (folder / "site_a").mkdir(parents=True)
    notes = folder / "site_a" / "README.txt"  # not even a .h5: any file counts
    notes.write_text("real data lives here")
    before = (notes.read_bytes(), notes.stat().st_mtime_ns)
    calls: list[str] = []

    def generate(name: str):  # type: ignore[no-untyped-def]
        def build():  # type: ignore[no-untyped-def]
            calls.append(name)
            return make_volume()

        return build

    with caplog.at_level(logging.WARNING):
        _dataset(folder).save({"brain_0": generate("brain_0"), "knee_0": generate("knee_0")})

    assert calls == []
    assert (notes.read_bytes(), notes.stat().st_mtime_ns) == before
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == [
        "site_a", "site_a/README.txt",
    ]
    assert "already holds 1 files; leaving it alone" in caplog.text


def test_empty_folder_gets_the_partitions_then_the_marker(tmp_path: Path, make_volume) -> None:
    folder = tmp_path / "fastmri"
    folder.mkdir()
    calls: list[str] = []

    def build():  # type: ignore[no-untyped-def]
        calls.append("called")
        return make_volume()

    _dataset(folder).save({"brain/b0": build, "knee/k0": make_volume(seed=1)})

    assert calls == ["called"]
    assert (folder / "brain" / "b0.h5").is_file() and (folder / "knee" / "k0.h5").is_file()
    marker = json.loads((folder / SAMPLE_MARKER).read_text())
    assert marker["partitions"] == ["brain/b0", "knee/k0"] and "created_at" in marker
    assert sorted(_dataset(folder).load()) == ["brain/b0", "knee/k0"]


def test_missing_folder_counts_as_empty(tmp_path: Path, make_volume) -> None:
    folder = tmp_path / "not" / "yet"
    _dataset(folder).save({"v": make_volume()})
    assert (folder / "v.h5").is_file() and (folder / SAMPLE_MARKER).is_file()


def test_marker_is_never_a_partition_even_without_a_suffix(tmp_path: Path, make_volume) -> None:
    folder = tmp_path / "fastmri"
    _dataset(folder).save({"v": make_volume()})
    assert list(_dataset(folder, suffix="").load()) == ["v.h5"]


def test_interrupted_save_leaves_no_marker(tmp_path: Path, make_volume) -> None:
    folder = tmp_path / "fastmri"

    def fail():  # type: ignore[no-untyped-def]
        raise RuntimeError("generator crashed")

    with pytest.raises(DatasetError, match="generator crashed"):
        _dataset(folder).save({"a": make_volume(), "b": fail})

    assert (folder / "a.h5").is_file()
    assert not (folder / SAMPLE_MARKER).exists()


def test_overwrite_is_refused() -> None:
    with pytest.raises(DatasetError, match="never overwrites"):
        WriteOnceFolderDataset(
            path="x", dataset="med_unlearning.datasets.NiftiDataset", overwrite=True
        )
