"""Schema registry and validation for the project's parameters."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = [
    "ParameterError",
    "StrictModel",
    "register_section",
    "registered_sections",
    "typed_params",
    "validate_parameters",
    "validate_section",
]

#: Top-level keys that are not schema sections but plain values (paths given at run time,
#: read by the catalog through ``${runtime_params:...}``).
FREE_TOP_LEVEL_KEYS = frozenset({"data_root", "raw", "medicalnet_weights"})

_SECTIONS: dict[str, type[BaseModel]] = {}

ModelT = TypeVar("ModelT", bound=type[BaseModel])


class StrictModel(BaseModel):
    """Base of every parameter model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def typed_params(model: type[BaseModel], value: Any) -> Any:
    """``value`` as ``model``: Kedro hands typed nodes pydantic models, while plain calls
    (tests, scripts) may pass the raw mapping, which is validated here."""
    return value if isinstance(value, model) else model.model_validate(dict(value))


class ParameterError(ValueError):
    """Raised when parameters do not match their schema; the message names every bad key."""


def register_section(name: str) -> Callable[[ModelT], ModelT]:
    """Class decorator: declare ``model`` as the schema of top-level section ``name``."""

    def decorator(model: ModelT) -> ModelT:
        _SECTIONS[name] = model
        return model

    return decorator


def _import_schema_modules() -> None:
    """Import every module of this package so that their sections register themselves."""
    package = importlib.import_module("med_unlearning.params")
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"med_unlearning.params.{module.name}")


def registered_sections() -> dict[str, type[BaseModel]]:
    """Return ``{section name: schema}`` for every known section."""
    _import_schema_modules()
    return dict(_SECTIONS)


def _format_errors(section: str, error: ValidationError) -> list[str]:
    lines = []
    for item in error.errors():
        key = ".".join([section, *(str(part) for part in item["loc"])])
        value = item.get("input")
        shown = "" if isinstance(value, Mapping) else f" (got {value!r})"
        lines.append(f"  {key}: {item['msg']}{shown}")
    return lines


def validate_section(name: str, raw: Mapping[str, Any] | None) -> BaseModel:
    """Validate one section and return its typed model.

    Raises:
        ParameterError: naming ``<section>.<key>`` for each problem.
    """
    sections = registered_sections()
    if name not in sections:
        raise ParameterError(f"Unknown parameters section {name!r}; known: {sorted(sections)}")
    try:
        return sections[name].model_validate(dict(raw or {}))
    except ValidationError as error:
        raise ParameterError(
            "Invalid parameters:\n" + "\n".join(_format_errors(name, error))
        ) from None


def validate_parameters(params: Mapping[str, Any]) -> dict[str, BaseModel]:
    """Validate every section of a Kedro parameters mapping.

    Unknown top-level keys (a misspelt section name) and every invalid key inside a section
    are collected and reported together.

    Returns:
        ``{section: typed model}`` for the sections present.

    Raises:
        ParameterError: listing each bad key as ``section.key: problem``.
    """
    sections = registered_sections()
    problems: list[str] = []
    validated: dict[str, BaseModel] = {}
    for key, value in params.items():
        if key in FREE_TOP_LEVEL_KEYS:
            continue
        if key not in sections:
            problems.append(f"  {key}: unknown parameters section (known: {sorted(sections)})")
            continue
        try:
            validated[key] = sections[key].model_validate(dict(value or {}))
        except ValidationError as error:
            problems.extend(_format_errors(key, error))
        except (TypeError, ValueError):
            problems.append(f"  {key}: expected a mapping, got {type(value).__name__}")
    if problems:
        raise ParameterError("Invalid parameters:\n" + "\n".join(problems))
    return validated
