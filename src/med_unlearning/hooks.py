"""Project hooks: validate every parameter before any node runs; one run per data root."""

from __future__ import annotations

import logging
import re
from typing import Any

from fsspec.utils import get_protocol
from kedro.framework.hooks import hook_impl

from med_unlearning.distributed import distributed_context, is_main_process
from med_unlearning.params import ParameterError, validate_parameters
from med_unlearning.run_lock import RunLock

logger = logging.getLogger(__name__)

_STRATEGY_BLOCK = re.compile(
    r"^params:unlearning\.(?P<task>[^.]+)\.strategies\.(?P<strategy>[^.]+)$"
)


def missing_parameter_inputs(pipeline: Any, catalog: Any) -> list[str]:
    """The ``params:`` inputs of ``pipeline`` that no parameters file defines.

    Kedro registers every parameter as a ``params:`` dataset; ``name in catalog`` would also
    match the catch-all ``{default_memory}`` pattern, so the registered names are compared.
    """
    defined = set(catalog.keys())
    return sorted(
        name for name in pipeline.inputs() if name.startswith("params:") and name not in defined
    )


def missing_parameters_message(missing: list[str]) -> str:
    """Say which parameters a run needs and where they go (strategy blocks by name)."""
    lines = []
    for name in missing:
        match = _STRATEGY_BLOCK.match(name)
        if match:
            task, strategy = match["task"], match["strategy"]
            lines.append(
                f"strategy {strategy!r} (task {task}) is registered, so the unlearning pipeline "
                f"runs it, but the parameters have no block unlearning.{task}.strategies."
                f"{strategy}; add one to conf/base/parameters_unlearning.yml under "
                f"unlearning: {task}: strategies: -- '{strategy}: {{}}' is enough (the "
                "strategy's defaults)"
            )
        else:
            lines.append(f"{name[len('params:'):]} is read by the pipeline but not set in conf")
    return "missing parameters:\n  - " + "\n  - ".join(lines)


class ParameterValidationHooks:
    """Fail at start, naming the key, when a parameter is misspelt or has the wrong type, or
    when a pipeline reads a parameter the conf does not set (e.g. a registered unlearning
    strategy without its ``unlearning.<task>.strategies.<strategy>`` block)."""

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Validate the raw parameters (conf env + runtime ``--params``) against the schemas.

        Kedro itself turns the ``params:`` inputs of typed nodes into pydantic models; this
        hook adds the whole-file check: every section, including those of pipelines not
        being run, and misspelt section names.
        """
        validated = validate_parameters(context.config_loader["parameters"])
        logger.info("Parameters validated: sections %s", sorted(validated))

    @hook_impl
    def before_pipeline_run(self, pipeline: Any, catalog: Any) -> None:
        """Refuse a run whose pipeline reads parameters the conf does not set, before any node
        runs, naming them (Kedro's own check says only "input(s) not found").

        Raises:
            ParameterError: listing each missing parameter and where to add it.
        """
        missing = missing_parameter_inputs(pipeline, catalog)
        if missing:
            raise ParameterError(missing_parameters_message(missing))


class DataRootError(ValueError):
    """``data_root`` is not a local path."""


def require_local_data_root(root: str) -> None:
    """Stop when ``data_root`` is a URL (``s3://``, ``gs://``, ``memory://``...).

    The project's datasets (fastMRI HDF5, NIfTI, checkpoints, write-once folders) and the run
    lock need a local filesystem; several machines share data through a shared mount at the
    same path.

    Raises:
        DataRootError: naming the value and what to use instead.
    """
    protocol = get_protocol(str(root))
    if protocol not in ("file", "local"):
        raise DataRootError(
            f"data_root={root!r} is a {protocol}:// URL; only local paths are supported "
            "(the datasets and the run lock need a filesystem). Use a local folder or a "
            "shared mount at the same path on every machine, e.g. --params "
            "data_root=/mnt/shared/study."
        )


class RunLockHooks:
    """Hold ``<data_root>/.med_unlearning.lock`` for the whole run (see :mod:`run_lock`).

    Only the main process of a ``torchrun`` job takes it (every rank runs the pipeline).
    """

    def __init__(self) -> None:
        self._data_root: str | None = None
        self._lock: RunLock | None = None

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Remember the run's data root (``--params data_root=...`` or globals); local only."""
        loader = context.config_loader
        runtime = getattr(loader, "runtime_params", None) or {}
        root = runtime.get("data_root")
        if root is None:
            root = (loader["globals"] or {}).get("data_root", "data")
        require_local_data_root(str(root))
        self._data_root = str(root)

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        """Take the lock, or stop with a message naming the lock file and its holder."""
        if self._data_root is None or not is_main_process(distributed_context("cpu")):
            return
        names = run_params.get("pipeline_names") or ["__default__"]
        lock = RunLock(self._data_root, description=f"kedro run --pipelines {','.join(names)}")
        lock.acquire()
        self._lock = lock

    @hook_impl
    def after_pipeline_run(self) -> None:
        """Release the lock."""
        self._release()

    @hook_impl
    def on_pipeline_error(self) -> None:
        """Release the lock when the run fails."""
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None
