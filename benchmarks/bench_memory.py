"""Benchmark 4 — memory: peak RSS (and peak CUDA memory on GPU) of training and of each
unlearning strategy.

Every measured thing runs in its own fresh Python process
(:mod:`benchmarks.memory_probe`): a KedroSession on a prepared data tree runs just that
selection of nodes, and the process's peak RSS (``VmHWM``) is what it needed, Kedro,
torch and the data included. ``rss_before`` (after imports and session set-up) is reported
next to it so the run's own increment is visible. The baseline row runs only the cheap
metadata node: the floor every Kedro run of the project pays.

Training rows run the ``<task>.original`` training node and its upstream nodes; strategy
rows run one unlearning main run (``unlearning.<task>.<strategy>.unlearn``) from the
persisted original/oracle checkpoints. The data tree is the ``e2e`` or ``unlearning``
benchmark's when this command made one, else a fresh one (env's sample data, originals
and oracles trained once).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.bench_e2e import STUDY_CACHE_KEY
from benchmarks.bench_unlearning import (
    QUICK_STRATEGIES,
    QUIET,
    STUDY_ROOT_KEY,
    main_run_nodes,
    prepare_study,
)
from benchmarks.common import BenchContext, BenchmarkResult, guarded
from benchmarks.kedro_tools import find_node, pipeline_node_names
from benchmarks.memory_probe import PREFIX

__all__ = ["NAME", "TITLE", "measure", "run"]

logger = logging.getLogger(__name__)

NAME = "memory"
TITLE = "4. Memory: peak RSS of training and of each unlearning strategy"
PROBE_TIMEOUT_S = 1800


#: Steps each measured run is limited to: the peak comes with the first steps (model copies,
#: optimiser state, datasets cached at construction, the first batches), so more steps only
#: add time.
MAX_STEPS = 2


def step_limits() -> dict[str, Any]:
    """Runtime parameters limiting every training and strategy run to one short epoch."""
    from med_unlearning.unlearning.registry import available_strategies

    short = {"epochs": 1, "max_steps_per_epoch": MAX_STEPS}
    return {
        **QUIET,
        "recon": {"training": short},
        "segmentation": {"training": {"epochs": 1}},
        "unlearning": {
            task: {"strategies": {name: short for name in available_strategies(task)}}
            for task in ("recon", "segmentation")
        },
    }


def measure(
    ctx: BenchContext,
    env: str,
    data_root: Path,
    node_names: list[str],
    to_nodes: list[str] | None = None,
) -> dict[str, Any]:
    """Run one selection in a fresh process; return its ``MEMORY_PROBE`` measurements.

    Raises:
        RuntimeError: the child failed (the message holds the end of its output).
    """
    spec = {
        "project_path": str(ctx.project_path),
        "env": env,
        "data_root": str(data_root),
        "node_names": node_names,
        "to_nodes": to_nodes,
        "extra_params": step_limits(),
    }
    environment = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "PYTHONPATH": _python_path(ctx)}
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory_probe", json.dumps(spec)],
        cwd=ctx.project_path,
        capture_output=True,
        text=True,
        env=environment,
        timeout=PROBE_TIMEOUT_S,
        check=False,
    )
    for line in reversed(completed.stdout.splitlines()):
        if line.startswith(PREFIX):
            return json.loads(line[len(PREFIX) :])
    tail = "\n".join((completed.stdout + completed.stderr).splitlines()[-6:])
    raise RuntimeError(f"memory probe exited with {completed.returncode}: {tail}")


def _python_path(ctx: BenchContext) -> str:
    existing = os.environ.get("PYTHONPATH")
    return f"{ctx.project_path}{os.pathsep}{existing}" if existing else str(ctx.project_path)


def _data_tree(ctx: BenchContext) -> tuple[Path, str]:
    """A data tree with trained originals/oracles: one this command made, else a new one."""
    for key in (STUDY_CACHE_KEY, STUDY_ROOT_KEY):
        cached = ctx.cache.get(key)
        if cached:
            return cached["data_root"], cached["env"]
    env = ctx.size("test", "base")
    return prepare_study(ctx, env, unlearning_nodes=None), env


def _add(result: BenchmarkResult, item: str, kind: str, measured: dict[str, Any]) -> None:
    result.add_row(
        item,
        kind=kind,
        peak_rss_mb=measured["peak_rss_mb"],
        rss_before_mb=measured["rss_before_mb"],
        increment_mb=measured["peak_rss_mb"] - measured["rss_before_mb"],
        cuda_peak_mb=measured["cuda_peak_mb"],
        wall_time_s=measured["wall_time_s"],
    )


def run(ctx: BenchContext) -> BenchmarkResult:
    """Measure training and every strategy's main run, one fresh process each."""
    result = BenchmarkResult(
        name=NAME,
        title=TITLE,
        measures=(
            "Peak resident set size of a fresh process running one Kedro selection (VmHWM: "
            "Python, Kedro, torch and data included), RSS before the run (after "
            "imports and session set-up), their difference, and torch's peak CUDA allocation on "
            "GPU. Training = the original model's training node (+ upstream); strategies = one "
            "unlearning main run each, from the persisted original/oracle checkpoints. Every run "
            f"is limited to one epoch of {MAX_STEPS} steps (segmentation training: one epoch): "
            "the peak comes with the first steps."
        ),
        columns=[
            "item",
            "kind",
            "peak_rss_mb",
            "rss_before_mb",
            "increment_mb",
            "cuda_peak_mb",
            "wall_time_s",
        ],
    )
    data_root: Path | None = None
    with guarded(result, "data tree (original and oracle models)"):
        data_root, env = _data_tree(ctx)
        result.settings = {"env": env, "max_steps": MAX_STEPS}
    if data_root is None:
        return result
    with guarded(result, "baseline: Kedro session + metadata node"):
        _add(
            result,
            "baseline: Kedro session + metadata node",
            "baseline",
            measure(
                ctx,
                env,
                data_root,
                [find_node(ctx.project_path, "recon", "build_fastmri_metadata")],
            ),
        )
    for task in ("recon", "segmentation"):
        item = f"training {task}.original"
        with guarded(result, item):
            train_node = find_node(ctx.project_path, task, f"{task}.original.train")
            _add(
                result,
                item,
                "training",
                measure(
                    ctx, env, data_root, pipeline_node_names(ctx.project_path, task), [train_node]
                ),
            )
    with guarded(result, "unlearning strategies"):
        strategies = {"nl_ft"} if ctx.quick else None
        nodes = main_run_nodes(ctx.project_path, strategies)
        if ctx.quick:
            nodes = [name for name in nodes if name.startswith("unlearning.recon.")]
        for node in nodes:
            run_name = node.removeprefix("unlearning.").removesuffix(".unlearn")
            with guarded(result, run_name):
                _add(result, run_name, "unlearning", measure(ctx, env, data_root, [node]))
    peaks = {row["kind"]: [] for row in result.rows if "kind" in row}
    for row in result.rows:
        if "peak_rss_mb" in row:
            peaks[row["kind"]].append(row["peak_rss_mb"])
    result.summary = {
        f"max_peak_rss_mb_{kind}": max(values) for kind, values in peaks.items() if values
    }
    result.notes.append(
        f"Quick mode measures one strategy ({QUICK_STRATEGIES[0]}) on recon only."
        if ctx.quick
        else "Every strategy's main run on both tasks."
    )
    return result
