"""Plots from the summary table: the forgetting-vs-keeping trade-off and the sweeps.

- :func:`tradeoff_scatter` — forget metric vs retain metric per method with 95 % CI bars,
  oracle and original marked, labels spread so they never overlap, sweeps as lines;
- :func:`retain_fraction_curves` — metric vs retain fraction (log scale, 1…100%) per strategy;
- :func:`epoch_horizon_bars` — grouped bars per strategy for each epoch horizon (20 vs 50).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from med_unlearning.metrics.methods import method_base, order_methods
from med_unlearning.metrics.results_table import validate_summary
from med_unlearning.metrics.statistics import is_seed_repeat
from med_unlearning.reporting.figures.canvas import Ref, new_figure, note, note_figure
from med_unlearning.reporting.formatting import format_value, metric_label, set_label

__all__ = ["epoch_horizon_bars", "retain_fraction_curves", "tradeoff_scatter"]

_PERCENT_TICKS = (1, 5, 10, 20, 50, 100)



def _task_rows(summary: pd.DataFrame, task: str) -> pd.DataFrame:
    """The validated summary's rows of ``task``."""
    summary = validate_summary(summary)
    return summary.loc[summary["task"] == task]


def _labelled_runs(
    task_rows: pd.DataFrame,
    label: str,
    references: tuple[str, str],
    methods: Sequence[str] | None,
) -> pd.DataFrame:
    """The runs with a finite ``label`` (retain fraction, epochs), without the reference
    models, restricted to ``methods``' strategies when given; column ``base`` = the strategy
    of each run."""
    runs = task_rows.loc[np.isfinite(task_rows[label])].copy()
    runs["base"] = runs["method"].map(method_base)
    runs = runs.loc[~runs["method"].isin(list(references))]
    if methods:
        runs = runs.loc[runs["base"].isin(list(methods))]
    return runs

def _method_colours(methods: Sequence[str]) -> dict[str, Any]:
    bases = list(dict.fromkeys(method_base(method) for method in methods))
    palette = matplotlib.colormaps["tab10" if len(bases) <= 10 else "tab20"]
    return {base: palette(position % palette.N) for position, base in enumerate(bases)}


def _axis_label(ref: Ref) -> str:
    set_name, metric = ref
    return f"{set_label(set_name)} {metric_label(metric)}"


def tradeoff_scatter(
    summary: pd.DataFrame,
    pairs: Mapping[str, tuple[Ref, Ref]],
    *,
    original: str = "original",
    oracle: str = "oracle",
    method_order: Sequence[str] = (),
    include_sweeps: bool = False,
    hidden: Sequence[str] = (),
    panel_inches: float = 3.5,
    title: str = "Forgetting vs keeping",
) -> Figure:
    """Per task, each method's forget metric (x) against its retain metric (y), with 95 %
    bootstrap intervals as error bars (± std when the summary has no intervals).

    Readable at a glance: the oracle is a star with dashed lines through it (the target), the
    original a square; each main method is a circle whose name sits in a column right of the
    panel, spread so that no two labels overlap, with a thin leader line to its point. Sweep
    variants (``ft@r10`` …; seed repeats are left out, their pooled method is drawn) are
    lines in their strategy's colour through the sweep points, labelled in the legend.

    Args:
        summary: output of :func:`~med_unlearning.metrics.results_table.summarize`.
        pairs: per task ``((retain_set, retain_metric), (forget_set, forget_metric))``;
            one panel each, in this order.
        original: the original model's method name.
        oracle: the oracle's method name.
        method_order: display order of strategies (colours).
        include_sweeps: also draw the sweep variants as lines.
        hidden: methods not drawn (e.g. the attack's calibrator).
        panel_inches: size of one panel.
        title: the figure title.

    Returns:
        The figure, one axis per task (a panel note where a task has no data).
    """
    if not pairs:
        return note_figure("no tasks to plot", title)
    summary = validate_summary(summary)
    figure = new_figure((panel_inches + 1.3) * len(pairs) + 0.3, panel_inches + 0.6)
    axes = figure.subplots(1, len(pairs), squeeze=False)[0]
    for axis, (task, (retain_ref, forget_ref)) in zip(axes, pairs.items(), strict=True):
        axis.set_title(task, fontsize=10)
        points = _points(summary, task, retain_ref, forget_ref, include_sweeps)
        points = points.loc[[m for m in points.index if m not in set(hidden)
                             and not is_seed_repeat(m)]]  # fmt: skip
        if points.empty:
            note(axis, f"no {task} results for {_axis_label(forget_ref)} and "
                        f"{_axis_label(retain_ref)}")  # fmt: skip
            continue
        methods = order_methods(points.index, original=original, oracle=oracle,
                                method_order=method_order)  # fmt: skip
        colours = _method_colours([m for m in methods if m not in (original, oracle)])
        plain = {m for m in methods if "@" not in m}
        # sweep variants of a strategy drawn as a point too are lines; others are points
        main = [m for m in methods if "@" not in m or method_base(m) not in plain]
        for method in main:
            point = points.loc[method]
            if method == oracle:
                style = {"marker": "*", "s": 220, "color": "black", "zorder": 4}
                axis.axvline(point.forget, color="0.5", linestyle="--", linewidth=0.8)
                axis.axhline(point.retain, color="0.5", linestyle="--", linewidth=0.8)
            elif method == original:
                style = {"marker": "s", "s": 80, "color": "0.35", "zorder": 3}
            else:
                style = {"marker": "o", "s": 40, "color": colours[method_base(method)], "zorder": 3}
            axis.errorbar(point.forget, point.retain, xerr=_bar(point, "forget"),
                          yerr=_bar(point, "retain"), fmt="none", ecolor="0.6",
                          elinewidth=0.8, zorder=2)  # fmt: skip
            axis.scatter(point.forget, point.retain, label=method, **style)
        sweeps: dict[str, list[str]] = {}
        for method in methods:
            if method not in main:
                sweeps.setdefault(method_base(method), []).append(method)
        for base, variants in sweeps.items():
            line = points.loc[variants]
            axis.plot(line["forget"], line["retain"], marker=".", markersize=5, linewidth=1.0,
                      alpha=0.7, color=colours[base], zorder=1,
                      label=f"{base} sweep ({len(variants)})")  # fmt: skip
        axis.margins(0.08)
        axis.autoscale_view()
        _spread_labels(axis, [(m, points.loc[m, "forget"], points.loc[m, "retain"]) for m in main])
        if sweeps:
            axis.legend(handles=[h for h in axis.get_lines() if h.get_label().endswith(")")],
                        fontsize=6, loc="best", frameon=False)  # fmt: skip
        axis.set_xlabel(f"{_axis_label(forget_ref)} (toward the oracle ★)", fontsize=8)
        axis.set_ylabel(_axis_label(retain_ref), fontsize=8)
        axis.tick_params(labelsize=7)
        axis.grid(alpha=0.3)
    figure.suptitle(title + " (bars: 95 % CI over items)", fontsize=10)
    return figure


def _bar(point: pd.Series, name: str) -> Any:
    """Asymmetric error bar ``[[below], [above]]`` from the interval, else the std, else None."""
    low, high = point.get(f"{name}_low", np.nan), point.get(f"{name}_high", np.nan)
    value = point[name]
    if np.isfinite([low, high]).all():
        return np.array([[max(value - low, 0.0)], [max(high - value, 0.0)]])
    return _finite(point.get(f"{name}_std", np.nan))


def _spread_labels(axis: Any, labelled: Sequence[tuple[str, float, float]],
                   min_gap: float = 0.075) -> None:  # fmt: skip
    """Name each point in a column right of the axis, labels at least ``min_gap`` (axes
    fraction) apart and in the points' vertical order, each with a leader line."""
    if not labelled:
        return
    bottom, top = axis.get_ylim()
    span = top - bottom if top != bottom else 1.0
    ordered = sorted(labelled, key=lambda item: item[2])
    wanted = [(y - bottom) / span for _, _, y in ordered]
    gap = min(min_gap, 1.0 / max(len(ordered), 1))
    placed: list[float] = []
    for target in wanted:
        position = max(target, placed[-1] + gap) if placed else target
        placed.append(position)
    overflow = placed[-1] - 1.0
    if overflow > 0:  # shift down, keeping the gaps, then clamp the bottom
        placed = [p - overflow for p in placed]
        for index in range(len(placed)):
            floor = 0.0 if index == 0 else placed[index - 1] + gap
            placed[index] = max(placed[index], floor)
    for (name, x, y), position in zip(ordered, placed, strict=True):
        axis.annotate(name, xy=(x, y), xycoords="data", xytext=(1.03, position),
                      textcoords="axes fraction", fontsize=7, va="center", ha="left",
                      annotation_clip=False,
                      arrowprops={"arrowstyle": "-", "color": "0.6", "linewidth": 0.5,
                                  "shrinkA": 0, "shrinkB": 3})  # fmt: skip


def _error_bars(std: pd.Series) -> np.ndarray | None:
    """Standard deviations as error bars (0 where undefined); ``None`` when none is defined."""
    values = std.to_numpy(dtype=float)
    return np.nan_to_num(values, nan=0.0) if np.isfinite(values).any() else None


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _points(
    summary: pd.DataFrame, task: str, retain_ref: Ref, forget_ref: Ref, include_sweeps: bool
) -> pd.DataFrame:
    """``method → retain, retain_std, retain_low, retain_high, forget, …`` for methods with
    both numbers (intervals NaN when the summary has none)."""
    task_rows = summary.loc[summary["task"] == task]
    if not include_sweeps:
        sweep = task_rows["method"].str.contains("@") & np.isfinite(task_rows["retain_fraction"])
        task_rows = task_rows.loc[~sweep]

    def pick(ref: Ref, name: str) -> pd.DataFrame:
        rows = task_rows.loc[(task_rows["set"] == ref[0]) & (task_rows["metric"] == ref[1])]
        columns = {"mean": name, "std": f"{name}_std", "ci_low": f"{name}_low",
                   "ci_high": f"{name}_high"}  # fmt: skip
        present = [c for c in columns if c in rows.columns]
        frame = rows.set_index("method")[present].rename(columns=columns)
        for column in columns.values():
            if column not in frame.columns:
                frame[column] = np.nan
        return frame

    points = pick(retain_ref, "retain").join(pick(forget_ref, "forget"), how="inner")
    return points.loc[np.isfinite(points["retain"]) & np.isfinite(points["forget"])]


def _reference_lines(axis: Any, task_rows: pd.DataFrame, ref: Ref, original: str,
                     oracle: str) -> None:  # fmt: skip
    rows = task_rows.loc[(task_rows["set"] == ref[0]) & (task_rows["metric"] == ref[1])]
    for method, style in ((oracle, {"color": "black", "linestyle": "--"}),
                          (original, {"color": "0.5", "linestyle": ":"})):  # fmt: skip
        value = rows.loc[rows["method"] == method, "mean"]
        if not value.empty and np.isfinite(value.iloc[0]):
            axis.axhline(value.iloc[0], linewidth=1.0, label=f"{method} "
                         f"({format_value(value.iloc[0], ref[1])})", **style)  # fmt: skip


def retain_fraction_curves(
    summary: pd.DataFrame,
    task: str,
    refs: Sequence[Ref],
    *,
    methods: Sequence[str] = (),
    original: str = "original",
    oracle: str = "oracle",
    method_order: Sequence[str] = (),
    panel_inches: float = 3.5,
    title: str | None = None,
) -> Figure:
    """Metric vs retain fraction (log x, 1…100%) per strategy, one panel per ``(set, metric)``.

    Points are the methods of ``task`` with a ``retain_fraction`` (e.g. ``ft@1%`` …
    ``ft@100%``), grouped by strategy base name; several methods of one strategy at the same
    fraction are averaged. The oracle and the original are horizontal reference lines.

    Args:
        summary: output of :func:`~med_unlearning.metrics.results_table.summarize`.
        task: the task to plot.
        refs: ``(set, metric)`` per panel, e.g. retain test SSIM and forget train SSIM.
        methods: strategy base names to draw (default: all with a retain fraction).
        original: the original model's method name.
        oracle: the oracle's method name.
        method_order: display order of strategies.
        panel_inches: size of one panel.
        title: the figure title.

    Returns:
        The figure, one axis per ref; a one-panel note when no method of the task has a
        retain fraction.
    """
    title = title or f"{task}: retain-data fraction sweep"
    task_rows = _task_rows(summary, task)
    sweep = _labelled_runs(task_rows, "retain_fraction", (original, oracle), methods)
    if sweep.empty or not refs:
        wanted = f" for {', '.join(methods)}" if methods else ""
        return note_figure(f"no {task} results with a retain fraction{wanted}", title)
    bases = order_methods(sweep["base"].unique(), original=original, oracle=oracle,
                          method_order=method_order)  # fmt: skip
    colours = _method_colours(bases)
    figure = new_figure(panel_inches * len(refs) + 0.5, panel_inches + 0.4)
    axes = figure.subplots(1, len(refs), squeeze=False)[0]
    for axis, ref in zip(axes, refs, strict=True):
        rows = sweep.loc[(sweep["set"] == ref[0]) & (sweep["metric"] == ref[1])]
        if rows.empty:
            note(axis, f"no sweep results for {_axis_label(ref)}")
            continue
        for base in bases:
            points = rows.loc[rows["base"] == base].groupby("retain_fraction")[["mean", "std"]]
            points = points.mean().sort_index()
            if points.empty:
                continue
            axis.errorbar(100 * points.index.to_numpy(dtype=float),
                          points["mean"].to_numpy(dtype=float),
                          yerr=_error_bars(points["std"]),
                          marker="o", markersize=4, capsize=2, label=base,
                          color=colours[base])  # fmt: skip
        _reference_lines(axis, task_rows, ref, original, oracle)
        axis.set_xscale("log")
        axis.set_xlim(0.8, 125)
        axis.set_xticks(_PERCENT_TICKS, [f"{tick}%" for tick in _PERCENT_TICKS])
        axis.minorticks_off()
        axis.set_xlabel("retain data used", fontsize=8)
        axis.set_ylabel(_axis_label(ref), fontsize=8)
        axis.tick_params(labelsize=7)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.suptitle(title)
    return figure


def _interval_bars(selected: pd.DataFrame) -> np.ndarray:
    """Asymmetric error bars ``[mean − ci_low, ci_high − mean]``; ± std where no interval."""
    mean = selected["mean"].to_numpy(dtype=float)
    std = np.nan_to_num(selected["std"].to_numpy(dtype=float))
    low = selected["ci_low"].to_numpy(dtype=float)
    high = selected["ci_high"].to_numpy(dtype=float)
    below = np.where(np.isfinite(low), mean - low, std)
    above = np.where(np.isfinite(high), high - mean, std)
    return np.clip(np.nan_to_num(np.vstack([below, above])), 0.0, None)


def epoch_horizon_bars(
    summary: pd.DataFrame,
    task: str,
    refs: Sequence[Ref],
    *,
    methods: Sequence[str] = (),
    original: str = "original",
    oracle: str = "oracle",
    method_order: Sequence[str] = (),
    panel_inches: float = 4.0,
    title: str | None = None,
) -> Figure:
    """Grouped bars per strategy, one bar per epoch horizon (e.g. 20 vs 50), per ``(set, metric)``.

    Bars are the methods of ``task`` with ``epochs`` (e.g. ``noisy_label@e20``), grouped by
    strategy base name, with their 95 % bootstrap intervals over items (± std where a row
    has no interval); the oracle and the original are horizontal reference lines.

    Args:
        summary: output of :func:`~med_unlearning.metrics.results_table.summarize`.
        task: the task to plot (the segmentation study's strategies).
        refs: ``(set, metric)`` per panel, e.g. forget Dice and retain Dice.
        methods: strategy base names to draw (default: all with epochs).
        original: the original model's method name.
        oracle: the oracle's method name.
        method_order: display order of strategies.
        panel_inches: size of one panel.
        title: the figure title.

    Returns:
        The figure, one axis per ref; a one-panel note when no method has ``epochs``.
    """
    title = title or f"{task}: epoch horizons"
    task_rows = _task_rows(summary, task)
    runs = _labelled_runs(task_rows, "epochs", (original, oracle), methods)
    if runs.empty or not refs:
        wanted = f" for {', '.join(methods)}" if methods else ""
        return note_figure(f"no {task} results with an epoch horizon{wanted}", title)
    bases = order_methods(runs["base"].unique(), original=original, oracle=oracle,
                          method_order=method_order)  # fmt: skip
    horizons = sorted(int(epochs) for epochs in runs["epochs"].unique())
    palette = matplotlib.colormaps["Blues"]
    width = 0.8 / len(horizons)
    figure = new_figure(max(panel_inches, 0.7 * len(bases)) * len(refs), panel_inches)
    axes = figure.subplots(1, len(refs), squeeze=False)[0]
    for axis, ref in zip(axes, refs, strict=True):
        rows = runs.loc[(runs["set"] == ref[0]) & (runs["metric"] == ref[1])]
        if rows.empty:
            note(axis, f"no epoch-horizon results for {_axis_label(ref)}")
            continue
        positions = np.arange(len(bases))
        for index, horizon in enumerate(horizons):
            selected = rows.loc[rows["epochs"] == horizon].groupby("base")[
                ["mean", "std", "ci_low", "ci_high"]
            ].mean()
            selected = selected.reindex(bases)
            axis.bar(positions + (index - (len(horizons) - 1) / 2) * width,
                     selected["mean"].to_numpy(dtype=float), width,
                     yerr=_interval_bars(selected),
                     capsize=2, label=f"{horizon} epochs",
                     color=palette(0.4 + 0.5 * index / max(len(horizons) - 1, 1)))  # fmt: skip
        _reference_lines(axis, task_rows, ref, original, oracle)
        axis.set_xticks(positions, bases, rotation=30, ha="right", fontsize=7)
        axis.set_ylabel(_axis_label(ref), fontsize=8)
        axis.tick_params(labelsize=7)
        axis.grid(axis="y", alpha=0.3)
        axis.legend(fontsize=7)
    figure.suptitle(title)
    return figure
