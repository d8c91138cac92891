"""Every figure of a study, from its summary and example slices: :func:`study_figures`.

Reconstruction examples and segmentation overlays show each strategy's main run (sweep
variants have curves instead); the trade-off scatter places every method against the oracle
on each task's first criteria pair; the sweeps get their curves and bars. The figures'
names and report titles are here too (:data:`FIGURE_TITLES`, :func:`figure_entries`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from med_unlearning.metrics.methods import method_base
from med_unlearning.params.evaluation import EvaluationParams
from med_unlearning.reporting import figures
from med_unlearning.reporting.context import FigureEntry

__all__ = ["FIGURE_TITLES", "figure_entries", "main_runs_only", "study_figures"]


def _pairs(params: EvaluationParams, task: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """The first ``(retain, forget)`` criteria of ``task``: the axes of its plots."""
    settings = params.tasks[task]
    return settings.retain[0].as_tuple(), settings.forget[0].as_tuple()


def _recon_example_inputs(
    examples: Mapping[str, Mapping[str, Mapping[str, np.ndarray]]],
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """``({"<case> (test)": {model: output}}, {"<case> (test)": target})``, the zero-filled
    input shown as a model of its own (from the original's examples)."""
    reconstructions: dict[str, dict[str, np.ndarray]] = {}
    targets: dict[str, np.ndarray] = {}
    for case, by_method in examples.items():
        label = f"{case} (test)"
        for method, arrays in by_method.items():
            if "zero_filled" in arrays and method == "original":
                reconstructions.setdefault(label, {})["zero_filled"] = arrays["zero_filled"]
            reconstructions.setdefault(label, {})[method] = arrays["output"]
            targets[label] = arrays["target"]
    return reconstructions, targets


def main_runs_only(per_case: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{case: {method: …}}`` without the sweep variants."""
    return {
        case: {m: value for m, value in by_method.items() if method_base(m) == m}
        for case, by_method in per_case.items()
    }


def study_figures(
    summary: pd.DataFrame,
    recon_examples: Mapping[str, Any],
    segmentation_examples: Mapping[str, Any],
    params: EvaluationParams,
) -> dict[str, Figure]:
    """Every figure of the study, by name: ``recon_examples``, ``segmentation_overlays``,
    ``tradeoff``, ``recon_retain_fraction``, ``segmentation_horizons``.

    Args:
        summary: the study's summary
            (:func:`~med_unlearning.metrics.results_table.summarize`).
        recon_examples: ``{case: {method: {"output"|"target"|"zero_filled": 2-D array}}}``.
        segmentation_examples: ``{case: {method: {"image"|"prediction"|"truth": array}}}``.
        params: the ``evaluation`` parameters (method order, figure style, criteria).
    """
    style = params.figures
    order = [params.original_method, params.oracle_method, *params.method_order]
    reconstructions, targets = _recon_example_inputs(recon_examples)
    model_order = ["zero_filled", *order]
    models = {m for case in reconstructions.values() for m in case}
    model_order += sorted(models - set(model_order))
    images: dict[str, np.ndarray] = {}
    predictions: dict[str, dict[str, np.ndarray]] = {}
    truths: dict[str, np.ndarray] = {}
    for case, by_method in segmentation_examples.items():
        for method, arrays in by_method.items():
            images[case] = arrays["image"]
            truths[case] = arrays["truth"]
            predictions.setdefault(case, {})[method] = arrays["prediction"]
    seg_models = {m for case in predictions.values() for m in case}
    seg_order = [m for m in order if m in seg_models] + sorted(seg_models - set(order))
    # Example panels show each strategy's main run; sweep variants (``ft@r50``) have curves.
    reconstructions = main_runs_only(reconstructions)
    predictions = main_runs_only(predictions)
    model_order = [m for m in model_order if m in models and method_base(m) == m]
    pairs = {task: _pairs(params, task) for task in params.tasks}
    built = {
        "recon_examples": figures.reconstruction_examples(
            reconstructions, targets, model_order=model_order,
            error_scale=style.error_scale, image_cmap=style.image_cmap,
            error_cmap=style.error_cmap, panel_inches=style.panel_inches,
        ),
        "segmentation_overlays": figures.segmentation_overlays(
            images, predictions, truths, model_order=seg_order, alpha=style.overlay_alpha,
            slice_axis=-1,
        ),
        "tradeoff": figures.tradeoff_scatter(
            summary, pairs, original=params.original_method, oracle=params.oracle_method,
            method_order=params.method_order, include_sweeps=True,
            hidden=params.baseline_methods,
        ),
        "recon_retain_fraction": figures.retain_fraction_curves(
            summary, "recon", pairs["recon"], methods=style.retain_fraction_methods
        ),
        "segmentation_horizons": figures.epoch_horizon_bars(
            summary, "segmentation", pairs["segmentation"], methods=style.epoch_methods
        ),
    }
    return built


#: Figure name -> (report group: a task or ``study``, title).
FIGURE_TITLES = {
    "recon_examples": ("recon", "Reconstructions of a forget and a retain test volume"),
    "recon_retain_fraction": ("recon", "Retain-fraction sweep"),
    "segmentation_overlays": ("segmentation", "Segmentations of a forget and a retain subject"),
    "segmentation_horizons": ("segmentation", "Epoch horizons"),
    "tradeoff": ("study", "Forgetting vs keeping, against the oracle"),
}


def figure_entries(figure_png: Mapping[str, bytes]) -> dict[str, list[FigureEntry]]:
    """The report's figure entries by group (a task, or ``study``), each linking
    ``figures/<name>.png`` and embedding its PNG bytes; unknown names go to ``study``."""
    entries: dict[str, list[FigureEntry]] = {}
    for name, png in figure_png.items():
        group, title = FIGURE_TITLES.get(name, ("study", name))
        entries.setdefault(group, []).append(
            FigureEntry(title=title, filename=f"figures/{name}.png", image=png)
        )
    return entries
