"""The walkthrough notebook executes against the tiny study's outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = [pytest.mark.e2e, pytest.mark.study]


def test_walkthrough_notebook_runs(study_run: Path, project_path: Path, monkeypatch) -> None:
    notebook = nbformat.read(project_path / "notebooks/study_walkthrough.ipynb", as_version=4)
    monkeypatch.setenv("MED_UNLEARNING_ENV", "test")
    monkeypatch.setenv("MED_UNLEARNING_DATA_ROOT", str(study_run))
    monkeypatch.setenv("MED_UNLEARNING_PROJECT", str(project_path))
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(project_path / "notebooks")}},
    )
    client.execute()
    outputs = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    ]
    assert not [output for output in outputs if output.get("output_type") == "error"]
    assert any("image/png" in output.get("data", {}) for output in outputs)
