"""Experiment tracking in MLflow through kedro-mlflow (Kedro-only; domain code never logs).

One MLflow run per ``kedro run`` (kedro-mlflow's, named after the pipelines) in the
experiment of ``conf/<env>/mlflow.yml``, with nested runs:

* one per trained or unlearned model (``recon.original``, ``unlearning.recon.nl_ft``, ...),
  read from the outputs of the node that made it: the run's own parameters (a strategy's
  settings as applied, or the task's model/training blocks), per-epoch metrics from its
  history, ``lineage.json`` (the checkpoint's lineage record), ``erasure_request.json`` and,
  with ``log_checkpoints``, the ``.safetensors`` file; tags ``task``, ``model``, ``kind``,
  ``strategy``, ``retain_fraction``, ``seed``, ``parent_hash`` (and ``alias_of``); the
  erasure record's numeric ``cost`` entries as ``cost.*`` metrics;
* one ``evaluation`` run holding the summary tables, figures and report as artifacts.

Nested runs are written with :class:`mlflow.MlflowClient` and explicit run ids (no fluent
"active run"), so they work from any thread or Dask worker that can reach the store.

With tracking off (``med_unlearning.enabled: false`` or ``MED_UNLEARNING_MLFLOW=0``) the
hooks do nothing: no store, no experiment, no file.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.framework.hooks import hook_impl
from pydantic import BaseModel, ConfigDict

from med_unlearning.distributed import distributed_context, is_main_process

__all__ = [
    "ENV_SWITCH",
    "MlflowTrackingHooks",
    "TrackingOptions",
    "flatten_params",
    "history_metrics",
    "mlflow_environment_defaults",
    "switch_from_env",
]

logger = logging.getLogger(__name__)

#: Environment variable that overrides ``med_unlearning.enabled`` (``0``/``1``, ``off``/``on``).
ENV_SWITCH = "MED_UNLEARNING_MLFLOW"

#: MLflow refuses a param value longer than this (mlflow.utils.validation).
_MAX_PARAM_LENGTH = 6000

_TRUE = {"1", "true", "on", "yes"}
_FALSE = {"0", "false", "off", "no"}

#: Blocks of a task's parameter section that define a training run.
_TRAINING_BLOCKS = ("model", "loss", "mask", "training", "data")


def mlflow_environment_defaults() -> None:
    """Environment defaults for MLflow, set before kedro loads kedro-mlflow (which imports
    mlflow): no usage telemetry (MLflow would otherwise contact its servers on import), and
    the local file store allowed (MLflow 3 refuses it unless asked). A value already set in
    the environment wins."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    if "mlflow" in sys.modules:  # imported earlier by something else: drop its client now
        from mlflow.telemetry.client import set_telemetry_client

        set_telemetry_client()  # re-reads the environment; None when telemetry is disabled


class TrackingOptions(BaseModel):
    """The project's block ``med_unlearning`` of ``mlflow.yml`` (the rest is kedro-mlflow's)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    log_checkpoints: bool = False
    evaluation_artifacts: list[str] = []


def switch_from_env(value: str | None) -> bool | None:
    """``MED_UNLEARNING_MLFLOW``'s value as a switch; ``None`` when unset or empty.

    Raises:
        ValueError: for a value that is not one of 0/1, true/false, on/off, yes/no.
    """
    if value is None or not value.strip():
        return None
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"{ENV_SWITCH}={value!r}: expected one of 0/1, true/false, on/off, yes/no")


def _plain(value: Any) -> Any:
    """A pydantic model or mapping as a plain dict (other values unchanged)."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def flatten_params(block: Mapping[str, Any] | Any, prefix: str = "") -> dict[str, str]:
    """Nested parameters as MLflow params: dotted keys, string values (lists as written).

    >>> flatten_params({"epochs": 2, "optimizer": {"name": "adam"}}, prefix="training.")
    {'training.epochs': '2', 'training.optimizer.name': 'adam'}
    """
    plain = _plain(block)
    if not plain:
        return {}
    flat = pd.json_normalize(plain, sep=".").to_dict(orient="records")[0]
    return {f"{prefix}{key}": str(value)[:_MAX_PARAM_LENGTH] for key, value in flat.items()}


def history_metrics(history: pd.DataFrame) -> Iterator[tuple[str, float, int]]:
    """``(metric, value, step)`` for every finite number of a per-epoch history table.

    The step is the ``epoch`` column when there is one, else the row number.
    """
    numeric = history.select_dtypes("number")
    steps = (
        numeric["epoch"].astype(int).tolist()
        if "epoch" in numeric.columns
        else list(range(len(numeric)))
    )
    for step, (_, row) in zip(steps, numeric.iterrows(), strict=True):
        for key, value in row.items():
            if key != "epoch" and math.isfinite(value):
                yield str(key), float(value), int(step)


def _saved_path(dataset: Any) -> Path | None:
    """The local file or folder a file-based Kedro dataset has just written, else ``None``."""
    filepath = getattr(dataset, "_filepath", None) or getattr(dataset, "_path", None)
    if filepath is None or getattr(dataset, "_protocol", "file") not in ("file", None):
        return None
    if getattr(dataset, "_version", None) is not None:
        filepath = dataset._get_versioned_path(dataset.resolve_save_version())
    path = Path(str(filepath))
    return path if path.exists() else None


class MlflowTrackingHooks:
    """kedro-mlflow's run for each ``kedro run``, plus nested runs per model (see module).

    kedro-mlflow's own hook is disabled in ``settings.py``; this one drives it when tracking
    is on, and leaves MLflow alone (no store, no experiment, no file) when it is off.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._enabled = False
        self._options = TrackingOptions()
        self._tracking_uri: str | None = None
        self._experiment_id: str | None = None
        self._parent_run_id: str | None = None
        self._evaluation_run_id: str | None = None
        self._model_runs: dict[str, str] = {}
        self._catalog: Any = None
        self._km: Any = None
        self._client_cache: Any = None

    def __getstate__(self) -> dict[str, Any]:
        # Pickled to Dask workers: ids and options travel; clients and the catalog do not.
        state = dict(self.__dict__)
        state.update(_km=None, _client_cache=None, _catalog=None)
        return state

    @property
    def _client(self) -> Any:
        if self._client_cache is None:
            from mlflow import MlflowClient

            self._client_cache = MlflowClient(tracking_uri=self._tracking_uri)
        return self._client_cache

    # ---- pipeline-level hooks (driver) ---------------------------------------------------

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Read ``mlflow.yml``; when tracking is on, set MLflow up through kedro-mlflow."""
        self._reset()
        from kedro.config import MissingConfigException

        try:
            conf = dict(context.config_loader["mlflow"] or {})
        except MissingConfigException:
            conf = {}
        self._options = TrackingOptions.model_validate(conf.pop("med_unlearning", None) or {})
        switch = switch_from_env(os.environ.get(ENV_SWITCH))
        enabled = self._options.enabled if switch is None else switch
        from kedro_mlflow.config.kedro_mlflow_config import KedroMlflowConfig

        config = KedroMlflowConfig.model_validate(conf)
        # kedro-mlflow's CLI (`kedro mlflow ui`) reads the configuration from the context.
        context.__setattr__("mlflow", config)
        if not enabled or not is_main_process(distributed_context("cpu")):
            logger.info("MLflow tracking is off (mlflow.yml med_unlearning.enabled / %s)",
                        ENV_SWITCH)
            return

        from kedro_mlflow.framework.hooks.mlflow_hook import MlflowHook

        config.setup(context)  # tracking URI, experiment (created if new), autologging off
        self._km = MlflowHook()
        self._km.mlflow_config = config
        self._km._already_active_mlflow = False
        self._tracking_uri = config.server.mlflow_tracking_uri
        self._experiment_id = config.tracking.experiment._experiment.experiment_id
        self._enabled = True

    @hook_impl
    def after_catalog_created(self, catalog: Any) -> None:
        """Keep the catalog: saved files are found through their datasets."""
        self._catalog = catalog

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        """Start the run of this ``kedro run`` (kedro-mlflow) and the evaluation's nested run."""
        if not self._enabled or self._km is None:
            return
        self._km.before_pipeline_run(run_params=run_params, pipeline=pipeline, catalog=catalog)
        self._parent_run_id = self._km.run_id if self._km._is_mlflow_enabled else None
        if self._parent_run_id is None:
            return
        if set(self._options.evaluation_artifacts) & set(pipeline.all_outputs()):
            self._evaluation_run_id = self._start_run("evaluation", {"kind": "evaluation"})

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        """Close the evaluation run, then kedro-mlflow's run."""
        self._finish("FINISHED", run_params, pipeline, catalog, error=None)

    @hook_impl
    def on_pipeline_error(
        self, error: Exception, run_params: dict[str, Any], pipeline: Any, catalog: Any
    ) -> None:
        """Mark the open runs failed."""
        self._finish("FAILED", run_params, pipeline, catalog, error=error)

    def _finish(
        self, status: str, run_params: Any, pipeline: Any, catalog: Any, error: Any
    ) -> None:
        if not self._enabled or self._km is None:
            return
        if self._evaluation_run_id is not None:
            self._client.set_terminated(self._evaluation_run_id, status)
            self._evaluation_run_id = None
        if error is None:
            self._km.after_pipeline_run(run_params=run_params, pipeline=pipeline, catalog=catalog)
        else:
            self._km.on_pipeline_error(
                error=error, run_params=run_params, pipeline=pipeline, catalog=catalog
            )
        self._parent_run_id = None

    # ---- node and dataset hooks (wherever the node runs) ---------------------------------

    @hook_impl
    def after_node_run(self, node: Any, inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
        """Log every model the node made (an output ``<prefix>.checkpoint``) as a nested run."""
        if self._parent_run_id is None:
            return
        for name, value in outputs.items():
            if name.endswith(".checkpoint") and hasattr(value, "metadata"):
                prefix = name.removesuffix(".checkpoint")
                self._model_runs[name] = self._log_model_run(prefix, value, inputs, outputs)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        """Log the saved checkpoint file (``log_checkpoints``) and the evaluation artifacts."""
        if self._parent_run_id is None:
            return
        if dataset_name in self._model_runs and self._options.log_checkpoints:
            self._log_saved(self._model_runs[dataset_name], dataset_name, "checkpoint")
        elif dataset_name in self._options.evaluation_artifacts and self._evaluation_run_id:
            self._log_saved(self._evaluation_run_id, dataset_name, "evaluation")

    # ---- helpers ----------------------------------------------------------------------------

    def _start_run(self, name: str, tags: Mapping[str, str]) -> str:
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

        run = self._client.create_run(
            self._experiment_id,
            run_name=name,
            tags={MLFLOW_PARENT_RUN_ID: self._parent_run_id, **tags},
        )
        return run.info.run_id

    def _log_model_run(
        self, prefix: str, checkpoint: Any, inputs: Mapping[str, Any], outputs: Mapping[str, Any]
    ) -> str:
        from mlflow.entities import Metric, Param, RunTag

        meta = checkpoint.metadata
        record = outputs.get(f"{prefix}.erasure_request")
        history = outputs.get(f"{prefix}.history")
        unlearned = meta.strategy is not None
        strategy_params = _plain(meta.strategy_params or {})
        if unlearned:
            params = {"strategy": meta.strategy, **flatten_params(strategy_params)}
        else:
            section = _plain(inputs.get(f"params:{meta.task}") or {})
            params = {"architecture": meta.architecture}
            for block in _TRAINING_BLOCKS:
                params.update(flatten_params(section.get(block) or {}, prefix=f"{block}."))
        params.update(seed=str(meta.seed), epochs=str(meta.epochs))
        tags = {
            "task": meta.task,
            "model": prefix.rsplit(".", 1)[-1],
            "kind": "unlearning" if unlearned else "training",
            "strategy": meta.strategy or "none",
            "seed": str(meta.seed),
            "parent_hash": str(meta.parent_hash),
        }
        if "retain_fraction" in strategy_params:
            tags["retain_fraction"] = str(strategy_params["retain_fraction"])
        if isinstance(record, Mapping) and record.get("alias_of"):
            tags["alias_of"] = str(record["alias_of"])  # same subset as a run already made
        run_id = self._start_run(prefix, tags)
        now = int(time.time() * 1000)
        metrics = []
        if isinstance(history, pd.DataFrame):
            metrics = [Metric(k, v, now, s) for k, v, s in history_metrics(history)]
        if meta.wall_time_s is not None:
            metrics.append(Metric("wall_time_s", float(meta.wall_time_s), now, 0))
        cost = record.get("cost") if isinstance(record, Mapping) else None
        if isinstance(cost, Mapping):
            flat = pd.json_normalize(_plain(cost), sep=".").to_dict(orient="records")[0]
            metrics += [
                Metric(f"cost.{key}", float(value), now, 0)
                for key, value in flat.items()
                if isinstance(value, (int, float)) and not isinstance(value, bool)
                and math.isfinite(value)
            ]
        self._client.log_batch(
            run_id,
            metrics=metrics,
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        self._client.log_text(run_id, meta.to_json(), "lineage.json")
        if isinstance(record, Mapping):
            self._client.log_dict(run_id, dict(record), "erasure_request.json")
        self._client.set_terminated(run_id, "FINISHED")
        return run_id

    def _log_saved(self, run_id: str, dataset_name: str, artifact_path: str) -> None:
        dataset = self._catalog.get(dataset_name) if self._catalog is not None else None
        path = _saved_path(dataset) if dataset is not None else None
        if path is None:
            logger.warning("MLflow: %s was not logged (no local file found)", dataset_name)
        elif path.is_dir():
            self._client.log_artifacts(run_id, str(path), f"{artifact_path}/{path.name}")
        else:
            self._client.log_artifact(run_id, str(path), artifact_path)
