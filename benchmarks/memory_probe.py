"""Child process of the memory benchmark: run one Kedro selection, report its memory.

``python -m benchmarks.memory_probe '<json spec>'`` creates a KedroSession (env, data root,
runtime overrides from the spec), records the resident set size before running, runs the
selected nodes of the ``__default__`` pipeline, and prints one line
``MEMORY_PROBE {json}`` with:

- ``rss_before_mb``: RSS after imports and session set-up, before any node ran;
- ``peak_rss_mb``: the process's peak RSS (Linux ``VmHWM``; see
  :func:`benchmarks.common.peak_rss_mb`), which covers the run because a fresh process
  measures one thing only;
- ``cuda_peak_mb``: ``torch.cuda.max_memory_allocated`` (``null`` without CUDA);
- ``wall_time_s``: the run's wall time.

Spec keys: ``project_path``, ``env``, ``data_root``, ``node_names`` (list), ``to_nodes``
(list or null), ``extra_params`` (dict).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import current_rss_mb, peak_rss_mb

__all__ = ["PREFIX", "main", "probe"]

#: Marks the result line in the child's output.
PREFIX = "MEMORY_PROBE "


def probe(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the selection of ``spec`` in this process and measure it."""
    import torch

    from benchmarks.kedro_tools import kedro_session

    with kedro_session(
        Path(spec["project_path"]), spec["env"], Path(spec["data_root"]), spec.get("extra_params")
    ) as session:
        session.load_context()
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        before = current_rss_mb()
        start = time.perf_counter()
        session.run(
            pipeline_names=["__default__"],
            node_names=spec.get("node_names") or None,
            to_nodes=spec.get("to_nodes") or None,
        )
        wall = time.perf_counter() - start
    return {
        "rss_before_mb": before,
        "peak_rss_mb": peak_rss_mb(),
        "cuda_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "wall_time_s": wall,
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point: one JSON spec argument; prints the ``MEMORY_PROBE`` line."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m benchmarks.memory_probe '<json spec>'", file=sys.stderr)
        return 2
    measured = probe(json.loads(args[0]))
    print(PREFIX + json.dumps(measured), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
