"""The shipped conf/base defaults are the output of the recorded tuning run (docs/tuning/)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from med_unlearning.tuning.record import write_record

ROOT = Path(__file__).resolve().parents[2]
RECORD = ROOT / "docs" / "tuning" / "sample_record.json"


def _conf_base_strategies() -> dict:
    document = yaml.safe_load((ROOT / "conf/base/parameters_unlearning.yml").read_text())
    return {task: block.get("strategies", {}) for task, block in document["unlearning"].items()}


def _record() -> dict:
    return json.loads(RECORD.read_text())


def test_conf_base_holds_exactly_the_recorded_selection():
    strategies = _conf_base_strategies()
    tasks = _record()["tasks"]
    assert tasks, "the record selects nothing"
    for task, selected in tasks.items():
        for strategy, entry in selected.items():
            block = strategies[task].get(strategy) or {}
            for key, value in entry["params"].items():
                assert key in block, f"conf/base lacks unlearning.{task}.{strategy}.{key}"
                assert block[key] == pytest.approx(value), f"{task}.{strategy}.{key}"


def test_the_record_is_the_best_trial_of_its_own_trials_table():
    record = _record()
    assert record["objective"] in ("oracle", "oracle_free")
    for task, selected in record["tasks"].items():
        trials = pd.read_csv(RECORD.parent / f"{task}_trials.csv")
        for strategy, entry in selected.items():
            rows = trials.loc[trials["strategy"] == strategy]
            assert len(rows) == entry["n_trials"]
            best = rows.sort_values(["objective", "trial"]).iloc[0]
            assert int(best["trial"]) == entry["trial"]
            assert math.isclose(best["objective"], entry["objective_value"], rel_tol=1e-9)
            for key, value in entry["params"].items():
                assert best[f"param_{key}"] == pytest.approx(value)
            assert "test" not in entry["selected_on"].replace("forget_train", "")


def test_write_record_copies_the_latest_versions(tmp_path: Path):
    selection = {"objective": "oracle", "seed": 1,
                 "tasks": {"recon": {"nl": {"params": {"epochs": 2}}}}}  # fmt: skip
    for version, epochs in (("2026-01-01T00.00.00.000Z", 1), ("2026-01-02T00.00.00.000Z", 2)):
        folder = tmp_path / "05_model_input/tuning/selected.json" / version
        folder.mkdir(parents=True)
        selection["tasks"]["recon"]["nl"]["params"]["epochs"] = epochs
        (folder / "selected.json").write_text(json.dumps(selection))
        trials = tmp_path / "08_reporting/tuning/recon_trials.csv" / version
        trials.mkdir(parents=True)
        (trials / "recon_trials.csv").write_text(f"trial,epochs\n0,{epochs}\n")
    written = write_record(tmp_path, tmp_path / "out")
    assert written["tasks"]["recon"]["nl"]["params"]["epochs"] == 2
    assert (tmp_path / "out/recon_trials.csv").read_text().endswith("0,2\n")
    assert json.loads((tmp_path / "out/sample_record.json").read_text()) == written
