"""Every third-party import is declared in pyproject.toml, and every core dependency is used."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Imported inside a guard (optional feature, may be absent): module -> (extra, distribution).
OPTIONAL_IMPORTS = {"dask_cuda": ("gpu", "dask-cuda")}
#: Core dependencies that no module imports: command-line tools and plugins.
NOT_IMPORTED = {"kedro-viz"}
#: Modules of the repository itself (tests' helpers, the benchmarks package).
LOCAL = {"med_unlearning", "tests", "benchmarks", "tiny_task", "conftest"}


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.\-]+", requirement)[0]).lower()


def _declared() -> tuple[set[str], dict[str, set[str]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {_name(r) for r in project["dependencies"]}
    extras = {
        extra: {_name(r) for r in reqs}
        for extra, reqs in project["optional-dependencies"].items()
    }
    return core, extras


def _top_level_imports(folder: Path) -> set[str]:
    modules: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names) - LOCAL - {"__future__"}


def _distributions(modules: set[str]) -> dict[str, set[str]]:
    mapping = packages_distributions()
    missing = sorted(m for m in modules if m not in mapping)
    assert not missing, f"imported but not installed: {missing}"
    return {m: {_name(d) for d in mapping[m]} for m in modules}


def test_every_src_import_is_a_core_dependency() -> None:
    core, extras = _declared()
    imports = _top_level_imports(ROOT / "src")
    undeclared = {
        module: sorted(dists)
        for module, dists in _distributions(imports - set(OPTIONAL_IMPORTS)).items()
        if not dists & core
    }
    assert not undeclared, f"imported in src/ but not declared: {undeclared}"
    for module, (extra, dist) in OPTIONAL_IMPORTS.items():
        assert module in imports, f"{module} is no longer imported: drop it from [{extra}]"
        assert dist in extras[extra]


@pytest.mark.parametrize(("folder", "extra"), [("tests", "test"), ("benchmarks", "bench")])
def test_every_test_and_benchmark_import_is_declared(folder: str, extra: str) -> None:
    core, extras = _declared()
    undeclared = {
        module: sorted(dists)
        for module, dists in _distributions(_top_level_imports(ROOT / folder)).items()
        if not dists & (core | extras[extra])
    }
    assert not undeclared, f"imported in {folder}/ but not in core or [{extra}]: {undeclared}"


def test_every_core_dependency_is_imported() -> None:
    core, _ = _declared()
    modules = _top_level_imports(ROOT / "src") - set(OPTIONAL_IMPORTS)
    imported = set().union(*_distributions(modules).values())
    unused = core - imported - NOT_IMPORTED
    assert not unused, f"declared but never imported in src/: {sorted(unused)}"


def test_extras_cover_the_documented_features() -> None:
    _, extras = _declared()
    assert "ruff" in extras["dev"]
    assert {"jupyterlab", "notebook"} <= extras["jupyter"]
    assert "scikit-image" in extras["test"]
