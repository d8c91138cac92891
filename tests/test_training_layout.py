"""The training package keeps the shape its redesign promised (issue 15).

Each module of :mod:`med_unlearning.training` holds one concept and stays under 500 lines,
no function's code (its docstring aside) runs over 60 lines, and every name callers import
from ``med_unlearning.training`` is still there.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import med_unlearning.training as training

PACKAGE = Path(training.__file__).parent
MODULES = sorted(PACKAGE.glob("*.py"))


def _code_lines(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of a function from its first statement after the docstring to its end."""
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:] or body
    return int(body[-1].end_lineno or 0) - body[0].lineno + 1


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_modules_are_short(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= 500


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_functions_are_short(path: Path) -> None:
    tree = ast.parse(path.read_text())
    long = {
        node.name: _code_lines(node)
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _code_lines(node) > 60
    }
    assert long == {}


def test_public_names_still_import_from_the_package() -> None:
    expected = {
        "LoopSettings",
        "NonFiniteLossError",
        "ResumeSettings",
        "ResumeStateError",
        "TrainingResult",
        "describe_batch",
        "make_loader",
        "move_to_device",
        "resume_key",
        "seed_everything",
        "train",
    }
    assert set(training.__all__) == expected
    for name in expected:
        assert getattr(training, name) is not None


def test_each_step_of_the_loop_has_its_own_function() -> None:
    loop = importlib.import_module("med_unlearning.training.loop")
    for name in ("_set_up", "_train_step", "_train_epoch", "_run_epoch", "_end_epoch"):
        assert callable(getattr(loop, name))
    validation = importlib.import_module("med_unlearning.training.validation")
    progress = importlib.import_module("med_unlearning.training.progress")
    assert callable(validation.validate_epoch) and callable(progress.log_epoch)
