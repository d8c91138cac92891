"""Kedro runners beyond Kedro's own: :class:`DaskRunner` runs nodes on Dask distributed.

``kedro run --runner med_unlearning.runners.DaskRunner``.
"""

from __future__ import annotations

from med_unlearning.runners.dask_runner import (
    ADDRESS_ENV_VAR,
    DaskRunner,
    DaskRunnerError,
    resolve_scheduler_address,
)

__all__ = ["ADDRESS_ENV_VAR", "DaskRunner", "DaskRunnerError", "resolve_scheduler_address"]
