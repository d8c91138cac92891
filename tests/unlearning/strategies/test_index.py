"""The index in the docstring of med_unlearning.unlearning.strategies agrees with the registry:
every registered built-in strategy is listed, every listed one is registered, and each row's
study, file and function are where the registered spec says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from med_unlearning.unlearning import strategies
from med_unlearning.unlearning.registry import available_strategies, get_strategy

#: ``| ``nl_ft`` | recon_study | ``nl_ft.py`` | ``nl_ft`` |``
ROW = re.compile(r"^\| ``(\w+)`` \| (\w+) \| ``(\w+)\.py`` \| ``(\w+)`` \|$")
PACKAGE = strategies.__name__
PACKAGE_DIR = Path(strategies.__file__).parent


def index_rows() -> list[tuple[str, str, str, str]]:
    """``(method, study, file stem, function)`` of every index row, in order."""
    rows = [match.groups() for line in (strategies.__doc__ or "").splitlines()
            if (match := ROW.match(line.strip()))]
    assert rows, "no index rows found in the strategies package docstring"
    return rows  # type: ignore[return-value]


def builtin_strategies() -> set[str]:
    """Registered strategies whose function lives in the strategies package."""
    return {
        name
        for name in available_strategies()
        if get_strategy(name).fn.__module__.startswith(f"{PACKAGE}.")
    }


def test_every_registered_strategy_is_listed_and_every_listed_one_registered() -> None:
    listed = [method for method, *_ in index_rows()]
    assert len(listed) == len(set(listed)), "a method is listed twice"
    assert set(listed) == builtin_strategies() == set(available_strategies())


@pytest.mark.parametrize("row", index_rows(), ids=lambda row: row[0])
def test_index_row_points_at_the_registered_function(row: tuple[str, str, str, str]) -> None:
    method, study, stem, function = row
    spec = get_strategy(method)
    assert spec.fn.__module__ == f"{PACKAGE}.{stem}"
    assert spec.fn.__name__ == function
    assert spec.family == study
    assert stem == method, "one file per method, named after its registry name"
    assert (PACKAGE_DIR / f"{stem}.py").is_file()


def test_index_order_is_the_registration_order_and_covers_every_strategy_file() -> None:
    files = sorted(
        path.stem for path in PACKAGE_DIR.glob("*.py") if not path.stem.startswith("_")
    )
    assert [stem for _, _, stem, _ in index_rows()] == list(strategies.STRATEGY_MODULES)
    assert files == sorted(strategies.STRATEGY_MODULES), (
        "every public module of the strategies package is a strategy (shared code goes in a "
        "module starting with '_')"
    )


def test_shared_modules_are_named_in_the_docstring() -> None:
    shared = sorted(
        path.name for path in PACKAGE_DIR.glob("_*.py") if path.name != "__init__.py"
    )
    assert shared, "expected the families' shared modules"
    for name in shared:
        assert f"``{name}``" in (strategies.__doc__ or ""), f"{name} is not described"
