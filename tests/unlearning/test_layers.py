"""Import directions inside med_unlearning.unlearning, checked on the source (``ast``) and at
run time:

- the infrastructure (engine, requests, grid, pairing, registry, the package ``__init__``)
  never imports the strategies package: the registry loads it lazily, by name
  (``registry.STRATEGIES_PACKAGE``), at the first strategy look-up;
- the shared strategy toolkit (``common``) imports neither the strategies nor the engine;
- a strategy imports, from the unlearning package, only the registry's public names, the
  toolkit (``common``, ``pairing``) and the strategies' shared ``_`` modules — never the
  engine, the grid, the requests, nor another strategy.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import med_unlearning.unlearning as unlearning
from med_unlearning.unlearning import registry

PACKAGE = unlearning.__name__
STRATEGIES = f"{PACKAGE}.strategies"
ROOT = Path(unlearning.__file__).parent
INFRASTRUCTURE = ("__init__", "engine", "requests", "grid", "pairing", "registry")
TOOLKIT = ("common", "pairing")


def imports_of(path: Path, module: str) -> list[tuple[str, list[str]]]:
    """``(imported module, imported names)`` of every import in ``path`` (relative imports
    resolved against ``module``, the file's dotted name)."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")
                is_package = path.name == "__init__.py"
                anchor = parts[: len(parts) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([base] if base else []))
            names = [alias.name for alias in node.names]
            found.append((base, names))
            if base in (PACKAGE, STRATEGIES):  # `from package import module`
                found.extend((f"{base}.{name}", []) for name in names)
    return found


def _is_under(name: str, package: str) -> bool:
    return name == package or name.startswith(f"{package}.")


@pytest.mark.parametrize("name", INFRASTRUCTURE)
def test_infrastructure_does_not_import_the_strategies(name: str) -> None:
    path = ROOT / f"{name}.py"
    module = PACKAGE if name == "__init__" else f"{PACKAGE}.{name}"
    offending = [m for m, _ in imports_of(path, module) if _is_under(m, STRATEGIES)]
    assert not offending, f"{name}.py imports {offending}"


def test_the_registry_names_the_strategies_package_once() -> None:
    assert registry.STRATEGIES_PACKAGE == STRATEGIES
    source = (ROOT / "registry.py").read_text(encoding="utf-8")
    assert source.count(f'"{STRATEGIES}"') == 1


def test_the_toolkit_imports_neither_strategies_nor_engine() -> None:
    for name in ("common",):
        for imported, _ in imports_of(ROOT / f"{name}.py", f"{PACKAGE}.{name}"):
            assert not _is_under(imported, STRATEGIES), f"{name}.py imports {imported}"
            assert not _is_under(imported, f"{PACKAGE}.engine"), f"{name}.py imports the engine"


def _strategy_files() -> list[Path]:
    return sorted((ROOT / "strategies").glob("*.py"))


@pytest.mark.parametrize("path", _strategy_files(), ids=lambda path: path.name)
def test_strategies_import_only_the_registry_toolkit_and_shared_modules(path: Path) -> None:
    module = STRATEGIES if path.name == "__init__.py" else f"{STRATEGIES}.{path.stem}"
    allowed = {f"{PACKAGE}.{name}" for name in (*TOOLKIT, "registry")}
    for imported, names in imports_of(path, module):
        if not _is_under(imported, PACKAGE) or imported in (PACKAGE, STRATEGIES):
            continue
        if _is_under(imported, STRATEGIES):
            leaf = imported.removeprefix(f"{STRATEGIES}.").split(".")[0]
            assert leaf.startswith("_") or leaf in names or path.name == "__init__.py", (
                f"{path.name} imports the strategy module {imported}; share code through a "
                "'_' module instead"
            )
            continue
        assert imported in allowed, f"{path.name} imports {imported} (engine internals?)"
        if imported == f"{PACKAGE}.registry":
            private = [name for name in names if name not in registry.__all__]
            assert not private, f"{path.name} imports non-public registry names {private}"


def test_infrastructure_runs_without_the_strategies_until_a_look_up() -> None:
    code = (
        "import sys\n"
        f"import {PACKAGE}.engine, {PACKAGE}.grid, {PACKAGE}.requests, {PACKAGE}.pairing\n"
        f"assert {STRATEGIES!r} not in sys.modules, 'imported eagerly'\n"
        f"from {PACKAGE}.registry import get_strategy\n"
        "assert get_strategy('nl_ft').fn.__module__.endswith('strategies.nl_ft')\n"
        f"assert {STRATEGIES!r} in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
