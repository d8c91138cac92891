"""Project hooks: validate every parameter before any node runs."""

from __future__ import annotations

import logging
from typing import Any

from kedro.framework.hooks import hook_impl

from med_unlearning.params import validate_parameters

logger = logging.getLogger(__name__)


class ParameterValidationHooks:
    """Fail at start, naming the key, when a parameter is misspelt or has the wrong type."""

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Validate the raw parameters (conf env + runtime ``--params``) against the schemas.

        Kedro itself turns the ``params:`` inputs of typed nodes into pydantic models; this
        hook adds the whole-file check: every section, including those of pipelines not
        being run, and misspelt section names.
        """
        validated = validate_parameters(context.config_loader["parameters"])
        logger.info("Parameters validated: sections %s", sorted(validated))
