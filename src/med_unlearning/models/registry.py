"""Registry of model factories by name."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from torch import nn

__all__ = ["available_architectures", "build_model", "register_architecture"]

#: Modules that register architectures; imported on first use so importing the registry stays cheap.
_ARCHITECTURE_MODULES = ("med_unlearning.models.recon", "med_unlearning.models.segmentation")

_FACTORIES: dict[str, Callable[..., nn.Module]] = {}


def register_architecture(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register ``factory(**params) -> nn.Module`` under ``name``."""

    def decorator(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _FACTORIES and _FACTORIES[name] is not factory:
            raise ValueError(f"Architecture {name!r} is registered twice")
        _FACTORIES[name] = factory
        return factory

    return decorator


def _load_architecture_modules() -> None:
    for module in _ARCHITECTURE_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            if error.name != module:
                raise


def available_architectures() -> list[str]:
    """Names of every registered architecture."""
    _load_architecture_modules()
    return sorted(_FACTORIES)


def build_model(name: str, params: dict[str, Any] | None = None) -> nn.Module:
    """Build architecture ``name`` with keyword arguments ``params``.

    Raises:
        ValueError: for an unknown name (listing the known ones) or arguments the factory
            does not accept.
    """
    _load_architecture_modules()
    if name not in _FACTORIES:
        raise ValueError(f"Unknown architecture {name!r}; available: {sorted(_FACTORIES)}")
    try:
        return _FACTORIES[name](**(params or {}))
    except TypeError as error:
        raise ValueError(f"Architecture {name!r} rejected its parameters {params}: {error}") from error
