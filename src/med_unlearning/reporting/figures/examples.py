"""Example images: reconstructions with their error maps, segmentations over their image.

- :func:`reconstruction_examples` — middle slices of a forget and a retain volume per model
  with ``|error| × k`` maps (the hallucinations of mixed-anatomy training show up here);
- :func:`segmentation_overlays` — label colours over an image slice, per model and subject.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from med_unlearning.reporting.figures.canvas import (
    IGNORED_LABELS,
    bare_axis,
    label_colours,
    middle_slice,
    model_rows,
    new_figure,
    note,
    note_figure,
)

__all__ = ["reconstruction_examples", "segmentation_overlays"]


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
    models = model_rows(reconstructions, model_order)
    if not cases or not models:
        return note_figure("no reconstructions to show", title)
    rows, columns = 1 + len(models), 2 * len(cases)
    figure = new_figure(panel_inches * columns + 0.8, panel_inches * rows)
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
                note(axes[0, image_column], str(error))
        vmax = float(np.nanmax(target_slice)) if target_slice is not None else None
        if target_slice is not None:
            axes[0, image_column].imshow(target_slice, cmap=image_cmap, vmin=0, vmax=vmax)
            bare_axis(axes[0, image_column])
        elif target is None:
            note(axes[0, image_column], "no target")
        note(axes[0, error_column], "reference")
        axes[0, 0].set_ylabel("target", fontsize=9)
        error_image = None
        for row_index, model in enumerate(models, start=1):
            image_axis, error_axis = axes[row_index, image_column], axes[row_index, error_column]
            if case_index == 0:
                image_axis.set_ylabel(model, fontsize=9)
            image = reconstructions.get(case, {}).get(model)
            if image is None:
                note(image_axis, "not available")
                note(error_axis, "not available")
                continue
            try:
                image_slice = middle_slice(image, slice_axis).astype(float)
            except ValueError as error:
                note(image_axis, str(error))
                note(error_axis, "")
                continue
            scale = vmax if vmax is not None else float(np.nanmax(image_slice))
            image_axis.imshow(image_slice, cmap=image_cmap, vmin=0, vmax=scale)
            bare_axis(image_axis)
            if target_slice is None:
                note(error_axis, "no target")
            elif image_slice.shape != target_slice.shape:
                note(error_axis, f"shape {image_slice.shape} ≠ target {target_slice.shape}")
            else:
                error = np.abs(image_slice - target_slice) * error_scale
                error_image = error_axis.imshow(error, cmap=error_cmap, vmin=0, vmax=vmax)
                bare_axis(error_axis)
        if error_image is not None:
            colour_bar = figure.colorbar(error_image, ax=list(axes[1:, error_column]), shrink=0.8)
            colour_bar.set_label(f"|error| × {error_scale:g}", fontsize=8)
    figure.suptitle(title)
    return figure


def _overlay(labels: np.ndarray, colours: Mapping[int, Any], alpha: float) -> np.ndarray:
    rgba = np.zeros((*labels.shape, 4))
    for label, colour in colours.items():
        if label in IGNORED_LABELS:
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
    models = model_rows(predictions, model_order)
    if not cases or (not models and not truths):
        return note_figure("no segmentations to show", title)
    row_names = ["ground truth", *models]
    figure = new_figure(panel_inches * len(cases) + 1.6, panel_inches * len(row_names))
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
                note(axis, "not available")
                continue
            try:
                labels = np.rint(middle_slice(source, slice_axis)).astype(int)
            except ValueError as error:
                note(axis, str(error))
                continue
            if background is not None and background.shape == labels.shape:
                axis.imshow(background, cmap=image_cmap)
            elif background is not None:
                note(axis, f"labels {labels.shape} ≠ image {background.shape}")
                continue
            present = [int(v) for v in np.unique(labels) if int(v) not in IGNORED_LABELS]
            seen_labels.update(present)
            axis.imshow(_overlay(labels, label_colours(present), alpha), interpolation="nearest")
            bare_axis(axis)
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
