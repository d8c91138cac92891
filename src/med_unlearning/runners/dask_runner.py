"""Run a Kedro pipeline's nodes on a Dask distributed cluster.

One runner (over 500 lines because the driver side, the worker side and the cluster set-up
share its task protocol; splitting them would spread one contract over three files).

``kedro run --runner med_unlearning.runners.DaskRunner`` sends every node to a Dask worker as
soon as the nodes it depends on have finished, so independent nodes (the unlearning grid:
tasks x strategies x retain fractions x seeds, and the evaluation fan-out) run in parallel on
as many workers as the cluster has. It follows the pattern of Kedro's deployment guide for
Dask, adapted to the Kedro 1.x runner API (``AbstractRunner._run`` and ``kedro.runner.Task``).

What goes where:

* **The driver** (the ``kedro run`` process) resolves the pipeline's dependencies, submits
  ready nodes, logs progress, fires the pipeline hooks (through the session, as always) and,
  at the end, gathers the in-memory pipeline outputs so that ``run()`` returns the same
  datasets as ``SequentialRunner``.
* **The catalog** is pickled once and broadcast to the workers: dataset *definitions* (paths,
  versions, parameters, and the credentials the datasets were built with), never the data
  of persisted datasets. Each node task unpickles its own private copy, so concurrent tasks
  on one worker never share catalog state. Use a cluster you trust (and TLS across hosts).
* **Persisted datasets** are loaded and saved by the worker that runs the node, through its
  copy of the catalog. Their paths must therefore mean the same thing on every worker:
  local paths only work when all workers share the filesystem (a ``LocalCluster`` on one
  machine, or a shared mount at the same path on every host); across machines use fsspec
  URLs (``s3://``, ``gcs://``, ``abfs://``, a shared NFS mount, ...) for ``data_root``.
* **In-memory datasets** (``MemoryDataset`` and other ephemeral datasets) that nodes of the
  run produce are returned by the producing task and passed to the consuming tasks as Dask
  futures: Dask moves them worker-to-worker and runs consumers next to their data where it
  can. A dataset's future is dropped as soon as its last consumer has run, which frees it on
  the workers. Their values must be picklable. Parameters and in-memory pipeline inputs
  travel inside the catalog.
* **Hooks**: the hook implementations registered on the session (``settings.HOOKS`` and
  plugins) are pickled and registered again inside each node task, so node hooks
  (``before_node_run``, ``after_node_run``, ``on_node_error``) and dataset hooks
  (``before/after_dataset_loaded/saved``) fire on the worker, around the node, exactly as
  ``kedro.runner.Task`` fires them. They run on copies: state a hook keeps on ``self``
  stays on the worker. A hook object that cannot be pickled is skipped with a warning.
  Pipeline hooks fire on the driver.
* **Logs** written on the workers to Kedro's loggers and to the loggers of the packages that
  define the nodes (``med_unlearning.*``) are forwarded to the driver's logging when the
  runner connects to a scheduler by address (remote workers' output is not on the driver's
  terminal). Workers of a local cluster print to the driver's terminal themselves, so
  nothing is forwarded (no duplicates);
  Dask's own INFO chatter is turned down to WARNING for a local cluster the runner starts.

Where the scheduler is: see :func:`resolve_scheduler_address`; with no address, a
``distributed.LocalCluster`` sized to the machine is started for the run and closed after it.

Requirements and limits:

* The scheduler and every worker need the same environment as the driver: this package
  (``pip install`` the project) and the same library versions, because node functions,
  datasets and hooks travel as references to importable code. Long-lived workers keep the
  code they imported first: restart them after changing the project.
* Dask runs worker processes as daemons, which may not start child processes: keep
  ``runtime.num_workers: 0`` (the default) or start workers with
  ``DASK_DISTRIBUTED__WORKER__DAEMON=False``.
* Dask sets ``OMP_NUM_THREADS=1`` in local worker processes, so torch nodes use one thread
  each and parallelism comes from the number of workers. Results equal a sequential run's
  for deterministic nodes; float results of torch ops whose reduction order depends on the
  thread count may differ in the last bits from a multi-threaded sequential run.
* Heavy nodes: fewer workers give each more memory (``--runner-params n_workers=4``).

GPUs: nodes that run a network carry the Kedro tag ``gpu``
(:mod:`med_unlearning.runners.resources`). When the cluster's workers declare the Dask
resource ``GPU``, each such node claims one unit, so one GPU node runs per GPU at a time
(CPU nodes run anywhere). A local cluster on a machine with CUDA starts one worker per GPU
declaring ``GPU=1``: dask-cuda's ``LocalCUDACluster`` when it is installed, else a
``LocalCluster`` whose worker ``i`` sees only GPU ``i`` (``CUDA_VISIBLE_DEVICES``). For a
cluster of your own, start GPU workers with ``dask worker ... --resources GPU=1`` (or
``dask cuda worker ... --resources GPU=1``). On CPU nothing changes.
"""

from __future__ import annotations

import logging
import operator
import os
import pickle
import uuid
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any

import cloudpickle
import dask.config
import dask.system
from distributed import Client, Future, LocalCluster, WorkerPlugin, get_worker, wait
from kedro.framework.hooks.manager import _create_hook_manager
from kedro.io.core import AbstractVersionedDataset
from kedro.runner import AbstractRunner
from kedro.runner.task import Task
from pluggy import PluginManager

from med_unlearning.runners.resources import GPU_RESOURCE, gpu_resources

if TYPE_CHECKING:
    from kedro.io import CatalogProtocol
    from kedro.pipeline import Pipeline
    from kedro.pipeline.node import Node

__all__ = ["ADDRESS_ENV_VAR", "DaskRunner", "DaskRunnerError", "resolve_scheduler_address"]

ADDRESS_ENV_VAR = "MED_UNLEARNING_DASK_ADDRESS"
"""Environment variable holding the scheduler address, e.g. ``tcp://10.0.0.5:8786``."""

_QUIET_WORKERS = {"distributed.nanny.pre-spawn-environ.DASK_LOGGING__DISTRIBUTED": "warning"}

#: ``BaseException.add_note`` exists from Python 3.11, the declared floor; the fallback keeps the
#: runner working if it is imported by an older interpreter (tested by simulation).
_HAS_ADD_NOTE = hasattr(BaseException, "add_note")


def _attach_note(exc: BaseException, note: str) -> None:
    """Attach ``note`` to ``exc`` (PEP 678), keeping the exception's type.

    On Python 3.11+ this is ``exc.add_note(note)``. On 3.10 the note is appended to
    ``exc.__notes__`` by hand (the same attribute, which 3.10's traceback does not print)
    and, for the common single-message exception, to its message, so the node's name still
    shows in ``str(exc)`` and the traceback.
    """
    if _HAS_ADD_NOTE:
        exc.add_note(note)
        return
    notes = getattr(exc, "__notes__", None)
    if not isinstance(notes, list):
        notes = []
        try:
            exc.__notes__ = notes  # type: ignore[attr-defined]
        except AttributeError:  # pragma: no cover - exceptions with __slots__
            pass
    notes.append(note)
    if len(exc.args) == 1 and isinstance(exc.args[0], str):
        exc.args = (f"{exc.args[0]}\n{note}",)
    elif not exc.args:
        exc.args = (note,)
"""Dask config for local worker processes: Dask's own logs at WARNING, node logs unchanged."""


class DaskRunnerError(ValueError):
    """The runner's settings, or a pipeline's nodes or datasets, cannot be used on Dask."""


def resolve_scheduler_address(address: str | None = None) -> str | None:
    """Return the Dask scheduler address to connect to, or ``None`` for a local cluster.

    The first of these that is set (and not blank) wins:

    1. ``address``, the runner argument (``kedro run --runner-params address=tcp://host:8786``);
    2. the ``MED_UNLEARNING_DASK_ADDRESS`` environment variable;
    3. Dask's own ``scheduler-address`` setting (``DASK_SCHEDULER_ADDRESS`` or a Dask config
       file such as ``~/.config/dask/distributed.yaml``), which Dask clients honour anyway.

    The address is deployment configuration, not an experiment parameter: it decides where
    nodes run, never what they compute, so it is not part of ``conf/`` parameters.

    Args:
        address: explicit address; blank strings count as unset.

    Returns:
        The address, or ``None`` when none is configured.
    """
    candidates = (
        address,
        os.environ.get(ADDRESS_ENV_VAR),
        dask.config.get("scheduler-address", default=None),
    )
    for candidate in candidates:
        if candidate is not None and str(candidate).strip():
            return str(candidate).strip()
    return None


@dataclass(frozen=True)
class _NodeJob:
    """Everything a worker needs to run one node, apart from the catalog and hooks.

    Attributes:
        node: the node to run.
        memory_outputs: outputs that are in-memory datasets, returned to the driver as futures.
        is_async: load and save the node's datasets with threads (``kedro.runner.Task``).
        run_id: the session id, passed to the node hooks.
        log_levels: logger name -> level to set on the worker, so that records the driver
            would show are emitted (and forwarded) there too; empty when not forwarding.
        log_topic: Dask event topic that forwards those loggers' records to the driver;
            ``None``: no forwarding.
    """

    node: Node
    memory_outputs: tuple[str, ...]
    is_async: bool
    run_id: str | None
    log_levels: tuple[tuple[str, int], ...]
    log_topic: str | None


def _execute_node_on_worker(
    job_blob: bytes,
    catalog_blob: bytes,
    plugins_blob: bytes,
    memory_inputs: dict[str, Any],
) -> dict[str, Any]:
    """Run one node on a Dask worker and return its in-memory outputs.

    Dask resolves the futures in ``memory_inputs`` to values before calling this. The node
    runs through ``kedro.runner.Task``, so dataset and node hooks fire exactly as in Kedro's
    own runners, around a private copy of the catalog.

    Args:
        job_blob: the cloudpickled :class:`_NodeJob` (cloudpickle, not Dask's pickle, so that
            node functions from ``__main__`` or modules registered with
            ``cloudpickle.register_pickle_by_value`` travel by value).
        catalog_blob: the pickled driver catalog (dataset definitions, parameters).
        plugins_blob: the pickled ``(name, hook implementation)`` pairs of the session.
        memory_inputs: values of the node's in-memory inputs produced by upstream nodes.

    Returns:
        ``{dataset name: value}`` for the node's in-memory outputs.
    """
    job: _NodeJob = pickle.loads(job_blob)
    for name, level in job.log_levels:
        logging.getLogger(name).setLevel(level)
    _set_log_forwarding([name for name, _ in job.log_levels], job.log_topic)
    catalog = pickle.loads(catalog_blob)
    hook_manager = _create_hook_manager()
    for plugin_name, plugin in pickle.loads(plugins_blob):
        hook_manager.register(plugin, name=plugin_name)
    for name in job.memory_outputs:
        # An empty MemoryDataset does not survive pickling as empty; reset it.
        catalog.release(name)
    for name, value in memory_inputs.items():
        catalog.get(name).save(value)
    try:
        Task(
            node=job.node,
            catalog=catalog,
            is_async=job.is_async,
            hook_manager=hook_manager,
            run_id=job.run_id,
        ).execute()
    except Exception as exc:
        where = f"on Dask worker {_worker_name()}"
        _attach_note(exc, f"Raised by Kedro node '{job.node.name}' {where}.")
        raise
    return {name: catalog.get(name).load() for name in job.memory_outputs}


class _LogForwarder(logging.Handler):
    """Sends the log records of a worker process to the driver as Dask events.

    Installed per task (idempotently) on the forwarded loggers rather than once per worker:
    importing Kedro on a worker reconfigures logging and would drop a handler added earlier.
    """

    def __init__(self, topic: str, worker: Any) -> None:
        super().__init__()
        self.topic = topic
        self._worker = worker

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._worker.log_event(self.topic, _record_as_dict(record, self._worker.address))
        except Exception:  # a log record must never fail a node
            self.handleError(record)


def _record_as_dict(record: logging.LogRecord, worker_address: str) -> dict[str, Any]:
    """A log record as plain values (message formatted, traceback as text) for transport."""
    attributes = dict(record.__dict__)
    attributes["msg"] = record.getMessage()
    attributes["args"] = None
    if record.exc_info:
        attributes["exc_text"] = logging.Formatter().formatException(record.exc_info)
    attributes["exc_info"] = None
    attributes["worker"] = worker_address
    plain = (str, int, float, bool, type(None), list, tuple, dict)
    return {k: v if isinstance(v, plain) else str(v) for k, v in attributes.items()}


def _set_log_forwarding(logger_names: list[str], topic: str | None) -> None:
    """Make the named loggers of this worker process forward to ``topic`` (``None``: stop)."""
    for name in logger_names:
        target = logging.getLogger(name)
        ours = [h for h in target.handlers if isinstance(h, _LogForwarder)]
        if topic is not None and any(h.topic == topic for h in ours):
            continue
        for handler in ours:
            target.removeHandler(handler)
        if topic is not None:
            target.addHandler(_LogForwarder(topic, get_worker()))


def _emit_forwarded_record(event: tuple[float, dict[str, Any]]) -> None:
    """Driver side: hand a forwarded worker record to the driver's logger of the same name."""
    _, attributes = event
    record = logging.makeLogRecord(attributes)
    target = logging.getLogger(record.name)
    if target.isEnabledFor(record.levelno):
        target.handle(record)


def _worker_name() -> str:
    """Address of the Dask worker running the current task (``?`` outside a worker)."""
    try:
        return str(get_worker().address)
    except ValueError:
        return "?"


class DaskRunner(AbstractRunner):
    """Kedro runner that executes nodes as tasks on a Dask distributed cluster.

    ``kedro run --runner med_unlearning.runners.DaskRunner`` works with the defaults: with no
    scheduler address configured (see :func:`resolve_scheduler_address`) it starts a
    ``distributed.LocalCluster`` for the run with one single-threaded worker process per CPU
    core, and closes it afterwards. Options come from ``--runner-params``, e.g.
    ``--runner-params address=tcp://10.0.0.5:8786`` or ``--runner-params n_workers=4``.

    Results are the same as ``SequentialRunner``'s for a deterministic pipeline. See the
    module docstring for what goes to which worker and what the catalog must be (persisted
    paths visible to every worker: shared filesystem or fsspec URLs).

    Args:
        address: scheduler address; overrides the environment variable and Dask config.
        client: an existing ``distributed.Client`` to use (a notebook, a test). The runner
            never closes a client it was given. Cannot be combined with ``address``.
        n_workers: local cluster only: worker processes (default: the machine's CPU count).
        threads_per_worker: local cluster only: threads per worker (default 1: torch nodes
            parallelise over workers, and Dask sets ``OMP_NUM_THREADS=1`` in its workers).
        processes: local cluster only: workers as processes (default) or threads of the
            ``kedro run`` process.
        cluster_kwargs: local cluster only: more ``LocalCluster`` arguments
            (``memory_limit``, ``dashboard_address``, ...).
        forward_logging: forward log records from worker processes to the driver's logging;
            ``None`` (default): only when connecting by address (remote workers).
        is_async: load and save each node's datasets with threads (as in Kedro's runners).
        gpus: local cluster only: one worker per visible CUDA device, each declaring the
            Dask resource ``GPU=1`` (``None``, default: when CUDA is available; ``False``:
            never; then ``n_workers`` applies).

    Raises:
        DaskRunnerError: on contradictory or invalid settings.
    """

    def __init__(  # noqa: PLR0913
        self,
        address: str | None = None,
        *,
        client: Client | None = None,
        n_workers: int | None = None,
        threads_per_worker: int = 1,
        processes: bool = True,
        cluster_kwargs: dict[str, Any] | None = None,
        forward_logging: bool | None = None,
        is_async: bool = False,
        gpus: bool | None = None,
    ) -> None:
        super().__init__(is_async=is_async)
        if client is not None and address:
            raise DaskRunnerError("DaskRunner: give either `client` or `address`, not both.")
        if n_workers is not None and n_workers < 1:
            raise DaskRunnerError(f"DaskRunner: n_workers must be >= 1, got {n_workers}.")
        if threads_per_worker < 1:
            raise DaskRunnerError(
                f"DaskRunner: threads_per_worker must be >= 1, got {threads_per_worker}."
            )
        self._address = address
        self._client = client
        self._n_workers = n_workers
        self._threads_per_worker = threads_per_worker
        self._processes = processes
        self._cluster_kwargs = dict(cluster_kwargs or {})
        self._forward_logging = forward_logging
        self._gpus = gpus

    def __repr__(self) -> str:
        if self._client is not None:
            target = f"client={self._client.scheduler.address!r}"
        else:
            address = resolve_scheduler_address(self._address)
            target = (
                f"address={address!r}"
                if address
                else (
                    f"LocalCluster(n_workers={self._local_workers()}, "
                    f"threads_per_worker={self._threads_per_worker}, "
                    f"processes={self._processes})"
                )
            )
        return f"DaskRunner({target}, is_async={self._is_async})"

    def _local_workers(self) -> int:
        """Workers of a local cluster: as asked, else one per CPU core available to us."""
        return self._n_workers or dask.system.CPU_COUNT or 1

    def _get_executor(self, max_workers: int) -> None:
        """Not used: the Dask client is the executor (see ``_run``)."""
        return None

    @contextmanager
    def _connect(self) -> Iterator[tuple[Client, bool]]:
        """Yield a client for this run and whether it was reached by address (remote).

        Closes whatever this method opened; never a client given to the runner.
        """
        if self._client is not None:
            yield self._client, False
            return
        address = resolve_scheduler_address(self._address)
        if address:
            self._logger.info("Connecting to the Dask scheduler at %s", address)
            with Client(address) as client:
                yield client, True
            return
        factory, kwargs, pin_gpus = self._local_cluster_plan()
        self._logger.info(
            "No Dask scheduler address configured (%s, --runner-params address=...): "
            "starting a %s with %d workers x %d threads%s",
            ADDRESS_ENV_VAR,
            factory.__name__,
            kwargs["n_workers"],
            self._threads_per_worker,
            f", one GPU each ({GPU_RESOURCE}=1)" if "resources" in kwargs else "",
        )
        with (
            _quiet_distributed_logs(),
            dask.config.set(_QUIET_WORKERS),
            factory(**kwargs) as cluster,
            Client(cluster) as client,
        ):
            if pin_gpus:
                client.register_plugin(_PinOneGPU(kwargs["n_workers"]))
            yield client, False

    def _local_cluster_plan(self) -> tuple[Any, dict[str, Any], bool]:
        """The local cluster to start: ``(factory, keyword arguments, pin GPUs by name)``.

        With CUDA (and ``gpus`` not ``False``): one worker per GPU declaring ``GPU=1``, by
        dask-cuda's ``LocalCUDACluster`` if importable (it pins each worker to its GPU),
        else by a ``LocalCluster`` whose workers :class:`_PinOneGPU` pins. Otherwise the
        CPU cluster of ``n_workers`` workers.
        """
        kwargs: dict[str, Any] = {
            "threads_per_worker": self._threads_per_worker,
            **self._cluster_kwargs,
        }
        devices = _visible_cuda_devices() if self._gpus is not False else 0
        if devices:
            kwargs.update(n_workers=devices, resources={GPU_RESOURCE: 1})
            cuda_cluster = _local_cuda_cluster()
            if cuda_cluster is not None:
                return cuda_cluster, kwargs, False
            kwargs["processes"] = True  # each worker process gets its own CUDA_VISIBLE_DEVICES
            return LocalCluster, kwargs, True
        kwargs.update(n_workers=self._local_workers(), processes=self._processes)
        return LocalCluster, kwargs, False

    def _run(
        self,
        pipeline: Pipeline,
        catalog: CatalogProtocol,
        hook_manager: PluginManager | None = None,
        run_id: str | None = None,
    ) -> None:
        """Run the pipeline's nodes on Dask, each as soon as its dependencies are done.

        Args:
            pipeline: the (already filtered) pipeline to run.
            catalog: the run's catalog; its pipeline datasets are already materialised.
            hook_manager: the session's hook manager; its plugins are re-registered on workers.
            run_id: the session id.

        Raises:
            DaskRunnerError: a node or dataset cannot be sent to workers.
            Exception: the first node failure, re-raised with a note naming the node.
        """
        if not pipeline.nodes:
            self._logger.info("DaskRunner: the pipeline has no nodes; no cluster needed")
            return
        self._validate_nodes(pipeline.nodes)
        self._validate_catalog_for(pipeline, catalog)
        with self._connect() as (client, remote):
            wanted = remote if self._forward_logging is None else self._forward_logging
            log_topic = None
            if wanted and not _workers_in_process(client):
                log_topic = f"med-unlearning-logs-{uuid.uuid4().hex}"
                client.subscribe_topic(log_topic, _emit_forwarded_record)
            # Worker log levels are only touched for forwarding, which never happens for
            # in-process workers: they share (and must not change) the driver's loggers.
            log_levels = _driver_log_levels(pipeline.nodes) if log_topic else ()
            try:
                self._run_on_client(
                    client, pipeline, catalog, hook_manager, run_id, log_levels, log_topic
                )
            finally:
                if log_topic is not None:
                    client.unsubscribe_topic(log_topic)
                    self._stop_log_forwarding(client, log_levels)

    def _stop_log_forwarding(
        self, client: Client, log_levels: tuple[tuple[str, int], ...]
    ) -> None:
        """Remove this run's log forwarders from the workers (best effort: workers may be gone)."""
        try:
            client.run(_set_log_forwarding, [name for name, _ in log_levels], None)
        except Exception as exc:  # a lost worker must not hide the run's own outcome
            self._logger.debug("Could not stop log forwarding on every worker: %s", exc)

    def _run_on_client(  # noqa: PLR0913
        self,
        client: Client,
        pipeline: Pipeline,
        catalog: CatalogProtocol,
        hook_manager: PluginManager | None,
        run_id: str | None,
        log_levels: tuple[tuple[str, int], ...],
        log_topic: str | None,
    ) -> None:
        """Submit ready nodes, wait for any to finish, repeat; then gather in-memory outputs."""
        nodes = pipeline.nodes
        memory_datasets = _produced_in_memory(pipeline, catalog)
        for name in pipeline.datasets():
            dataset = catalog.get(name)
            if isinstance(dataset, AbstractVersionedDataset):
                # Drop cached version lookups so that each worker finds this run's versions.
                dataset.release()
        catalog_blob = client.scatter(cloudpickle.dumps(catalog), broadcast=True, hash=False)
        plugins_blob = client.scatter(
            cloudpickle.dumps(_picklable_plugins(hook_manager)), broadcast=True, hash=False
        )
        workers = client.scheduler_info(n_workers=-1)["workers"]
        n_workers = len(workers)
        has_gpus = any(
            GPU_RESOURCE in (info.get("resources") or {}) for info in workers.values()
        )
        self._logger.info(
            "Running %d nodes on Dask (%d workers%s); %d in-memory datasets pass between workers",
            len(nodes),
            n_workers,
            ", nodes tagged 'gpu' claim one GPU each" if has_gpus else "",
            len(memory_datasets),
        )
        if n_workers == 0:
            self._logger.warning("The Dask cluster has no workers yet: nodes wait until some join")

        load_counts = Counter(chain.from_iterable(n.inputs for n in nodes))
        dependencies = pipeline.node_dependencies
        todo: set[Node] = set(nodes)
        done: set[Node] = set()
        running: dict[Future, Node] = {}
        memory_futures: dict[str, Future] = {}
        token = uuid.uuid4().hex[:8]
        while True:
            ready = [n for n in nodes if n in todo and dependencies[n] <= done]
            todo.difference_update(ready)
            for node in ready:
                job = _NodeJob(
                    node=node,
                    memory_outputs=tuple(o for o in node.outputs if o in memory_datasets),
                    is_async=self._is_async,
                    run_id=run_id,
                    log_levels=log_levels,
                    log_topic=log_topic,
                )
                future = client.submit(
                    _execute_node_on_worker,
                    cloudpickle.dumps(job),
                    catalog_blob,
                    plugins_blob,
                    {i: memory_futures[i] for i in node.inputs if i in memory_futures},
                    key=f"{_function_name(node)}-{token}-{node.name}",
                    pure=False,
                    resources=gpu_resources(node, has_gpus),
                )
                running[future] = node
                for output in job.memory_outputs:
                    memory_futures[output] = client.submit(
                        operator.getitem, future, output, key=f"kedro_data-{token}-{output}"
                    )
            if not running:
                if todo:
                    self._raise_runtime_error(todo, done, set(ready), None)
                break
            finished, _ = wait(list(running), return_when="FIRST_COMPLETED")
            for future in finished:
                node = running.pop(future)
                if future.status != "finished":
                    self._fail(future, node, running, memory_futures, pipeline, catalog, done)
                done.add(node)
                self._logger.info("Completed node: %s", node.name)
                self._logger.info("Completed %d out of %d tasks", len(done), len(nodes))
                self._release_memory_futures(node, load_counts, memory_futures)
                self._release_datasets(node, catalog, load_counts, pipeline)

        for name in sorted(pipeline.outputs() & memory_datasets):
            catalog.get(name).save(memory_futures.pop(name).result())

    def _fail(  # noqa: PLR0913
        self,
        future: Future,
        node: Node,
        running: dict[Future, Node],
        memory_futures: dict[str, Future],
        pipeline: Pipeline,
        catalog: CatalogProtocol,
        done: set[Node],
    ) -> None:
        """Drop the rest of the run and re-raise the node's error with its name attached.

        Releasing the futures (rather than ``client.cancel``, which can trip a scheduler
        assertion when a future and its dependents go together) lets Dask forget queued
        work; tasks already executing finish on their worker and their results are dropped.
        """
        running.clear()
        memory_futures.clear()
        self._suggest_resume_scenario(pipeline, done, catalog)
        try:
            future.result()
        except Exception as exc:
            if not any(node.name in note for note in getattr(exc, "__notes__", [])):
                _attach_note(exc, f"Raised by Kedro node '{node.name}' (DaskRunner).")
            self._logger.error(
                "Node '%s' failed on Dask: %s: %s", node.name, type(exc).__name__, exc
            )
            raise
        raise DaskRunnerError(f"Node '{node.name}' ended as '{future.status}' on Dask.")

    @staticmethod
    def _release_memory_futures(
        node: Node, load_counts: Counter[str], memory_futures: dict[str, Future]
    ) -> None:
        """Forget in-memory datasets no remaining node needs, so workers can free them.

        Runs before ``_release_datasets``, which decrements ``load_counts``: a dataset goes
        when ``node`` was its last consumer. Pipeline outputs have no consumer and are kept
        for the final gather.
        """
        for name in set(node.inputs):
            if load_counts[name] <= node.inputs.count(name):
                memory_futures.pop(name, None)

    def _validate_nodes(self, nodes: Any) -> None:
        """Fail before anything runs when a node cannot be pickled for the workers."""
        unpicklable = []
        for node in nodes:
            try:
                cloudpickle.dumps(node)
            except Exception as exc:  # pickling raises many exception types
                unpicklable.append(f"{node.name} ({type(exc).__name__}: {exc})")
        if unpicklable:
            raise DaskRunnerError(
                "DaskRunner sends nodes to Dask workers, but these nodes cannot be pickled: "
                + "; ".join(unpicklable)
            )

    @staticmethod
    def _validate_catalog_for(pipeline: Pipeline, catalog: CatalogProtocol) -> None:
        """Fail before anything runs when a dataset of the pipeline cannot go to workers."""
        problems = []
        for name in sorted(pipeline.datasets()):
            dataset = catalog.get(name)
            if getattr(dataset, "_SINGLE_PROCESS", False):
                problems.append(f"{name} ({type(dataset).__name__} is single-process only)")
                continue
            try:
                cloudpickle.dumps(dataset)
            except Exception as exc:  # pickling raises many exception types
                problems.append(f"{name} (cannot be pickled: {type(exc).__name__}: {exc})")
        if problems:
            raise DaskRunnerError(
                "DaskRunner sends dataset definitions to Dask workers, but these datasets "
                "cannot go: " + "; ".join(problems)
            )


def _produced_in_memory(pipeline: Pipeline, catalog: CatalogProtocol) -> set[str]:
    """Names of the ephemeral (in-memory) datasets that nodes of ``pipeline`` produce."""
    return {
        name
        for name in pipeline.all_outputs()
        if getattr(catalog.get(name), "_EPHEMERAL", False)
    }


def _picklable_plugins(hook_manager: PluginManager | None) -> list[tuple[str, Any]]:
    """The hook manager's ``(name, plugin)`` pairs that can be pickled; warn about the rest."""
    if not isinstance(hook_manager, PluginManager):  # None or Kedro's _NullPluginManager
        return []
    plugins = []
    for name, plugin in hook_manager.list_name_plugin():
        if plugin is None:  # a blocked plugin
            continue
        try:
            cloudpickle.dumps(plugin)
        except Exception as exc:  # pickling raises many exception types
            warnings.warn(
                f"DaskRunner: hook plugin {name!r} cannot be pickled ({type(exc).__name__}: "
                f"{exc}); its node and dataset hooks will not fire on Dask workers.",
                stacklevel=3,
            )
            continue
        plugins.append((name, plugin))
    return plugins


def _driver_log_levels(nodes: list[Node]) -> tuple[tuple[str, int], ...]:
    """Effective driver log levels of Kedro's loggers and of the packages defining the nodes."""
    names = {"kedro", *(str(n.func.__module__).split(".")[0] for n in nodes)}
    return tuple(sorted((name, logging.getLogger(name).getEffectiveLevel()) for name in names))


def _function_name(node: Node) -> str:
    """The node function's name: the Dask task prefix, so Dask learns each function's duration.

    Sharing one prefix between a fast node and slow ones makes Dask underestimate the slow
    ones and pile them onto the worker that holds their inputs instead of spreading them.
    """
    name = getattr(node.func, "__name__", type(node.func).__name__)
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name) or "node"


@contextmanager
def _quiet_distributed_logs() -> Iterator[None]:
    """Raise the ``distributed`` logger to WARNING in this process for the block's duration."""
    distributed_logger = logging.getLogger("distributed")
    previous = distributed_logger.level
    if distributed_logger.getEffectiveLevel() < logging.WARNING:
        distributed_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        distributed_logger.setLevel(previous)


def _workers_in_process(client: Client) -> bool:
    """Whether every worker is a thread of this process (logs need no forwarding then)."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    return bool(workers) and all(address.startswith("inproc://") for address in workers)


def _visible_cuda_devices() -> int:
    """CUDA devices this process sees (0 without CUDA); imports torch only when asked."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a project dependency
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _local_cuda_cluster() -> Any:
    """dask-cuda's ``LocalCUDACluster`` when installed, else ``None``."""
    try:
        from dask_cuda import LocalCUDACluster
    except ImportError:
        return None
    return LocalCUDACluster


class _PinOneGPU(WorkerPlugin):
    """Make local worker ``i`` (named ``i`` by ``LocalCluster``) see only GPU ``i``.

    Runs in each worker process before any task, so CUDA (initialised lazily by torch on
    first use) only ever sees that device, as ``cuda:0``. Respects a
    ``CUDA_VISIBLE_DEVICES`` the driver already had (worker ``i`` gets its ``i``-th entry).
    """

    name = "med-unlearning-pin-gpu"

    def __init__(self, n_gpus: int) -> None:
        self.n_gpus = n_gpus

    def setup(self, worker: Any) -> None:
        try:
            index = int(worker.name) % self.n_gpus
        except (TypeError, ValueError):
            return
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        devices = visible.split(",") if visible else [str(i) for i in range(self.n_gpus)]
        os.environ["CUDA_VISIBLE_DEVICES"] = devices[index % len(devices)]
