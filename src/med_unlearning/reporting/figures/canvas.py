"""What every figure is drawn on: Figure objects, notes for missing data, colours, PNG bytes.

Figures are built without pyplot state (:func:`new_figure`), and a panel whose data is
missing shows a short note (:func:`note`, :func:`note_figure`) instead of raising.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure

__all__ = [
    "IGNORED_LABELS",
    "Ref",
    "PNG_SIGNATURE",
    "figure_to_png",
    "is_png",
    "bare_axis",
    "label_colours",
    "middle_slice",
    "model_rows",
    "new_figure",
    "note",
    "note_figure",
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
#: Label values never coloured (background, and the ignore index of the label mapping).
IGNORED_LABELS = (0, 255)

#: A criterion of the summary: ``(set, metric)``.
Ref = tuple[str, str]


#: The first bytes of every PNG file.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def is_png(data: object) -> bool:
    """Whether ``data`` is bytes that start like a PNG file."""
    return isinstance(data, bytes | bytearray) and bytes(data[:8]) == PNG_SIGNATURE


def figure_to_png(figure: Figure, dpi: int = 120) -> bytes:
    """The figure as PNG bytes (for the report and the figure files)."""
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


def new_figure(width: float, height: float) -> Figure:
    """A constrained-layout Figure of at least 3 × 2 inches (no pyplot state)."""
    return Figure(figsize=(max(width, 3.0), max(height, 2.0)), layout="constrained")


def note(axis: Any, message: str) -> None:
    """Show ``message`` in place of a panel's content (its data is missing)."""
    axis.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=8,
              transform=axis.transAxes, color="0.3")  # fmt: skip
    axis.set_xticks([])
    axis.set_yticks([])
    for spine in axis.spines.values():
        spine.set_visible(False)


def note_figure(message: str, title: str = "") -> Figure:
    """A one-panel figure holding only ``message`` (used when a figure's data is missing)."""
    figure = new_figure(5.0, 2.5)
    axis = figure.add_subplot(1, 1, 1)
    note(axis, message)
    if title:
        figure.suptitle(title)
    return figure


def bare_axis(axis: Any) -> None:
    """An axis for an image: no ticks."""
    axis.set_xticks([])
    axis.set_yticks([])


def model_rows(per_case: Mapping[str, Mapping[str, Any]], order: Sequence[str] | None) -> list:
    """The models of any case, in ``order`` first (then as they come)."""
    models = list(dict.fromkeys(model for case in per_case.values() for model in case))
    if order is None:
        return models
    return [m for m in order if m in models] + [m for m in models if m not in order]
