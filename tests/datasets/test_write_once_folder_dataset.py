"""WriteOnceFolderDataset: never touches a non-empty folder; fills an empty one, marker last."""

from __future__ import annotations

import json
import logging
import os
import socket
from pathlib import Path

import pytest
from kedro.io.core import DatasetError

from med_unlearning.datasets import WriteOnceFolderDataset
from med_unlearning.datasets.write_once_folder_dataset import (
    IN_PROGRESS_MARKER,
    SAMPLE_MARKER,
    STAGING_INFIX,
)


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


def _tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_interrupted_save_leaves_nothing_where_readers_look(
    tmp_path: Path, make_volume, monkeypatch
) -> None:
    """The writer fails after two files: no partial folder, no staging folder is left."""
    from med_unlearning.datasets import FastMRIVolumeDataset

    folder = tmp_path / "fastmri"
    original_save = FastMRIVolumeDataset.save
    saved: list[str] = []

    def flaky_save(self, data):  # type: ignore[no-untyped-def]
        if len(saved) == 2:
            raise RuntimeError("disk full")
        saved.append(str(self._filepath))
        return original_save(self, data)

    monkeypatch.setattr(FastMRIVolumeDataset, "save", flaky_save)
    partitions = {f"brain/b{index}": make_volume(seed=index) for index in range(4)}
    with pytest.raises(DatasetError, match="disk full"):
        _dataset(folder).save(partitions)
    assert len(saved) == 2
    assert not folder.exists()
    assert _tree(tmp_path) == []  # the staging folder is gone too

    monkeypatch.setattr(FastMRIVolumeDataset, "save", original_save)
    _dataset(folder).save(partitions)  # a rerun completes
    assert _tree(folder) == [SAMPLE_MARKER, *[f"brain/b{i}.h5" for i in range(4)]]
    assert [p.name for p in tmp_path.iterdir()] == ["fastmri"]


def test_staging_left_by_a_killed_run_is_removed_and_data_generated(
    tmp_path: Path, make_volume, caplog
) -> None:
    folder = tmp_path / "fastmri"
    staging = tmp_path / f".fastmri{STAGING_INFIX}deadbeef0000"
    (staging / "brain").mkdir(parents=True)
    (staging / "brain" / "b0.h5").write_bytes(b"half a file")
    (staging / IN_PROGRESS_MARKER).write_text(
        json.dumps({"host": socket.gethostname(), "pid": 2**22 + 12345})  # no such process
    )
    with caplog.at_level(logging.WARNING):
        _dataset(folder).save({"brain/b0": make_volume()})
    assert "interrupted" in caplog.text and str(staging) in caplog.text
    assert not staging.exists()
    assert _tree(folder) == [SAMPLE_MARKER, "brain/b0.h5"]


def test_staging_of_a_running_writer_is_left_alone(tmp_path: Path, make_volume) -> None:
    staging = tmp_path / f".fastmri{STAGING_INFIX}alive0000000"
    staging.mkdir()
    (staging / IN_PROGRESS_MARKER).write_text(
        json.dumps({"host": socket.gethostname(), "pid": os.getpid()})
    )
    _dataset(tmp_path / "fastmri").save({"v": make_volume()})
    assert (staging / IN_PROGRESS_MARKER).is_file()


def test_incomplete_folder_of_an_earlier_generator_is_regenerated(
    tmp_path: Path, make_volume, caplog
) -> None:
    """An in-place generator killed after 1 of 3 files: only sample names, no marker."""
    folder = tmp_path / "fastmri"
    (folder / "brain").mkdir(parents=True)
    (folder / "brain" / "b0.h5").write_bytes(b"truncated")
    partitions = {f"brain/b{index}": make_volume(seed=index) for index in range(3)}
    with caplog.at_level(logging.WARNING):
        _dataset(folder).save(partitions)
    assert "1 of the 3 sample files and no completion marker" in caplog.text
    assert _tree(folder) == [SAMPLE_MARKER, "brain/b0.h5", "brain/b1.h5", "brain/b2.h5"]
    assert sorted(_dataset(folder).load()) == ["brain/b0", "brain/b1", "brain/b2"]


def test_folder_with_a_foreign_file_is_never_touched_even_with_sample_names(
    tmp_path: Path, make_volume
) -> None:
    folder = tmp_path / "fastmri"
    (folder / "brain").mkdir(parents=True)
    (folder / "brain" / "b0.h5").write_bytes(b"user data")
    (folder / "brain" / "mine.h5").write_bytes(b"user data")
    _dataset(folder).save({f"brain/b{index}": make_volume(seed=index) for index in range(3)})
    assert _tree(folder) == ["brain/b0.h5", "brain/mine.h5"]
    assert (folder / "brain" / "b0.h5").read_bytes() == b"user data"


def test_overwrite_is_refused() -> None:
    with pytest.raises(DatasetError, match="never overwrites"):
        WriteOnceFolderDataset(
            path="x", dataset="med_unlearning.datasets.NiftiDataset", overwrite=True
        )


def test_preview_shows_the_chosen_or_first_item_through_the_inner_dataset(
    tmp_path: Path, make_volume
) -> None:
    from med_unlearning.datasets import FastMRIVolumeDataset

    folder = tmp_path / "fastmri"
    dataset = _dataset(folder)
    with pytest.raises(DatasetError, match="No partitions"):
        dataset.preview()
    dataset.save({"knee/b": make_volume(seed=2), "brain/a": make_volume(seed=1)})
    assert (folder / SAMPLE_MARKER).is_file()  # the marker is never previewed
    assert dataset.preview_partition() == "brain/a"
    assert dataset.preview_partition("knee") == "knee/b"
    assert dataset.preview_partition("b") == "knee/b"
    assert dataset.preview_partition("nothing/like/it") == "brain/a"
    knee = FastMRIVolumeDataset(filepath=str(folder / "knee" / "b.h5")).preview()
    brain = FastMRIVolumeDataset(filepath=str(folder / "brain" / "a.h5")).preview()
    assert knee != brain
    assert dataset.preview() == brain
    assert dataset.preview(partition="knee") == knee
