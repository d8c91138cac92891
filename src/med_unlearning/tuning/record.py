"""The recorded tuning run: the shipped conf defaults as the output of a tuning run.

After ``kedro run --pipelines tuning`` on the sample data::

    python -m med_unlearning.tuning.record data docs/tuning

copies the latest selection and trials tables into the repository (``sample_record.json``,
``<task>_trials.csv``) and prints the values to set in ``conf/base/parameters_unlearning.yml``;
``tests/tuning/test_record.py`` then checks that conf/base holds exactly the recorded values
and that the record is the best trial of its own trials table.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

__all__ = ["latest_version", "main", "write_record"]


def latest_version(dataset_folder: Path) -> Path:
    """The file of the newest version of a versioned Kedro dataset folder.

    Raises:
        FileNotFoundError: naming the folder, when it holds no version.
    """
    versions = sorted(path for path in dataset_folder.iterdir() if path.is_dir())
    if not versions:
        raise FileNotFoundError(f"{dataset_folder}: no version (run the tuning pipeline first)")
    return versions[-1] / dataset_folder.name


def write_record(data_root: Path, out: Path) -> dict[str, Any]:
    """Copy the latest ``tuning.selected`` and trials tables of ``data_root`` into ``out``.

    Returns:
        The selection document written as ``out/sample_record.json``.
    """
    selection_file = latest_version(data_root / "05_model_input" / "tuning" / "selected.json")
    selection = json.loads(selection_file.read_text())
    out.mkdir(parents=True, exist_ok=True)
    (out / "sample_record.json").write_text(json.dumps(selection, indent=2, sort_keys=True) + "\n")
    for task in selection.get("tasks", {}):
        trials = latest_version(data_root / "08_reporting" / "tuning" / f"{task}_trials.csv")
        shutil.copyfile(trials, out / f"{task}_trials.csv")
    return selection


def main(argv: list[str] | None = None) -> int:
    """``python -m med_unlearning.tuning.record DATA_ROOT OUT``: write the record, print the
    values conf/base must hold."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(__doc__)
        return 2
    selection = write_record(Path(args[0]), Path(args[1]))
    for task, strategies in selection.get("tasks", {}).items():
        for strategy, entry in strategies.items():
            print(f"unlearning.{task}.strategies.{strategy}: {entry['params']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
