"""Network architectures, built by registry name so a checkpoint can rebuild its model.

Each architecture module registers a factory with :func:`register_architecture`; a
checkpoint's metadata stores the name and the factory's keyword arguments, and
:func:`build_model` rebuilds the network from them.
"""

from med_unlearning.models.registry import (
    available_architectures,
    build_model,
    register_architecture,
)

__all__ = ["available_architectures", "build_model", "register_architecture"]
