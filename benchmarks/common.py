"""What every benchmark shares: the result record, its JSON/Markdown files, paired timing.

A benchmark returns a :class:`BenchmarkResult`: a table (``columns`` + ``rows``), a headline
``summary`` (the ratio against its target, pass/fail), notes and the settings it ran with.
:func:`write_result` writes ``<name>.json`` and ``<name>.md`` with the machine report.

Timings on a busy machine drift; ratios measured *in one run* hold better. So benchmarks
measure the two sides of a ratio in alternation (:func:`interleaved`: A, B, A, B, ...) and
report the median of the per-round ratios (:func:`paired_ratio`), not a ratio of totals
taken minutes apart.

Items that cannot be measured yet (a pipeline that does not exist, a module still being
written) become a row with status ``not available yet`` and the reason, instead of failing
the whole command (:func:`guarded`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import resource
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from benchmarks.machine import describe_machine

__all__ = [
    "STATUS_ERROR",
    "STATUS_OK",
    "STATUS_SKIPPED",
    "STATUS_UNAVAILABLE",
    "BenchContext",
    "BenchmarkResult",
    "NotAvailableYet",
    "current_rss_mb",
    "fit_line",
    "format_value",
    "guarded",
    "interleaved",
    "markdown_table",
    "median",
    "paired_ratio",
    "peak_rss_mb",
    "timed",
    "write_result",
]

logger = logging.getLogger(__name__)

STATUS_OK = "ok"
STATUS_UNAVAILABLE = "not available yet"
STATUS_SKIPPED = "skipped"
STATUS_ERROR = "error"

T = TypeVar("T")


class NotAvailableYet(RuntimeError):
    """Something a benchmark measures does not exist yet (pipeline, module, strategy)."""


@dataclass
class BenchContext:
    """Settings and scratch space shared by the benchmarks of one command.

    Attributes:
        quick: tiny sizes and single repeats (for the test and a smoke check).
        out_dir: where ``<name>.json`` / ``<name>.md`` go.
        work_dir: scratch folder (data trees of the runs); removed after the command
            unless ``--keep``.
        project_path: the Kedro project root.
        machine: the machine report (:func:`benchmarks.machine.machine_report`).
        seed: seed of generated data and training.
        cache: artifacts benchmarks share within one command (e.g. a study run's data tree).
    """

    quick: bool
    out_dir: Path
    work_dir: Path
    project_path: Path
    machine: dict[str, Any]
    seed: int = 0
    cache: dict[str, Any] = field(default_factory=dict)

    def scratch(self, name: str) -> Path:
        """A fresh folder ``work_dir/<name>`` (suffixed when it already exists)."""
        path = self.work_dir / name
        suffix = 1
        while path.exists():
            suffix += 1
            path = self.work_dir / f"{name}_{suffix}"
        path.mkdir(parents=True)
        return path

    def size(self, quick: T, full: T) -> T:
        """``quick`` in quick mode, else ``full``."""
        return quick if self.quick else full


@dataclass
class BenchmarkResult:
    """One benchmark's table and headline.

    Attributes:
        name: file stem and ``--only`` name (``overhead``, ``data_path``...).
        title: the table's heading.
        measures: what is measured and how, one paragraph.
        target: the target in words (``None`` when the benchmark has none).
        columns: the table's columns, in order (rows may omit some).
        rows: one dict per measured item; every row has ``item`` and ``status``.
        summary: headline figures (e.g. ``{"ratio": 0.97, "meets_target": True}``).
        notes: caveats and observations, one sentence each.
        settings: sizes, repeats and configuration the benchmark ran with.
    """

    name: str
    title: str
    measures: str
    target: str | None = None
    columns: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def add_row(self, item: str, status: str = STATUS_OK, **values: Any) -> dict[str, Any]:
        """Append a row (``item``, the values, ``status``) and return it."""
        row = {"item": item, **values, "status": status}
        self.rows.append(row)
        return row

    def unavailable(self, item: str, reason: str, status: str = STATUS_UNAVAILABLE) -> None:
        """Append a row saying ``item`` could not be measured, and why."""
        self.add_row(item, status=status, note=reason)

    @property
    def status(self) -> str:
        """``ok`` when every row is ok or skipped; else the worst row status."""
        statuses = {row.get("status", STATUS_OK) for row in self.rows}
        for status in (STATUS_ERROR, STATUS_UNAVAILABLE):
            if status in statuses:
                return status if statuses <= {status, STATUS_SKIPPED} else f"partial ({status})"
        if statuses and statuses <= {STATUS_SKIPPED}:
            return STATUS_SKIPPED
        return STATUS_OK

    def all_columns(self) -> list[str]:
        """``columns`` plus any other key found in the rows (``item`` first, ``status`` and
        ``note`` last)."""
        names = ["item", *[name for name in self.columns if name not in ("item", "status", "note")]]
        for row in self.rows:
            for key in row:
                if key not in names and key not in ("status", "note"):
                    names.append(key)
        return [*names, "status", "note"]

    def to_dict(
        self, machine: Mapping[str, Any], *, quick: bool, wall_time_s: float
    ) -> dict[str, Any]:
        """The JSON document of this result."""
        return {
            "benchmark": self.name,
            "title": self.title,
            "measures": self.measures,
            "target": self.target,
            "status": self.status,
            "summary": _jsonable(self.summary),
            "columns": self.all_columns(),
            "rows": _jsonable(self.rows),
            "notes": list(self.notes),
            "settings": _jsonable(self.settings),
            "quick": quick,
            "wall_time_s": round(wall_time_s, 3),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": dict(machine),
        }

    def to_markdown(self, machine: Mapping[str, Any], *, quick: bool) -> str:
        """The Markdown section of this result (heading, what, target, table, notes, machine)."""
        lines = [f"## {self.title}", "", self.measures, ""]
        if self.target:
            lines += [f"**Target:** {self.target}", ""]
        if self.summary:
            headline = ", ".join(
                f"{key} = {format_value(value)}" for key, value in self.summary.items()
            )
            lines += [f"**Result:** {headline}", ""]
        lines += [markdown_table(self.rows, self.all_columns()), ""]
        for note in self.notes:
            lines.append(f"- {note}")
        if self.notes:
            lines.append("")
        mode = "quick (tiny sizes, not representative)" if quick else "full"
        lines += [f"*Machine:* {describe_machine(dict(machine))}. *Mode:* {mode}.", ""]
        return "\n".join(lines)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def format_value(value: Any) -> str:
    """A table cell: 4 significant digits for floats, ``yes``/``no`` for booleans."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3e}"
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A GitHub Markdown table of ``rows`` (missing cells are empty)."""
    if not rows:
        return "_(no rows)_"
    used = [name for name in columns if any(row.get(name) not in (None, "") for row in rows)]
    header = "| " + " | ".join(used) + " |"
    rule = "|" + "|".join("---" for _ in used) + "|"
    body = ["| " + " | ".join(format_value(row.get(name)) for name in used) + " |" for row in rows]
    return "\n".join([header, rule, *body])


def write_result(
    result: BenchmarkResult,
    out_dir: Path,
    machine: Mapping[str, Any],
    *,
    quick: bool,
    wall_time_s: float,
) -> tuple[Path, Path]:
    """Write ``<out_dir>/<name>.json`` and ``<out_dir>/<name>.md``.

    Returns:
        The two paths.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{result.name}.json"
    md_path = out_dir / f"{result.name}.md"
    document = result.to_dict(machine, quick=quick, wall_time_s=wall_time_s)
    _atomic_write(json_path, json.dumps(document, indent=2, sort_keys=False) + "\n")
    _atomic_write(md_path, result.to_markdown(machine, quick=quick))
    return json_path, md_path


def _atomic_write(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


@contextmanager
def guarded(result: BenchmarkResult, item: str) -> Iterator[None]:
    """Run a block measuring ``item``; a failure becomes a row instead of an exception.

    ``NotAvailableYet``, ``ImportError`` and a Kedro pipeline/dataset that does not exist give a
    ``not available yet`` row; anything else an ``error`` row naming the exception (with
    the traceback in the log).
    """
    try:
        yield
    except (NotAvailableYet, ImportError) as error:
        logger.warning("%s / %s: not available yet: %s", result.name, item, error)
        result.unavailable(item, f"{type(error).__name__}: {error}")
    except Exception as error:  # noqa: BLE001 - a benchmark item must not stop the command
        logger.error("%s / %s failed:\n%s", result.name, item, traceback.format_exc())
        status = STATUS_UNAVAILABLE if _looks_missing(error) else STATUS_ERROR
        message = " ".join(f"{type(error).__name__}: {error}".split())
        result.unavailable(item, message[:400], status=status)


def _looks_missing(error: BaseException) -> bool:
    """Errors that mean "not built yet" (a pipeline not registered, an empty pipeline)."""
    text = str(error)
    return any(
        marker in text
        for marker in (
            "Study pipelines not found",
            "Failed to find the pipeline named",
            "not found in the DataCatalog",
            "Pipeline contains no nodes",
        )
    )


def timed(function: Callable[[], T]) -> tuple[T, float]:
    """Call ``function`` and return ``(its result, wall seconds)``."""
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def interleaved(measures: Mapping[str, Callable[[], T]], repeats: int) -> dict[str, list[T]]:
    """Call each measure once per round, in turn, for ``repeats`` rounds.

    Alternating the sides of a comparison (A, B, A, B, ...) exposes both to the same drift of
    a busy machine, so their ratio holds better than two back-to-back batches.

    Returns:
        ``{name: [value of round 1, round 2, ...]}``.
    """
    values: dict[str, list[T]] = {name: [] for name in measures}
    for round_index in range(repeats):
        order = list(measures) if round_index % 2 == 0 else list(reversed(list(measures)))
        for name in order:
            values[name].append(measures[name]())
    return values


def median(values: Sequence[float]) -> float:
    """The median of the finite values (NaN when there are none)."""
    finite = [float(value) for value in values if value is not None and math.isfinite(value)]
    return statistics.median(finite) if finite else float("nan")


def paired_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """The median over rounds of ``numerator / denominator`` (pairs measured together)."""
    ratios = [
        n / d for n, d in zip(numerators, denominators, strict=True) if d and math.isfinite(n / d)
    ]
    return median(ratios)


def fit_line(x: Sequence[float], y: Sequence[float]) -> dict[str, float]:
    """Least-squares ``y = intercept + slope * x`` with its coefficient of determination.

    Returns:
        ``slope``, ``intercept`` and ``r2`` (1 = the points lie on the line).
    """
    import numpy as np

    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(xs) < 2 or np.ptp(xs) == 0:
        return {"slope": float("nan"), "intercept": float("nan"), "r2": float("nan")}
    slope, intercept = np.polyfit(xs, ys, 1)
    predicted = intercept + slope * xs
    total = float(np.sum((ys - ys.mean()) ** 2))
    r2 = 1.0 - float(np.sum((ys - predicted) ** 2)) / total if total > 0 else 1.0
    return {"slope": float(slope), "intercept": float(intercept), "r2": r2}


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB.

    Linux: ``VmHWM`` of ``/proc/self/status``, the high-water mark of this program's own
    memory. Not ``getrusage``'s ``ru_maxrss``: it survives ``exec``, so a child started by a
    large Python process would report its parent's size. Elsewhere ``ru_maxrss``.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**10
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def current_rss_mb() -> float:
    """This process's resident set size now, in MiB (psutil, else ``/proc/self/statm``)."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        pass
    statm = Path("/proc/self/statm")
    if statm.is_file():
        pages = int(statm.read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    return peak_rss_mb()
