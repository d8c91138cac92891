"""The ``unlearning`` pipeline's nodes are wiring only (issue 15): what a grid run does
lives in the library (:mod:`med_unlearning.unlearning.grid_run`), usable without Kedro."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import med_unlearning.pipelines.unlearning.nodes as nodes


def _code_lines(function: ast.FunctionDef) -> int:
    """Lines of a function's code, its docstring left out."""
    body = function.body
    if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return int(body[-1].end_lineno or 0) - body[0].lineno + 1


def test_unlearn_node_is_a_few_lines_of_wiring() -> None:
    tree = ast.parse(Path(nodes.__file__).read_text())
    functions = {
        node.name: _code_lines(node) for node in tree.body if isinstance(node, ast.FunctionDef)
    }
    assert functions["unlearn"] <= 10
    assert all(lines <= 40 for lines in functions.values()), functions


def test_grid_run_needs_no_kedro() -> None:
    code = (
        "import sys, med_unlearning.unlearning.grid_run\n"
        "assert not any(name == 'kedro' or name.startswith('kedro.') for name in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
