"""Score one model checkpoint on its task's evaluation sets, as rows of the tidy table.

The tidy results table has one row per task × method × set × item × metric (columns
:data:`RESULT_COLUMNS`); :mod:`med_unlearning.metrics.results_table` summarises it. Scoring
also returns small example images (middle slices) for the figures, and the run's cost.

Sets:

- reconstruction: ``retain_test`` (BTA, held-out retain-anatomy volumes), ``forget_test``
  (KTA, held-out forget-anatomy volumes) and ``forget_train`` (UA, the forget volumes the
  original model was trained on); also the validation sets ``retain_val`` and
  ``forget_val`` (trained on by no model, tested on by nothing: what a selection of
  settings may use);
- segmentation: ``retain`` (retain training subjects), ``forget`` (the forget subjects),
  ``test`` (held-out whole subjects of the retained kinds, when the split has any),
  ``forget_test`` (held-out whole subjects the forget request selects, e.g. another
  scanner's: the membership attack's non-members) and ``val`` (further held-out whole
  subjects, ``segmentation.split.val_subject_ids``, for selection).

Scoring also returns a per-*slice* table (columns :data:`SLICE_COLUMNS`) computed from the
same reconstructions / probabilities, without a second inference pass: reconstruction
PSNR/SSIM/NMSE per 2-D slice (``image_quality.slice_metrics``), segmentation cross-entropy,
soft Dice loss and MAE per axial slice (``segmentation.slice_losses``). They are the
membership-inference attack's items when a set has only a few volumes or subjects.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from med_unlearning.io.checkpoint import ModelCheckpoint
from med_unlearning.metrics.directions import higher_is_better
from med_unlearning.metrics.finite import require_finite

__all__ = [
    "RECON_SETS",
    "RESULT_COLUMNS",
    "SEGMENTATION_SETS",
    "SLICE_COLUMNS",
    "ModelScores",
    "checkpoint_cost",
    "method_labels",
    "score_recon_checkpoint",
    "score_segmentation_checkpoint",
]

logger = logging.getLogger(__name__)

RESULT_COLUMNS = (
    "task",
    "method",
    "set",
    "item_id",
    "metric",
    "value",
    "higher_is_better",
    "retain_fraction",
    "epochs",
)

#: Columns of the per-slice table: ``item_id`` is the volume/subject, ``slice`` its index.
SLICE_COLUMNS = (
    "task",
    "method",
    "set",
    "item_id",
    "slice",
    "metric",
    "value",
    "higher_is_better",
)

#: Recon evaluation set -> split roles it is made of.
RECON_SETS: Mapping[str, tuple[str, ...]] = {
    "retain_test": ("retain_test",),
    "forget_test": ("forget_test",),
    "forget_train": ("forget_train",),
    "retain_val": ("retain_val",),
    "forget_val": ("forget_val",),
}
#: Segmentation evaluation set -> split roles it is made of. Held-out test subjects of the
#: forget request's kind (``forget_test``, e.g. another site's) are a set of their own: the
#: membership attack's non-members must be of the members' kind, and the forget subjects are
#: compared with unseen subjects of their kind.
SEGMENTATION_SETS: Mapping[str, tuple[str, ...]] = {
    "retain": ("retain_train",),
    "forget": ("forget_train",),
    "test": ("retain_test",),
    "forget_test": ("forget_test",),
    "val": ("retain_val", "forget_val"),
}

@dataclass
class ModelScores:
    """What scoring one model gives.

    Attributes:
        results: tidy rows (:data:`RESULT_COLUMNS`).
        examples: ``{case: {"image"|"output"|"target"|"truth"|...: 2-D array}}`` middle
            slices for the figures (case = ``forget`` / ``retain``).
        cost: ``{"task", "method", "wall_time_s", "seed"}``.
        slices: per-slice rows (:data:`SLICE_COLUMNS`) of the same items.
    """

    results: pd.DataFrame
    examples: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    cost: dict[str, Any] = field(default_factory=dict)
    slices: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(SLICE_COLUMNS)))


def method_labels(checkpoint: ModelCheckpoint, sweep: str | None = None) -> dict[str, float]:
    """The sweep coordinate of a run: ``retain_fraction`` or ``epochs`` (NaN otherwise).

    Only runs of a sweep (``sweep`` = ``retain_fraction`` or ``horizon``) carry one, read
    from the checkpoint so the figures show the numbers really used, not the variant's name.
    """
    labels = {"retain_fraction": float("nan"), "epochs": float("nan")}
    if sweep == "retain_fraction":
        fraction = (checkpoint.metadata.strategy_params or {}).get("retain_fraction")
        labels["retain_fraction"] = float(fraction) if fraction is not None else float("nan")
    elif sweep == "horizon" and checkpoint.metadata.epochs is not None:
        labels["epochs"] = float(checkpoint.metadata.epochs)
    return labels


def checkpoint_cost(checkpoint: ModelCheckpoint, task: str, method: str) -> dict[str, Any]:
    """The cost recorded in a checkpoint (training or unlearning) and its seed.

    ``wall_time_s`` is optimisation wall time without validation/evaluation (composite
    unlearning runs include their component runs; see
    :mod:`med_unlearning.unlearning.engine`); ``seed`` tells seed repeats apart.
    """
    wall_time = checkpoint.metadata.wall_time_s
    seed = checkpoint.metadata.seed
    return {
        "task": task,
        "method": method,
        "wall_time_s": float(wall_time) if wall_time is not None else float("nan"),
        "seed": int(seed) if seed is not None else None,
        "settings_source": checkpoint.metadata.extra.get("settings_source"),
    }


def _tidy(
    task: str,
    method: str,
    set_name: str,
    item_id: str,
    metrics: Mapping[str, float],
    labels: Mapping[str, float],
) -> list[dict[str, Any]]:
    return [
        {
            "task": task,
            "method": method,
            "set": set_name,
            "item_id": item_id,
            "metric": metric,
            "value": float(value),
            "higher_is_better": higher_is_better(metric),
            **labels,
        }
        for metric, value in metrics.items()
    ]


def _tidy_slices(
    task: str,
    method: str,
    set_name: str,
    item_id: str,
    metrics: Mapping[str, np.ndarray],
) -> list[dict[str, Any]]:
    """Rows of the per-slice table; non-finite values (undefined on a slice) are left out."""
    return [
        {
            "task": task,
            "method": method,
            "set": set_name,
            "item_id": item_id,
            "slice": index,
            "metric": metric,
            "value": float(value),
            "higher_is_better": higher_is_better(metric),
        }
        for metric, values in metrics.items()
        for index, value in enumerate(np.asarray(values, dtype=float))
        if np.isfinite(value)
    ]


def _ids_by_set(
    splits: pd.DataFrame, id_column: str, sets: Mapping[str, Sequence[str]]
) -> dict[str, list[str]]:
    roles = splits["role"].astype(str)
    ids = splits[id_column].astype(str)
    return {name: sorted(ids[roles.isin(list(wanted))]) for name, wanted in sets.items()}


def _middle(volume: np.ndarray, axis: int = 0) -> np.ndarray:
    return np.take(volume, volume.shape[axis] // 2, axis=axis)


def score_recon_checkpoint(
    checkpoint: ModelCheckpoint,
    method: str,
    volumes: Mapping[str, Any],
    splits: pd.DataFrame,
    *,
    batch_size: int = 1,
    device: str = "auto",
    include_zero_filled: bool = False,
    sweep: str | None = None,
    sets: Mapping[str, Sequence[str]] | None = None,
) -> ModelScores:
    """Reconstruct the evaluation volumes with ``checkpoint`` and score them per volume.

    Uses the mask the checkpoint was trained with, seeded per volume (the same volume always
    gets the same mask, for every model), and fastMRI's metric definitions (PSNR/SSIM/NMSE
    with the volume max as peak).

    Args:
        checkpoint: a recon checkpoint.
        method: the name the results carry (``original``, ``oracle``, ``nl_ft``…).
        volumes: ``fastmri_raw`` (id -> loader of a lazy volume).
        splits: the ``recon.splits`` table (``volume_id``, ``role``).
        batch_size: slices per forward pass.
        device: where to run.
        include_zero_filled: also return the zero-filled baseline as method ``zero_filled``.
        sweep: the sweep the run belongs to (see :func:`method_labels`).
        sets: evaluation set -> split roles (default :data:`RECON_SETS`); the tuning
            pipeline passes validation sets only.
    """
    from med_unlearning.metrics.image_quality import slice_metrics
    from med_unlearning.tasks.recon import (
        evaluate_reconstructions,
        model_from_checkpoint,
        recon_loader,
        reconstruct_volumes,
        undersampler_from_checkpoint,
    )

    task, model = model_from_checkpoint(checkpoint, device)
    undersampler = undersampler_from_checkpoint(checkpoint)
    labels = method_labels(checkpoint, sweep)
    rows: list[dict[str, Any]] = []
    slice_rows: list[dict[str, Any]] = []
    examples: dict[str, dict[str, np.ndarray]] = {}
    no_labels = {"retain_fraction": float("nan"), "epochs": float("nan")}
    for set_name, volume_ids in _ids_by_set(splits, "volume_id", RECON_SETS if sets is None else sets).items():
        if not volume_ids:
            continue
        loader = recon_loader(
            volumes, volume_ids, undersampler, batch_size=batch_size, training=False,
            device=device,
        )
        reconstructions = reconstruct_volumes(model, task, loader, device)
        for item, reconstruction in reconstructions.items():
            _require_finite_reconstruction(str(item), reconstruction, method)
        scores = evaluate_reconstructions(reconstructions, include_zero_filled=include_zero_filled)
        for record in scores.to_dict("records"):
            item = str(record["volume_id"])
            rows += _tidy("recon", method, set_name, item, {
                key: record[key] for key in ("psnr", "ssim", "nmse")
            }, labels)
            if include_zero_filled:
                rows += _tidy("recon", "zero_filled", set_name, item, {
                    key: record[f"zero_filled_{key}"] for key in ("psnr", "ssim", "nmse")
                }, no_labels)
        for item, reconstruction in reconstructions.items():
            if not reconstruction.has_target:
                continue
            target, peak = reconstruction.target, reconstruction.max_value
            slice_rows += _tidy_slices(
                "recon", method, set_name, str(item),
                slice_metrics(target, reconstruction.output, peak),
            )
            if include_zero_filled:
                slice_rows += _tidy_slices(
                    "recon", "zero_filled", set_name, str(item),
                    slice_metrics(target, reconstruction.zero_filled, peak),
                )
        case = {"forget_test": "forget", "retain_test": "retain"}.get(set_name)
        if case is not None:
            first = reconstructions[volume_ids[0]]
            examples[case] = {
                "output": _middle(first.output),
                "target": _middle(first.target),
                "zero_filled": _middle(first.zero_filled),
            }
    return ModelScores(
        results=pd.DataFrame(rows, columns=list(RESULT_COLUMNS)),
        examples=examples,
        cost=checkpoint_cost(checkpoint, "recon", method),
        slices=pd.DataFrame(slice_rows, columns=list(SLICE_COLUMNS)),
    )


def _require_finite_reconstruction(volume_id: str, reconstruction: Any, method: str) -> None:
    """Inputs, target and output of one volume must be finite (else a named error)."""
    item = f"volume {volume_id}"
    require_finite(
        reconstruction.zero_filled, what="the zero-filled input (computed from its k-space)",
        item=item,
    )
    if reconstruction.has_target:
        require_finite(reconstruction.target, what="the ground truth reconstruction", item=item)
        require_finite(reconstruction.max_value, what="the volume max (PSNR peak)", item=item)
    require_finite(reconstruction.output, what=f"the output of model {method!r}", item=item)


def score_segmentation_checkpoint(
    checkpoint: ModelCheckpoint,
    method: str,
    subjects: Mapping[str, Any],
    splits: pd.DataFrame,
    params: Any,
    runtime: Any | None = None,
    sweep: str | None = None,
    sets: Mapping[str, Sequence[str]] | None = None,
) -> ModelScores:
    """Segment the evaluation subjects with ``checkpoint`` and score them per subject.

    Dice per class and mean Dice (labels ignored by the mapping, e.g. 9/10, are excluded),
    and MAE between the predicted class probabilities and the one-hot truth (mean over
    classes and over the labelled voxels).

    Args:
        checkpoint: a segmentation checkpoint.
        method: the name the results carry.
        subjects: preprocessed subjects (``segmentation.subjects``).
        splits: the ``segmentation.splits`` table (``subject_id``, ``role``).
        params: the typed ``segmentation`` parameters (label mapping, inference).
        runtime: the typed ``runtime`` parameters.
        sweep: the sweep the run belongs to (see :func:`method_labels`).
        sets: evaluation set -> split roles (default :data:`SEGMENTATION_SETS`).
    """
    from med_unlearning.data.labels import IGNORE_INDEX
    from med_unlearning.metrics.segmentation import slice_losses
    from med_unlearning.tasks.segmentation import SegmentationTask

    task = SegmentationTask.from_params(params, runtime)
    model = task.load_checkpoint(checkpoint)
    labels = method_labels(checkpoint, sweep)
    rows: list[dict[str, Any]] = []
    slice_rows: list[dict[str, Any]] = []
    examples: dict[str, dict[str, np.ndarray]] = {}
    for set_name, subject_ids in _ids_by_set(splits, "subject_id", SEGMENTATION_SETS if sets is None else sets).items():
        for subject_id in subject_ids:
            subject = subjects[subject_id]
            if subject.label is None:
                continue
            require_finite(
                subject.image, what="the input image", item=f"subject {subject_id}", axis=-1
            )
            probabilities = task.predict_probabilities(model, subject)
            require_finite(
                probabilities, what=f"the class probabilities of model {method!r}",
                item=f"subject {subject_id}", axis=-1,
            )
            scores = task.score_subject(model, subject, probabilities)
            metrics = {
                ("dice_mean" if key == "mean_dice" else key): value
                for key, value in scores.items()
                if np.isfinite(value)
            }
            rows += _tidy("segmentation", method, set_name, subject_id, metrics, labels)
            slice_rows += _tidy_slices(
                "segmentation", method, set_name, subject_id,
                slice_losses(probabilities, subject.label, axis=-1),
            )
            case = {"forget": "forget", "retain": "retain"}.get(set_name)
            if case is not None and case not in examples:
                examples[case] = {
                    "image": _middle(subject.image[0], axis=-1),
                    "prediction": _middle(probabilities.argmax(0), axis=-1),
                    "truth": _middle(np.where(subject.label == IGNORE_INDEX, 0, subject.label), axis=-1),
                }
    return ModelScores(
        results=pd.DataFrame(rows, columns=list(RESULT_COLUMNS)),
        examples=examples,
        cost=checkpoint_cost(checkpoint, "segmentation", method),
        slices=pd.DataFrame(slice_rows, columns=list(SLICE_COLUMNS)),
    )
