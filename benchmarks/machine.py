"""The machine a benchmark ran on: CPU, cores, memory, GPU, library versions, load.

Every benchmark result carries this report, so a figure is never quoted without the machine
it came from. Nothing here needs a GPU or psutil; both are used when present.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["cpu_model", "describe_machine", "gpu_report", "machine_report", "total_memory_gb"]

#: Libraries whose versions matter for speed and are reported with every result.
_LIBRARIES = ("torch", "kedro", "monai", "numpy", "h5py", "nibabel", "pandas")


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo`` on Linux, else ``platform``)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "processor\t: arm")):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def _usable_cores() -> int:
    """Cores this process may run on (the affinity mask; ``os.cpu_count()`` elsewhere)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _physical_cores() -> int | None:
    try:
        import psutil
    except ImportError:
        return None
    return psutil.cpu_count(logical=False)


def total_memory_gb() -> float | None:
    """Installed RAM in GiB (psutil, else ``/proc/meminfo``; ``None`` when unknown)."""
    try:
        import psutil

        return round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    return None


def gpu_report() -> dict[str, Any]:
    """CUDA availability, devices, CUDA/cuDNN versions and bf16 support (torch's view)."""
    import torch

    report: dict[str, Any] = {
        "cuda_available": torch.cuda.is_available(),
        "cuda_version": torch.version.cuda,
        "cudnn_version": torch.backends.cudnn.version()
        if torch.backends.cudnn.is_available()
        else None,
        "devices": [],
    }
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            properties = torch.cuda.get_device_properties(index)
            report["devices"].append(
                {
                    "name": properties.name,
                    "memory_gb": round(properties.total_memory / 2**30, 1),
                    "capability": f"{properties.major}.{properties.minor}",
                }
            )
        report["bf16_supported"] = torch.cuda.is_bf16_supported()
    return report


def _git_commit(project_path: Path) -> str | None:
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=project_path,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout.strip() or None


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def machine_report(project_path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Describe this machine for a benchmark result.

    Args:
        project_path: the repository whose commit is reported (default: this file's repo).

    Returns:
        A JSON-ready dict: ``cpu_model``, ``logical_cores``, ``usable_cores``,
        ``physical_cores``, ``memory_gb``, ``os``, ``python``, ``torch_threads``, ``gpu``
        (see :func:`gpu_report`), ``versions``, ``load_average`` (1/5/15 min, a hint of how
        busy the machine was) and ``git_commit``.
    """
    import torch

    project = Path(project_path) if project_path else Path(__file__).resolve().parents[1]
    try:
        load = [round(value, 2) for value in os.getloadavg()]
    except (AttributeError, OSError):
        load = None
    return {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": _usable_cores(),
        "physical_cores": _physical_cores(),
        "memory_gb": total_memory_gb(),
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "python": sys.version.split()[0],
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu_report(),
        "versions": _versions(),
        "load_average": load,
        "git_commit": _git_commit(project),
    }


def describe_machine(report: dict[str, Any]) -> str:
    """One line for tables: ``<CPU>, <n> cores, <RAM> GiB, <GPU or no GPU>, torch <v>``."""
    gpu = report.get("gpu", {})
    devices = gpu.get("devices") or []
    gpu_text = (
        f"{len(devices)}x {devices[0]['name']} (CUDA {gpu.get('cuda_version')})"
        if devices
        else "no GPU"
    )
    versions = report.get("versions", {})
    return (
        f"{report.get('cpu_model')}, {report.get('usable_cores')} usable cores "
        f"({report.get('logical_cores')} logical), {report.get('memory_gb')} GiB RAM, {gpu_text}, "
        f"torch {versions.get('torch')} ({report.get('torch_threads')} threads), "
        f"Python {report.get('python')}, load {report.get('load_average')}"
    )
