"""Benchmark 0 — the machine report on its own (CPU, cores, RAM, GPU, library versions)."""

from __future__ import annotations

from benchmarks.common import BenchContext, BenchmarkResult

__all__ = ["NAME", "TITLE", "run"]

NAME = "machine"
TITLE = "0. Machine"


def run(ctx: BenchContext) -> BenchmarkResult:
    """Tabulate the machine report every other result also carries."""
    machine = ctx.machine
    gpu = machine.get("gpu", {})
    devices = gpu.get("devices") or []
    result = BenchmarkResult(
        name=NAME,
        title=TITLE,
        measures="The machine the figures of this run come from (also embedded in every result).",
        columns=["item", "value"],
    )
    rows = {
        "CPU": machine.get("cpu_model"),
        "cores (usable / logical / physical)": " / ".join(
            str(machine.get(key)) for key in ("usable_cores", "logical_cores", "physical_cores")
        ),
        "RAM (GiB)": machine.get("memory_gb"),
        "GPU": ", ".join(
            f"{d['name']} ({d['memory_gb']} GiB, sm {d['capability']})" for d in devices
        )
        or "none",
        "CUDA / cuDNN": f"{gpu.get('cuda_version')} / {gpu.get('cudnn_version')}",
        "torch threads": machine.get("torch_threads"),
        "OS": machine.get("os"),
        "Python": machine.get("python"),
        "load average (1/5/15 min)": machine.get("load_average"),
        "git commit": machine.get("git_commit"),
    }
    rows.update({name: version for name, version in machine.get("versions", {}).items()})
    for item, value in rows.items():
        result.add_row(item, value=str(value))
    result.summary = {
        "cpu": machine.get("cpu_model"),
        "cores": machine.get("usable_cores"),
        "gpu": bool(devices),
    }
    return result
