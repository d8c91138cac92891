"""The benchmark command in ``--quick`` mode writes its JSON and Markdown files.

Not a timed test: it checks that ``python -m benchmarks.run --quick`` runs the fast
benchmarks on tiny sizes and writes, for each, a JSON document with the expected keys (the
machine report included) and a Markdown table, plus the summary files; that ``e2e`` is
skipped in quick mode with a row saying so; and that bad arguments fail clearly. The
benchmarks that run Kedro sessions (overhead, unlearning, memory) take minutes even in quick
mode and are exercised by running the command itself. The shared machinery the ratios rest
on (paired ratios, line fits, failure rows, tables) is checked in-process at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

PROJECT_PATH = Path(__file__).resolve().parents[2]
QUICK = ("machine", "data_path", "e2e")
DOCUMENT_KEYS = {
    "benchmark",
    "title",
    "measures",
    "target",
    "status",
    "summary",
    "columns",
    "rows",
    "notes",
    "settings",
    "quick",
    "wall_time_s",
    "created_at",
    "machine",
}
MACHINE_KEYS = {
    "cpu_model",
    "logical_cores",
    "usable_cores",
    "memory_gb",
    "gpu",
    "versions",
    "torch_threads",
}


def _run(*args: str, cwd: Path = PROJECT_PATH) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.run", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def quick_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    completed = _run("--quick", "--only", ",".join(QUICK), "--out", str(out))
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return out


def test_quick_run_writes_json_and_markdown_per_benchmark(quick_out: Path) -> None:
    for name in QUICK:
        document = json.loads((quick_out / f"{name}.json").read_text())
        assert DOCUMENT_KEYS <= set(document), f"{name}: missing {DOCUMENT_KEYS - set(document)}"
        assert document["benchmark"] == name
        assert document["quick"] is True
        assert MACHINE_KEYS <= set(document["machine"])
        assert document["rows"], f"{name}: no rows"
        assert all({"item", "status"} <= set(row) for row in document["rows"])
        assert set(document["columns"]) >= {"item", "status"}
        markdown = (quick_out / f"{name}.md").read_text()
        assert markdown.startswith(f"## {document['title']}")
        assert "| item |" in markdown and "*Machine:*" in markdown


def test_quick_data_path_measures_every_reader_against_raw(quick_out: Path) -> None:
    document = json.loads((quick_out / "data_path.json").read_text())
    measured = [
        row
        for row in document["rows"]
        if row["status"] == "ok" and row.get("meets_target") is not None
    ]
    items = " ".join(row["item"] for row in measured)
    assert (
        "HDF5 volume scan" in items
        and "HDF5 shuffled slices" in items
        and "NIfTI volume read" in items
    )
    for row in measured:
        assert row["project_ms"] > 0 and row["raw_ms"] > 0 and row["ratio"] > 0
        assert row["meets_target"] == (row["ratio"] >= 0.9)
    waits = [row for row in document["rows"] if "wait_share" in row]
    assert len(waits) == 2
    assert all(0.0 <= row["wait_share"] <= 1.0 for row in waits)
    assert {"worst_read_ratio", "meets_target"} <= set(document["summary"])


def test_quick_mode_skips_the_end_to_end_study_with_a_row(quick_out: Path) -> None:
    document = json.loads((quick_out / "e2e.json").read_text())
    assert document["status"] == "skipped"
    assert "--quick" in document["rows"][0]["note"]


def test_summary_lists_every_benchmark_run(quick_out: Path) -> None:
    summary = json.loads((quick_out / "summary.json").read_text())
    assert list(summary["benchmarks"]) == list(QUICK)
    assert summary["quick"] is True
    assert MACHINE_KEYS <= set(summary["machine"])
    table = (quick_out / "summary.md").read_text()
    assert all(f"({name}.md)" in table for name in QUICK)


def test_unknown_benchmark_name_fails_with_the_valid_names(tmp_path: Path) -> None:
    completed = _run("--only", "no_such_benchmark", "--out", str(tmp_path))
    assert completed.returncode == 2
    assert "no_such_benchmark" in completed.stderr and "data_path" in completed.stderr
    assert not list(tmp_path.iterdir())


# ---- the shared machinery (in-process, no benchmark run) ----------------------------------


@pytest.fixture(scope="module")
def common() -> ModuleType:
    """``benchmarks.common`` (the project root on ``sys.path``)."""
    sys.path.insert(0, str(PROJECT_PATH))
    import benchmarks.common as module

    return module


def test_paired_ratio_is_the_median_of_per_round_ratios(common: ModuleType) -> None:
    # A drifting machine: both sides slow down together, the per-round ratio stays 0.5.
    assert common.paired_ratio([1.0, 2.0, 40.0], [2.0, 4.0, 80.0]) == pytest.approx(0.5)
    assert common.paired_ratio([1.0, 3.0, 100.0], [1.0, 1.0, 1.0]) == pytest.approx(3.0)


def test_fit_line_recovers_slope_and_r2(common: ModuleType) -> None:
    fit = common.fit_line([1, 2, 4, 8], [0.5 + 2.0 * x for x in (1, 2, 4, 8)])
    assert fit["slope"] == pytest.approx(2.0) and fit["intercept"] == pytest.approx(0.5)
    assert fit["r2"] == pytest.approx(1.0)
    assert common.fit_line([1, 2, 3], [1.0, 5.0, 1.0])["r2"] < 0.5


def test_guarded_turns_failures_into_rows_and_status(common: ModuleType) -> None:
    result = common.BenchmarkResult(name="x", title="x", measures="x")
    result.add_row("measured", value=1.0)
    with common.guarded(result, "missing part"):
        raise common.NotAvailableYet("pipeline 'evaluation' has no nodes yet")
    assert result.rows[-1]["status"] == common.STATUS_UNAVAILABLE
    assert "evaluation" in result.rows[-1]["note"]
    assert result.status == f"partial ({common.STATUS_UNAVAILABLE})"
    with common.guarded(result, "broken part"):
        raise ZeroDivisionError("boom")
    assert result.rows[-1]["status"] == common.STATUS_ERROR
    assert result.status.startswith("partial (error")


def test_markdown_table_shows_only_filled_columns(common: ModuleType) -> None:
    table = common.markdown_table(
        [{"item": "a", "ratio": 0.97, "empty": None}, {"item": "b|c", "ratio": 1.0}],
        ["item", "ratio", "empty"],
    )
    lines = table.splitlines()
    assert lines[0] == "| item | ratio |"
    assert lines[2] == "| a | 0.97 |" and "b\\|c" in lines[3]
