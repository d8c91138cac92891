"""Benchmark 3 — unlearning cost: wall time of each strategy vs retraining the oracle.

Read from what a run of the unlearning pipeline wrote: each erasure-request record
(``08_reporting/erasure_requests/<task>/<run>.json``) holds the strategy's wall time and
the oracle's (retrained) wall time, the latter also checked against the oracle checkpoint's
metadata. The run is the ``e2e`` benchmark's study run when this command made one;
otherwise this benchmark makes its own: sample data, the ``recon`` and ``segmentation``
pipelines (original + oracle), then the unlearning pipeline's main runs (one per strategy;
``--quick``: conf/test sizes and a few strategies).

Target (the reconstruction study's "NL-FT costs ≈ 4% of retraining"): NL-FT and the feature
strategies (parameters of ``med_unlearning.unlearning.strategies._features``: Random Encoder,
Fix Decoder) at most 5% of retraining, on both tasks.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from benchmarks.bench_e2e import STUDY_CACHE_KEY, checkpoint_wall_times, erasure_records
from benchmarks.common import BenchContext, BenchmarkResult, NotAvailableYet, guarded
from benchmarks.data import FASTMRI_DIR, MRBRAINS_DIR, write_fastmri_sample, write_mrbrains_sample
from benchmarks.kedro_tools import pipeline_node_names, project_params, run_session, typed_section

__all__ = ["NAME", "STUDY_ROOT_KEY", "TITLE", "prepare_study", "run", "target_strategies"]

logger = logging.getLogger(__name__)

NAME = "unlearning"
TITLE = "3. Unlearning cost: each strategy vs retraining (oracle)"
TARGET_FRACTION = 0.05
#: Cache key of the data tree this benchmark trained in (the memory benchmark reuses it).
STUDY_ROOT_KEY = "unlearning_study"
#: Strategies run in --quick mode (the target's and a baseline).
QUICK_STRATEGIES = ("nl_ft", "random_encoder", "fix_decoder", "ft")
QUIET = {"runtime": {"progress": False}}


def target_strategies() -> set[str]:
    """NL-FT and every registered feature-space strategy (encoder-only, decoder frozen)."""
    from med_unlearning.unlearning.registry import available_strategies, get_strategy
    from med_unlearning.unlearning.strategies._features import FeatureUnlearningParams

    features = {
        name
        for name in available_strategies()
        if issubclass(get_strategy(name).params_model, FeatureUnlearningParams)
    }
    return {"nl_ft", *features}


def main_run_nodes(project_path: Path, strategies: set[str] | None = None) -> list[str]:
    """The unlearning pipeline's node names of main runs (no sweep variants), both tasks.

    Args:
        strategies: keep only these strategies (``None`` = all).
    """
    from med_unlearning.unlearning.grid import study_runs

    existing = set(pipeline_node_names(project_path, "unlearning"))
    nodes = []
    for task in ("recon", "segmentation"):
        specs = {spec.run: spec for spec in study_runs(task)}
        for spec in specs.values():
            if spec.variant is not None or (
                strategies is not None and spec.strategy not in strategies
            ):
                continue
            for run_name in (*spec.combines, spec.run):
                name = f"{specs[run_name].namespace}.unlearn" if run_name in specs else None
                if name in existing and name not in nodes:
                    nodes.append(name)
    if not nodes:
        raise NotAvailableYet(
            "the unlearning pipeline has no main-run nodes named <namespace>.unlearn"
        )
    return nodes


def prepare_study(ctx: BenchContext, env: str, unlearning_nodes: list[str] | None) -> Path:
    """Sample data + original/oracle models of both tasks (+ the given unlearning runs).

    Returns:
        The data root (also cached under :data:`STUDY_ROOT_KEY`).
    """
    from med_unlearning.params.runtime import RuntimeParams
    from med_unlearning.params.sample_data import SampleDataParams

    data_root = ctx.scratch(f"study_{env}")
    params = project_params(ctx.project_path, env, data_root, QUIET)
    sample = typed_section(params, "sample_data", SampleDataParams)
    seed = (
        sample.seed
        if sample.seed is not None
        else typed_section(params, "runtime", RuntimeParams).seed
    )
    write_fastmri_sample(data_root / FASTMRI_DIR, sample.fastmri, seed)
    write_mrbrains_sample(data_root / MRBRAINS_DIR, sample.mrbrains, seed)
    nodes = pipeline_node_names(ctx.project_path, "recon") + pipeline_node_names(
        ctx.project_path, "segmentation"
    )
    nodes += unlearning_nodes or []
    pipelines = ["recon", "segmentation"] + (["unlearning"] if unlearning_nodes else [])
    run_session(ctx.project_path, env, data_root, pipelines, node_names=nodes, extra_params=QUIET)
    ctx.cache[STUDY_ROOT_KEY] = {"data_root": data_root, "env": env}
    return data_root


def run(ctx: BenchContext) -> BenchmarkResult:
    """Tabulate every strategy's wall time as a fraction of retraining."""
    result = BenchmarkResult(
        name=NAME,
        title=TITLE,
        measures=(
            "Wall time of each unlearning run (the strategy alone, from its erasure-request "
            "record) divided by the wall time of retraining the oracle without the forget data "
            "(the oracle checkpoint's training wall time), per task. Source: a run of the "
            "unlearning pipeline "
            "(the e2e study run when available, else main runs at the env's sizes)."
        ),
        target=(
            f"NL-FT and the feature strategies <= {TARGET_FRACTION:.0%} of retraining, both tasks"
        ),
        columns=[
            "item",
            "task",
            "strategy",
            "family",
            "wall_time_s",
            "retrain_s",
            "fraction",
            "target",
            "meets_target",
        ],
    )
    study = ctx.cache.get(STUDY_CACHE_KEY)
    data_root: Path | None = None
    if study:
        data_root = study["data_root"]
        result.settings = {"source": "e2e study run", "env": study["env"]}
    else:
        env = ctx.size("test", "base")
        result.settings = {"source": "own run (main runs only)", "env": env}
        with guarded(result, "unlearning pipeline run"):
            strategies = set(QUICK_STRATEGIES) if ctx.quick else None
            data_root = prepare_study(ctx, env, main_run_nodes(ctx.project_path, strategies))
    if data_root is None:
        return result
    records = erasure_records(data_root)
    if not records:
        result.unavailable("erasure records", f"no erasure-request records under {data_root}")
        return result
    _add_rows(result, records, checkpoint_wall_times(data_root))
    return result


def _add_rows(
    result: BenchmarkResult, records: list[dict[str, Any]], trained: dict[str, float]
) -> None:
    targets = target_strategies()
    worst: dict[str, float] = {}
    for record in sorted(
        records, key=lambda r: (r["task"], r["cost"].get("fraction_of_retraining") or 0)
    ):
        task, cost = record["task"], record["cost"]
        retrain = cost.get("retraining_wall_time_s") or trained.get(f"{task}.oracle")
        wall = float(cost["wall_time_s"])
        fraction = wall / retrain if retrain else None
        applies = record["strategy"] in targets and record.get("variant") is None
        meets = None if not applies or fraction is None else bool(fraction <= TARGET_FRACTION)
        if applies and fraction is not None:
            worst[task] = max(worst.get(task, 0.0), fraction)
        result.add_row(
            f"{task}.{record['run']}",
            task=task,
            strategy=record["strategy"],
            family=record.get("family"),
            epochs=(record.get("unlearned") or {}).get("epochs"),
            retain_fraction=record.get("retain_fraction"),
            wall_time_s=wall,
            retrain_s=retrain,
            fraction=fraction,
            target=TARGET_FRACTION if applies else None,
            meets_target=meets,
        )
    for task in ("recon", "segmentation"):
        oracle = trained.get(f"{task}.oracle")
        if oracle is not None:
            result.notes.append(
                f"{task}: oracle retraining took {oracle:.1f} s (checkpoint metadata)."
            )
    result.summary = {f"worst_target_fraction_{task}": value for task, value in worst.items()}
    result.summary["meets_target"] = bool(worst) and all(
        value <= TARGET_FRACTION for value in worst.values()
    )
    result.notes.append(
        "Fractions depend on the budgets in the parameters: the oracle's training epochs "
        "(recon.training / segmentation.training) vs each strategy's epochs and retain fraction "
        "(unlearning.<task>.strategies); the studies' budgets are in conf/gpu."
    )
