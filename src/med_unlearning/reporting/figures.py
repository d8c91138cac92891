"""The study's figures, as :class:`matplotlib.figure.Figure` objects (no pyplot state).

Every function returns a Figure that Kedro's ``matplotlib.MatplotlibDataset`` can save and
kedro-viz can preview. Missing inputs never raise: the affected panel (or the whole figure)
shows a short note instead, so one failed run does not hide the other results.

- :func:`reconstruction_examples` — middle slices of a forget and a retain volume per model
  with ``|error| × k`` maps (the hallucinations of mixed-anatomy training show up here);
- :func:`segmentation_overlays` — label colours over an image slice, per model and subject;
- :func:`tradeoff_scatter` — forget metric vs retain metric per method with 95 % CI bars,
  oracle and original marked, labels spread so they never overlap, sweeps as lines;
- :func:`retain_fraction_curves` — metric vs retain fraction (log scale, 1…100%) per strategy;
- :func:`epoch_horizon_bars` — grouped bars per strategy for each epoch horizon (20 vs 50).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from med_unlearning.metrics.comparison import (
    format_value,
    method_base,
    metric_label,
    order_methods,
    set_label,
    validate_summary,
)
from med_unlearning.metrics.statistics import is_seed_repeat

__all__ = [
    "epoch_horizon_bars",
    "figure_to_png",
    "label_colours",
    "middle_slice",
    "note_figure",
    "reconstruction_examples",
    "retain_fraction_curves",
    "segmentation_overlays",
    "tradeoff_scatter",
]

#: Colours of MRBrainS18 labels 1–10 (0 = background stays transparent).
_LABEL_COLOURS = {
    1: "#1f77b4",  # cortical GM
    2: "#ff7f0e",  # basal ganglia
    3: "#f5f5dc",  # white matter
    4: "#d62728",  # WM lesions
    5: "#17becf",  # extracerebral CSF
    6: "#2ca02c",  # ventricles
    7: "#9467bd",  # cerebellum
    8: "#8c564b",  # brainstem
    9: "#e377c2",  # infarction
    10: "#bcbd22",  # other
}
_IGNORED_LABELS = (0, 255)
_PERCENT_TICKS = (1, 5, 10, 20, 50, 100)

Ref = tuple[str, str]


# ---------------------------------------------------------------------------------------------
# Helpers


def figure_to_png(figure: Figure, dpi: int = 120) -> bytes:
    """The figure as PNG bytes (for embedding in the HTML report)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def middle_slice(volume: Any, axis: int = 0) -> np.ndarray:
    """The middle slice of a 3-D volume along ``axis`` (a 2-D array is returned unchanged).

    Complex data (e.g. a complex image) is shown as its magnitude.

    Raises:
        ValueError: for arrays that are neither 2-D nor 3-D.
    """
    array = np.asarray(volume)
    if np.iscomplexobj(array):
        array = np.abs(array)
    if array.ndim == 2:
        return array
    if array.ndim == 3:
        return np.take(array, array.shape[axis] // 2, axis=axis)
    raise ValueError(f"expected a 2-D slice or a 3-D volume, got shape {array.shape}")


def label_colours(labels: Sequence[int]) -> dict[int, tuple[float, float, float, float]]:
    """RGBA colour per label value: the MRBrainS18 palette, then ``tab20`` for others."""
    fallback = matplotlib.colormaps["tab20"]
    colours = {}
    for position, label in enumerate(sorted({int(label) for label in labels})):
        if label in _LABEL_COLOURS:
            colours[label] = matplotlib.colors.to_rgba(_LABEL_COLOURS[label])
        else:
            colours[label] = fallback(position % fallback.N)
    return colours


def _new_figure(width: float, height: float) -> Figure:
    return Figure(figsize=(max(width, 3.0), max(height, 2.0)), layout="constrained")


def _note(axis: Any, message: str) -> None:
    axis.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=8,
              transform=axis.transAxes, color="0.3")  # fmt: skip
    axis.set_xticks([])
    axis.set_yticks([])
    for spine in axis.spines.values():
        spine.set_visible(False)


def note_figure(message: str, title: str = "") -> Figure:
    """A one-panel figure holding only ``message`` (used when a figure's data is missing)."""
    figure = _new_figure(5.0, 2.5)
    axis = figure.add_subplot(1, 1, 1)
    _note(axis, message)
    if title:
        figure.suptitle(title)
    return figure


def _image_axis(axis: Any) -> None:
    axis.set_xticks([])
    axis.set_yticks([])


def _model_rows(per_case: Mapping[str, Mapping[str, Any]], order: Sequence[str] | None) -> list:
    models = list(dict.fromkeys(model for case in per_case.values() for model in case))
    if order is None:
        return models
    return [m for m in order if m in models] + [m for m in models if m not in order]


# ---------------------------------------------------------------------------------------------
# (a) reconstruction examples


def reconstruction_examples(
    reconstructions: Mapping[str, Mapping[str, Any]],
    targets: Mapping[str, Any],
    *,
    model_order: Sequence[str] | None = None,
    error_scale: float = 5.0,
    slice_axis: int = 0,
    image_cmap: str = "gray",
    error_cmap: str = "inferno",
    panel_inches: float = 2.2,
    title: str = "Reconstructions and |error| maps",
) -> Figure:
    """Grid of reconstructions: rows = target then models, two columns per case.

    For each case (e.g. ``forget`` = a knee volume, ``retain`` = a brain volume) the first
    column shows the image, the second ``|image − target| × error_scale`` on the image's
    display range (0 … target max) with a colour bar, so small errors and hallucinated
    structure are visible at a glance.

    Args:
        reconstructions: ``{case: {model: image}}``; images are 2-D slices or 3-D volumes
            (the middle slice along ``slice_axis`` is shown). Typical models: zero-filled,
            original, oracle and each method; rows follow ``model_order`` (default: first
            appearance).
        targets: ``{case: target}`` of the same shape as that case's images.
        model_order: row order of the models.
        error_scale: the factor ``k`` of the error maps.
        slice_axis: slice axis of 3-D inputs (0 for fastMRI ``[slices, H, W]``).
        image_cmap: colour map of images.
        error_cmap: colour map of error maps.
        panel_inches: size of one panel.
        title: the figure title.

    Returns:
        The figure: ``(1 + models) × 2·cases`` image axes plus one colour bar per case
        with an error map; a one-panel note when nothing was given.
    """
    cases = list(dict.fromkeys([*targets, *reconstructions]))
    models = _model_rows(reconstructions, model_order)
    if not cases or not models:
        return note_figure("no reconstructions to show", title)
    rows, columns = 1 + len(models), 2 * len(cases)
    figure = _new_figure(panel_inches * columns + 0.8, panel_inches * rows)
    axes = figure.subplots(rows, columns, squeeze=False)
    for case_index, case in enumerate(cases):
        image_column, error_column = 2 * case_index, 2 * case_index + 1
        axes[0, image_column].set_title(f"{case}", fontsize=9)
        axes[0, error_column].set_title(f"{case}: |error| × {error_scale:g}", fontsize=9)
        target = targets.get(case)
        target_slice = None
        if target is not None:
            try:
                target_slice = middle_slice(target, slice_axis).astype(float)
            except ValueError as error:
                _note(axes[0, image_column], str(error))
        vmax = float(np.nanmax(target_slice)) if target_slice is not None else None
        if target_slice is not None:
            axes[0, image_column].imshow(target_slice, cmap=image_cmap, vmin=0, vmax=vmax)
            _image_axis(axes[0, image_column])
        elif target is None:
            _note(axes[0, image_column], "no target")
        _note(axes[0, error_column], "reference")
        axes[0, 0].set_ylabel("target", fontsize=9)
        error_image = None
        for row_index, model in enumerate(models, start=1):
            image_axis, error_axis = axes[row_index, image_column], axes[row_index, error_column]
            if case_index == 0:
                image_axis.set_ylabel(model, fontsize=9)
            image = reconstructions.get(case, {}).get(model)
            if image is None:
                _note(image_axis, "not available")
                _note(error_axis, "not available")
                continue
            try:
                image_slice = middle_slice(image, slice_axis).astype(float)
            except ValueError as error:
                _note(image_axis, str(error))
                _note(error_axis, "")
                continue
            scale = vmax if vmax is not None else float(np.nanmax(image_slice))
            image_axis.imshow(image_slice, cmap=image_cmap, vmin=0, vmax=scale)
            _image_axis(image_axis)
            if target_slice is None:
                _note(error_axis, "no target")
            elif image_slice.shape != target_slice.shape:
                _note(error_axis, f"shape {image_slice.shape} ≠ target {target_slice.shape}")
            else:
                error = np.abs(image_slice - target_slice) * error_scale
                error_image = error_axis.imshow(error, cmap=error_cmap, vmin=0, vmax=vmax)
                _image_axis(error_axis)
        if error_image is not None:
            colour_bar = figure.colorbar(error_image, ax=list(axes[1:, error_column]), shrink=0.8)
            colour_bar.set_label(f"|error| × {error_scale:g}", fontsize=8)
    figure.suptitle(title)
    return figure


# ---------------------------------------------------------------------------------------------
# (b) segmentation overlays


def _overlay(labels: np.ndarray, colours: Mapping[int, Any], alpha: float) -> np.ndarray:
    rgba = np.zeros((*labels.shape, 4))
    for label, colour in colours.items():
        if label in _IGNORED_LABELS:
            continue
        rgba[labels == label] = (*colour[:3], alpha)
    return rgba


def segmentation_overlays(
    images: Mapping[str, Any],
    predictions: Mapping[str, Mapping[str, Any]],
    truths: Mapping[str, Any],
    *,
    label_names: Mapping[int, str] | None = None,
    model_order: Sequence[str] | None = None,
    slice_axis: int = -1,
    alpha: float = 0.5,
    image_cmap: str = "gray",
    panel_inches: float = 2.2,
    title: str = "Segmentations",
) -> Figure:
    """Label colours over an image slice: rows = ground truth then models, columns = cases.

    Args:
        images: ``{case: image}`` (e.g. the T1 of a forget and of a retain subject), 2-D or
            3-D (the middle slice along ``slice_axis``; -1 = the axial axis of MRBrainS18).
        predictions: ``{case: {model: label map}}`` of the image's shape.
        truths: ``{case: label map}``.
        label_names: ``{label value: name}`` for the legend (default: the values present).
        model_order: row order of the models.
        slice_axis: slice axis of 3-D inputs.
        alpha: opacity of the label colours (background and ignored voxels stay clear).
        image_cmap: colour map of the image.
        panel_inches: size of one panel.
        title: the figure title.

    Returns:
        The figure: ``(1 + models) × cases`` axes (the legend is not an axis); a one-panel
        note when nothing was given.
    """
    cases = list(dict.fromkeys([*images, *truths, *predictions]))
    models = _model_rows(predictions, model_order)
    if not cases or (not models and not truths):
        return note_figure("no segmentations to show", title)
    row_names = ["ground truth", *models]
    figure = _new_figure(panel_inches * len(cases) + 1.6, panel_inches * len(row_names))
    axes = figure.subplots(len(row_names), len(cases), squeeze=False)
    seen_labels: set[int] = set()
    for case_index, case in enumerate(cases):
        axes[0, case_index].set_title(case, fontsize=9)
        image = images.get(case)
        background = None
        if image is not None:
            try:
                background = middle_slice(image, slice_axis).astype(float)
            except ValueError:
                background = None
        for row_index, row_name in enumerate(row_names):
            axis = axes[row_index, case_index]
            if case_index == 0:
                axis.set_ylabel(row_name, fontsize=9)
            source = truths.get(case) if row_index == 0 else predictions.get(case, {}).get(row_name)
            if source is None:
                _note(axis, "not available")
                continue
            try:
                labels = np.rint(middle_slice(source, slice_axis)).astype(int)
            except ValueError as error:
                _note(axis, str(error))
                continue
            if background is not None and background.shape == labels.shape:
                axis.imshow(background, cmap=image_cmap)
            elif background is not None:
                _note(axis, f"labels {labels.shape} ≠ image {background.shape}")
                continue
            present = [int(v) for v in np.unique(labels) if int(v) not in _IGNORED_LABELS]
            seen_labels.update(present)
            axis.imshow(_overlay(labels, label_colours(present), alpha), interpolation="nearest")
            _image_axis(axis)
    if seen_labels:
        colours = label_colours(sorted(seen_labels))
        names = label_names or {}
        handles = [
            Patch(color=colours[label], label=f"{label} {names.get(label, '')}".strip())
            for label in sorted(seen_labels)
        ]
        figure.legend(handles=handles, loc="outside right center", fontsize=7, frameon=False)
    figure.suptitle(title)
    return figure


# ---------------------------------------------------------------------------------------------
# Plots from the summary table


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
        summary: output of :func:`~med_unlearning.metrics.comparison.summarize`.
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
    figure = _new_figure((panel_inches + 1.3) * len(pairs) + 0.3, panel_inches + 0.6)
    axes = figure.subplots(1, len(pairs), squeeze=False)[0]
    for axis, (task, (retain_ref, forget_ref)) in zip(axes, pairs.items(), strict=True):
        axis.set_title(task, fontsize=10)
        points = _points(summary, task, retain_ref, forget_ref, include_sweeps)
        points = points.loc[[m for m in points.index if m not in set(hidden)
                             and not is_seed_repeat(m)]]  # fmt: skip
        if points.empty:
            _note(axis, f"no {task} results for {_axis_label(forget_ref)} and "
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
        summary: output of :func:`~med_unlearning.metrics.comparison.summarize`.
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
    summary = validate_summary(summary)
    task_rows = summary.loc[summary["task"] == task]
    sweep = task_rows.loc[np.isfinite(task_rows["retain_fraction"])].copy()
    sweep["base"] = sweep["method"].map(method_base)
    sweep = sweep.loc[~sweep["method"].isin([original, oracle])]
    if methods:
        sweep = sweep.loc[sweep["base"].isin(list(methods))]
    if sweep.empty or not refs:
        wanted = f" for {', '.join(methods)}" if methods else ""
        return note_figure(f"no {task} results with a retain fraction{wanted}", title)
    bases = order_methods(sweep["base"].unique(), original=original, oracle=oracle,
                          method_order=method_order)  # fmt: skip
    colours = _method_colours(bases)
    figure = _new_figure(panel_inches * len(refs) + 0.5, panel_inches + 0.4)
    axes = figure.subplots(1, len(refs), squeeze=False)[0]
    for axis, ref in zip(axes, refs, strict=True):
        rows = sweep.loc[(sweep["set"] == ref[0]) & (sweep["metric"] == ref[1])]
        if rows.empty:
            _note(axis, f"no sweep results for {_axis_label(ref)}")
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
        summary: output of :func:`~med_unlearning.metrics.comparison.summarize`.
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
    summary = validate_summary(summary)
    task_rows = summary.loc[summary["task"] == task]
    runs = task_rows.loc[np.isfinite(task_rows["epochs"])].copy()
    runs["base"] = runs["method"].map(method_base)
    runs = runs.loc[~runs["method"].isin([original, oracle])]
    if methods:
        runs = runs.loc[runs["base"].isin(list(methods))]
    if runs.empty or not refs:
        wanted = f" for {', '.join(methods)}" if methods else ""
        return note_figure(f"no {task} results with an epoch horizon{wanted}", title)
    bases = order_methods(runs["base"].unique(), original=original, oracle=oracle,
                          method_order=method_order)  # fmt: skip
    horizons = sorted(int(epochs) for epochs in runs["epochs"].unique())
    palette = matplotlib.colormaps["Blues"]
    width = 0.8 / len(horizons)
    figure = _new_figure(max(panel_inches, 0.7 * len(bases)) * len(refs), panel_inches)
    axes = figure.subplots(1, len(refs), squeeze=False)[0]
    for axis, ref in zip(axes, refs, strict=True):
        rows = runs.loc[(runs["set"] == ref[0]) & (runs["metric"] == ref[1])]
        if rows.empty:
            _note(axis, f"no epoch-horizon results for {_axis_label(ref)}")
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
