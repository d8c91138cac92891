"""The library works without Kedro: ``examples/unlearn_one_request.py`` runs end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from safetensors.torch import load_file

from med_unlearning.io.checkpoint import load_checkpoint
from med_unlearning.unlearning.result import RECORD_SCHEMA

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "unlearn_one_request.py"


def test_example_unlearns_one_request_without_kedro(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    check = (
        "import runpy, sys; sys.argv = [sys.argv[1], sys.argv[2]]; "
        "runpy.run_path(sys.argv[0], run_name='__main__'); "
        "assert 'kedro' not in sys.modules, 'kedro was imported'"
    )
    done = subprocess.run(
        [sys.executable, "-c", check, str(EXAMPLE), str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    original = load_checkpoint(tmp_path / "original.safetensors")
    unlearned = load_checkpoint(tmp_path / "unlearned.safetensors")
    record = json.loads((tmp_path / "erasure_record.json").read_text())
    assert record["schema"] == RECORD_SCHEMA and record["strategy"] == "nl_ft"
    assert record["parent"]["hash"] == original.content_hash
    assert record["unlearned"]["hash"] == unlearned.content_hash != original.content_hash
    assert unlearned.metadata.parent_hash == original.content_hash
    assert record["forget_ids"] == original.metadata.data_manifest[:1]
    assert set(load_file(tmp_path / "unlearned.safetensors")) == set(unlearned.state_dict)
    written = sorted(path.name for path in tmp_path.iterdir())  # no temporary file left
    assert written == ["erasure_record.json", "original.safetensors", "unlearned.safetensors"]
