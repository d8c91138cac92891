"""The task names are defined once (:mod:`med_unlearning.task_names`) and imported
everywhere else (issue 15)."""

from __future__ import annotations

import ast
from pathlib import Path

import med_unlearning
from med_unlearning.io import checkpoint
from med_unlearning.pipelines.unlearning import pipeline
from med_unlearning.task_names import TASKS
from med_unlearning.tasks import builders
from med_unlearning.unlearning import registry

SOURCE = Path(med_unlearning.__file__).parent
#: Files allowed to spell the names out (none besides task_names.py itself).
PENDING: tuple[str, ...] = ()


def _task_name_collections(path: Path) -> list[str]:
    """Tuples, lists and sets whose items are exactly the two task names, as literals."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            values = {elt.value for elt in node.elts if isinstance(elt, ast.Constant)}
            if len(node.elts) == 2 and values == set(TASKS):
                found.append(f"{path.relative_to(SOURCE)}:{node.lineno}")
    return found


def test_task_names_are_spelled_out_once() -> None:
    found = [
        hit
        for path in sorted(SOURCE.rglob("*.py"))
        if not any(part in path.as_posix() for part in PENDING)
        for hit in _task_name_collections(path)
    ]
    assert found == ["task_names.py:13"]


def test_every_layer_uses_the_one_definition() -> None:
    assert checkpoint.TASKS is TASKS
    assert pipeline.TASKS is TASKS
    assert registry.TASK_NAMES == frozenset(TASKS)
    assert builders.TASK_NAMES == TASKS  # a builder for every task, in the same order
