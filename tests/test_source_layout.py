"""The source tree answers a newcomer by itself (issue 15): no module over ~500 lines unless
its docstring says why, and the library is usable without Kedro."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "med_unlearning"
LIMIT = 500
#: Modules that exist to wire Kedro (pipelines, Kedro datasets, hooks, runners, settings).
KEDRO_LAYER = ("pipelines", "datasets", "runners", "hooks.py", "tracking.py", "settings.py",
               "pipeline_registry.py", "distributed_kedro.py", "config_loader.py", "__main__.py")


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_long_modules_state_why_at_their_top() -> None:
    unexplained = []
    for path in _modules():
        text = path.read_text()
        if len(text.splitlines()) <= LIMIT:
            continue
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if f"{LIMIT} lines" not in docstring:
            unexplained.append(f"{path.relative_to(PACKAGE)} ({len(text.splitlines())} lines)")
    assert unexplained == []


def test_the_library_does_not_import_kedro() -> None:
    offenders = []
    for path in _modules():
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in KEDRO_LAYER:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(name == "kedro" or name.startswith(("kedro.", "kedro_")) for name in names):
                offenders.append(str(relative))
    assert offenders == []
