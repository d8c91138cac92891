"""The unlearning package keeps the layout its redesign promised (issue 15).

``engine.py`` is the run itself; the run's typed result and records live in ``result.py``
and the plan in ``planning.py``; neither of those imports the engine, and the engine does
not re-export them (importers name the module a name lives in).
"""

from __future__ import annotations

import ast
from pathlib import Path

import med_unlearning.unlearning as unlearning

PACKAGE = Path(unlearning.__file__).parent


def _tree(name: str) -> ast.Module:
    return ast.parse((PACKAGE / f"{name}.py").read_text())


def _defined(name: str) -> set[str]:
    """Top-level classes, functions and constants a module defines."""
    names = set()
    for node in _tree(name).body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
    return names


def _imported_modules(name: str) -> set[str]:
    return {node.module or "" for node in ast.walk(_tree(name)) if isinstance(node, ast.ImportFrom)}


def test_result_types_and_records_live_in_result() -> None:
    result = _defined("result")
    assert {"RECORD_SCHEMA", "UnlearningSettings", "RunCost", "UnlearningResult"} <= result
    assert {"UnlearningPlan", "plan_unlearning", "alias_target"} <= _defined("planning")
    moved = {
        "RECORD_SCHEMA",
        "UnlearningSettings",
        "RunCost",
        "UnlearningResult",
        "UnlearningPlan",
        "plan_unlearning",
        "alias_target",
        "_jsonable",
        "_last_row",
    }
    assert _defined("engine") & moved == set()


def test_engine_reexports_nothing_it_does_not_define() -> None:
    from med_unlearning.unlearning import engine

    assert set(engine.__all__) <= _defined("engine")


def test_result_and_planning_do_not_import_the_engine() -> None:
    for name in ("result", "planning"):
        assert "med_unlearning.unlearning.engine" not in _imported_modules(name)
