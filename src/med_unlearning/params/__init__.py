"""Typed parameter schemas, one module per top-level ``parameters*.yml`` section.

Each module in this package declares a pydantic model for its section and registers it with
:func:`register_section`. :func:`validate_parameters` checks a whole parameters mapping (as
Kedro loads it) so that a typo or a wrong type fails before any node runs, naming the key.
Nodes turn their raw ``params:<section>`` dict into the typed model with
``Model.model_validate(raw)``.
"""

from med_unlearning.params.base import (
    ParameterError,
    StrictModel,
    register_section,
    registered_sections,
    validate_parameters,
    validate_section,
)

__all__ = [
    "ParameterError",
    "StrictModel",
    "register_section",
    "registered_sections",
    "validate_parameters",
    "validate_section",
]
