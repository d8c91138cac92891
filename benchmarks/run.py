"""The benchmark command: ``python -m benchmarks.run [--only NAME[,NAME]] [--quick] [--out DIR]``.

Runs the benchmarks in order (or those named by ``--only``), writes ``<name>.json`` and
``<name>.md`` per benchmark plus ``summary.json`` / ``summary.md`` to
``data/08_reporting/benchmarks/`` or ``--out``. The summary lists this command's results and,
for benchmarks it did not run, the latest ones already in the folder (marked as earlier), so
re-running one benchmark keeps a complete table. Every result carries the machine report.

``--quick`` uses tiny sizes and one round (seconds to a minute; what the test runs): its
figures check that the machinery works and are not representative. Without it the
benchmarks use the default study's sizes (``conf/base``) and several rounds (tens of
minutes on a 2-core CPU).

Exit status: 0 when every benchmark ran (items that are not available yet are rows, not
failures), 1 when a benchmark raised or an item failed with an error, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import (
    STATUS_ERROR,
    BenchContext,
    BenchmarkResult,
    format_value,
    write_result,
)
from benchmarks.machine import describe_machine, machine_report

__all__ = ["BENCHMARKS", "DEFAULT_OUT", "main", "run_benchmarks"]

logger = logging.getLogger("benchmarks")

PROJECT_PATH = Path(__file__).resolve().parents[1]

#: Where results go by default (Kedro's reporting layer of the project's data tree).
DEFAULT_OUT = PROJECT_PATH / "data" / "08_reporting" / "benchmarks"

#: Benchmark name -> module (in the order they run; ``e2e`` before ``unlearning`` so that the
#: unlearning cost can be read from the study run that ``e2e`` made).
BENCHMARKS: dict[str, str] = {
    "machine": "benchmarks.bench_machine",
    "overhead": "benchmarks.bench_overhead",
    "data_path": "benchmarks.bench_data_path",
    "e2e": "benchmarks.bench_e2e",
    "unlearning": "benchmarks.bench_unlearning",
    "memory": "benchmarks.bench_memory",
    "scaling": "benchmarks.bench_scaling",
}


def _parse_only(values: Sequence[str] | None) -> list[str]:
    if not values:
        return list(BENCHMARKS)
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        raise ValueError(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    return [name for name in BENCHMARKS if name in names]


def _failed_result(name: str, error: BaseException) -> BenchmarkResult:
    result = BenchmarkResult(name=name, title=name, measures="(the benchmark raised)")
    message = " ".join(f"{type(error).__name__}: {error}".split())[:400]
    result.unavailable(name, message, status=STATUS_ERROR)
    return result


def run_benchmarks(
    names: Sequence[str], *, quick: bool, out_dir: Path, work_dir: Path, seed: int = 0
) -> list[dict]:
    """Run ``names`` in order; write each result and the summary; return the JSON documents."""
    machine = machine_report(PROJECT_PATH)
    ctx = BenchContext(
        quick=quick,
        out_dir=out_dir,
        work_dir=work_dir,
        project_path=PROJECT_PATH,
        machine=machine,
        seed=seed,
    )
    documents = []
    for name in names:
        logger.info("=== benchmark %s (%s) ===", name, "quick" if quick else "full")
        start = time.perf_counter()
        try:
            module = importlib.import_module(BENCHMARKS[name])
            result = module.run(ctx)
        except Exception as error:  # noqa: BLE001 - one benchmark must not stop the others
            logger.error("benchmark %s raised:\n%s", name, traceback.format_exc())
            result = _failed_result(name, error)
        wall = time.perf_counter() - start
        result.settings.setdefault("load_average_at_end", _load_average())
        json_path, md_path = write_result(result, out_dir, machine, quick=quick, wall_time_s=wall)
        logger.info(
            "benchmark %s: %s in %.1fs -> %s, %s", name, result.status, wall, json_path, md_path
        )
        documents.append(result.to_dict(machine, quick=quick, wall_time_s=wall))
    _write_summary(documents, machine, out_dir, quick)
    return documents


def _load_average() -> list[float] | None:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _with_earlier_results(documents: list[dict], out_dir: Path) -> list[dict]:
    """This command's documents plus, for benchmarks it did not run, the ones already in
    ``out_dir`` (so running one benchmark keeps a complete summary), in benchmark order."""
    current = {document["benchmark"]: document for document in documents}
    merged = []
    for name in BENCHMARKS:
        if name in current:
            merged.append(current[name])
            continue
        path = out_dir / f"{name}.json"
        if path.is_file():
            try:
                merged.append({**json.loads(path.read_text(encoding="utf-8")), "earlier": True})
            except (OSError, ValueError):
                logger.warning("ignoring unreadable earlier result %s", path)
    return merged


def _write_summary(documents: list[dict], machine: dict, out_dir: Path, quick: bool) -> None:
    documents = _with_earlier_results(documents, out_dir)
    summary = {
        "quick": quick,
        "machine": machine,
        "benchmarks": {
            document["benchmark"]: {
                "title": document["title"],
                "status": document["status"],
                "target": document["target"],
                "summary": document["summary"],
                "wall_time_s": document["wall_time_s"],
                "quick": document.get("quick"),
                "created_at": document.get("created_at"),
                "from_earlier_command": bool(document.get("earlier")),
                "files": [f"{document['benchmark']}.json", f"{document['benchmark']}.md"],
            }
            for document in documents
        },
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    lines = [
        "# Benchmarks",
        "",
        f"*Machine:* {describe_machine(machine)}.",
        f"*Mode:* {'quick (tiny sizes, not representative)' if quick else 'full'}.",
        "",
        "| benchmark | status | target | result | time (s) | run at |",
        "|---|---|---|---|---|---|",
    ]
    for document in documents:
        headline = ", ".join(f"{k} = {format_value(v)}" for k, v in document["summary"].items())
        when = document.get("created_at", "")
        if document.get("earlier"):
            when += " (earlier command" + (", quick" if document.get("quick") else "") + ")"
        lines.append(
            f"| [{document['title']}]({document['benchmark']}.md) | {document['status']} | "
            f"{document['target'] or ''} | {headline} | {document['wall_time_s']:.1f} | {when} |"
        )
    (out_dir / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--only", action="append", metavar="NAME[,NAME]", help=f"subset of {list(BENCHMARKS)}"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round (smoke check)")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of generated data and training")
    parser.add_argument("--keep", action="store_true", help="keep the scratch data trees (printed)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads here and in child processes (default: torch's choice)",
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, module in BENCHMARKS.items():
            print(f"{name:12s} {importlib.import_module(module).TITLE}")
        return 0
    try:
        names = _parse_only(args.only)
    except ValueError as error:
        parser.error(str(error))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("MPLBACKEND", "Agg")
    if args.threads:
        # Children (kedro run, memory probes) read these when torch starts.
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)
        import torch

        torch.set_num_threads(args.threads)
    out_dir = args.out.resolve()
    work_dir = Path(tempfile.mkdtemp(prefix="med_unlearning_bench_"))
    try:
        documents = run_benchmarks(
            names, quick=args.quick, out_dir=out_dir, work_dir=work_dir, seed=args.seed
        )
    finally:
        if args.keep:
            print(f"scratch data kept in {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
    print((out_dir / "summary.md").read_text(encoding="utf-8"))
    failed = [d["benchmark"] for d in documents if STATUS_ERROR in d["status"]]
    if failed:
        print(f"benchmarks with errors: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
