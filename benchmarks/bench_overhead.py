"""Benchmark 1 — pipeline overhead: the project's training loop inside ``kedro run`` vs a
bare PyTorch loop on the same model, data and batch size.

Each round trains the reconstruction ``original`` model twice: once as the Kedro node
``recon.original.train_model`` (a ``KedroSession`` run, data tree in a temp dir; its
throughput is read from the history CSV the run writes: ``items`` / ``epoch_time_s``), once
with :func:`benchmarks.recon_tools.bare_recon_training` on the same volumes, split, network,
optimiser, batch size and per-epoch validation. Rounds alternate the two sides; the ratio is
the median of the per-round ratios of the per-epoch median throughputs (the first epoch,
which warms up caches and kernels, is left out when there are several).
"""

from __future__ import annotations

import logging
from typing import Any

from benchmarks.common import BenchContext, BenchmarkResult, guarded, median, paired_ratio
from benchmarks.data import FASTMRI_DIR, write_fastmri_sample
from benchmarks.kedro_tools import (
    catalog_load,
    find_node,
    project_params,
    run_session,
    typed_section,
)
from benchmarks.recon_tools import bare_recon_training, load_raw_volumes, recon_setup

__all__ = ["NAME", "TITLE", "run"]

logger = logging.getLogger(__name__)

NAME = "overhead"
TITLE = "1. Pipeline overhead: training loop inside kedro run vs bare PyTorch"
TARGET_RATIO = 0.95

_TRAIN_NODE_PREFIX = "recon.original.train"


def _steady_throughput(items: list[float], seconds: list[float]) -> float:
    """Median items/s over the epochs, without the first when there are several."""
    pairs = list(zip(items, seconds, strict=True))
    if len(pairs) > 1:
        pairs = pairs[1:]
    return median([n / t for n, t in pairs if t > 0])


def _sample_params(params: dict[str, Any], max_brain_volumes: int | None) -> Any:
    """The env's ``sample_data.fastmri`` (conf/test: tiny; conf/base: the default study's
    image size, coils and slices), with at most ``max_brain_volumes`` brain volumes."""
    from med_unlearning.params.sample_data import SampleDataParams

    fastmri = typed_section(params, "sample_data", SampleDataParams).fastmri
    if max_brain_volumes is None or fastmri.brain.num_volumes <= max_brain_volumes:
        return fastmri
    brain = fastmri.brain.model_copy(update={"num_volumes": max_brain_volumes})
    return fastmri.model_copy(update={"brain": brain})


def run(ctx: BenchContext) -> BenchmarkResult:
    """Measure the throughput ratio (kedro run / bare loop) of recon training."""
    env = ctx.size("test", "base")
    epochs = 2  # the second epoch is timed; the first warms up
    rounds = ctx.size(1, 2)
    result = BenchmarkResult(
        name=NAME,
        title=TITLE,
        measures=(
            "Training throughput (slices/s) of the reconstruction `original` model: the project's "
            "loop run as the Kedro training node of `recon.original` (KedroSession, throughput "
            "from the history CSV) vs a bare PyTorch loop (shuffle, forward + loss, backward, "
            "clip, step) on the same volumes, split, network, optimiser, batch size and per-epoch "
            "validation. "
            "Rounds alternate the two sides; ratio = median of per-round ratios."
        ),
        target=f"kedro / bare throughput >= {TARGET_RATIO}",
        columns=["item", "slices_per_s", "epoch_time_s", "epochs", "rounds"],
        settings={"env": env, "epochs": epochs, "rounds": rounds, "task": "recon"},
    )
    data_root = ctx.scratch("overhead")
    overrides = {"recon": {"training": {"epochs": epochs}}, "runtime": {"progress": False}}
    with guarded(result, "kedro run: recon.original training node"):
        from med_unlearning.params.recon import ReconParams
        from med_unlearning.params.runtime import RuntimeParams

        params = project_params(ctx.project_path, env, data_root, overrides)
        recon = typed_section(params, "recon", ReconParams)
        runtime = typed_section(params, "runtime", RuntimeParams)
        # Full mode: the default study's volumes, but 12 brain volumes instead of 26 (about
        # 64 training slices) so that a round takes minutes on 2 cores; both sides see the
        # same data, which is all the ratio needs.
        sample = _sample_params(params, ctx.size(None, 12))
        write_fastmri_sample(data_root / FASTMRI_DIR, sample, ctx.seed)
        result.settings["data"] = {
            "brain_volumes": sample.brain.num_volumes,
            "knee_volumes": sample.knee.num_volumes,
            "slices": sample.brain.num_slices,
            "image_size": list(sample.image_size),
            "coils": sample.num_coils,
        }
        train_node = find_node(ctx.project_path, "recon", _TRAIN_NODE_PREFIX)
        volumes = load_raw_volumes(data_root / FASTMRI_DIR)
        split_ids: dict[str, list[str]] = {}

        def kedro_round() -> dict[str, float]:
            # Upstream nodes (metadata table, split) run too: they are cheap and counted
            # outside the loop.
            session_time = run_session(
                ctx.project_path,
                env,
                data_root,
                ["recon"],
                to_nodes=[train_node],
                extra_params=overrides,
            )
            loaded = catalog_load(
                ctx.project_path,
                env,
                data_root,
                ["recon.splits", "recon.original.history"],
                overrides,
            )
            history = loaded["recon.original.history"]
            if not split_ids:
                splits = loaded["recon.splits"]
                roles = recon.runs["original"].train_roles
                split_ids["train"] = sorted(
                    splits.loc[splits["role"].isin(roles), "volume_id"].astype(str)
                )
                split_ids["val"] = sorted(
                    splits.loc[splits["role"] == "retain_val", "volume_id"].astype(str)
                )
            return {
                "throughput": _steady_throughput(
                    list(history["items"]), list(history["epoch_time_s"])
                ),
                "epoch_time_s": median(
                    list(history["epoch_time_s"])[1:] or list(history["epoch_time_s"])
                ),
                "loop_time_s": float(history["epoch_time_s"].sum()),
                "session_time_s": session_time,
            }

        def bare_round() -> dict[str, float]:
            setup = recon_setup(volumes, split_ids["train"], split_ids["val"], recon, runtime)
            epochs_run = bare_recon_training(setup, epochs, seed=runtime.seed)
            times = [epoch.epoch_time_s for epoch in epochs_run]
            return {
                "throughput": _steady_throughput([e.items for e in epochs_run], times),
                "epoch_time_s": median(times[1:] or times),
            }

        kedro_values: list[dict[str, float]] = []
        bare_values: list[dict[str, float]] = []
        for round_index in range(rounds):
            order = (kedro_round, bare_round) if round_index % 2 == 0 else (bare_round, kedro_round)
            for measure in order:
                (kedro_values if measure is kedro_round else bare_values).append(measure())
        ratio = paired_ratio(
            [value["throughput"] for value in kedro_values],
            [value["throughput"] for value in bare_values],
        )
        _add_rows(result, kedro_values, bare_values, ratio, epochs, rounds)
    return result


def _add_rows(
    result: BenchmarkResult,
    kedro_values: list[dict[str, float]],
    bare_values: list[dict[str, float]],
    ratio: float,
    epochs: int,
    rounds: int,
) -> None:
    kedro_throughput = median([value["throughput"] for value in kedro_values])
    bare_throughput = median([value["throughput"] for value in bare_values])
    result.add_row(
        "kedro run: recon.original training node",
        slices_per_s=kedro_throughput,
        epoch_time_s=median([value["epoch_time_s"] for value in kedro_values]),
        epochs=epochs,
        rounds=rounds,
    )
    result.add_row(
        "bare PyTorch loop",
        slices_per_s=bare_throughput,
        epoch_time_s=median([value["epoch_time_s"] for value in bare_values]),
        epochs=epochs,
        rounds=rounds,
    )
    meets = bool(ratio >= TARGET_RATIO)
    result.add_row("throughput ratio kedro / bare", ratio=ratio, meets_target=meets)
    outside = median(
        [1.0 - value["loop_time_s"] / value["session_time_s"] for value in kedro_values]
    )
    result.add_row(
        "share of session.run outside the training loop",
        ratio=outside,
        note="loading volume headers, caching, checkpoint + history saving, the reconstruct node",
    )
    result.summary = {"ratio": ratio, "meets_target": meets, "target": TARGET_RATIO}
    result.notes.append(
        "Both sides include the recon training's per-epoch validation pass, because the loop's "
        "history times whole epochs."
    )
