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

The package is the figures' one entry point; the modules split it by what is drawn:
:mod:`.canvas` (figure objects, notes, colours, PNG bytes), :mod:`.examples` (images) and
:mod:`.summary_plots` (plots of the summary table).
"""

from med_unlearning.reporting.figures.canvas import (
    figure_to_png,
    label_colours,
    middle_slice,
    note_figure,
)
from med_unlearning.reporting.figures.examples import (
    reconstruction_examples,
    segmentation_overlays,
)
from med_unlearning.reporting.figures.summary_plots import (
    epoch_horizon_bars,
    retain_fraction_curves,
    tradeoff_scatter,
)

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
