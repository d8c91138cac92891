"""``segmentation`` pipeline: train the original, the oracle and the reference (the oracle's
recipe with seed + 1) 3D brain segmentation models.

Wiring (all names under the ``segmentation`` namespace)::

    mrbrains_raw ─┬─ build_mrbrains_metadata ─ mrbrains_metadata
                  │                               │
                  │                    split_subjects ─ segmentation.splits
                  │                               │
                  └─ load_segmentation_subjects ─ segmentation.subjects (05_model_input)
                                                         │
    make_training_manifests ─ segmentation.{original,oracle,reference}.manifest
                                                         │
    segmentation.medicalnet_weights (optional MedicalNet file, None when unset) ─┐
    one training pipeline per model (namespace segmentation.original / .oracle / .reference):
        train ─ checkpoint (versioned), history
        predict ─ predictions (NIfTI per subject, input affine), scores (Dice per subject)

The preprocessed subjects are persisted (``segmentation.subjects``, model-input layer) and
read by the unlearning, tuning and evaluation pipelines too, so every model sees the same
arrays. The manifests stay in memory, so a run must include the ``segmentation``
namespace's data nodes: ``kedro run --pipelines segmentation`` (or ``--namespaces
segmentation`` to skip rebuilding the metadata table, which must then exist).
"""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Node, Pipeline

from med_unlearning.pipelines.metadata import mrbrains_metadata_pipeline
from med_unlearning.pipelines.segmentation.nodes import (
    TRAINING_ROLES,
    load_segmentation_subjects,
    make_training_manifests,
    predict_segmentation_subjects,
    split_subjects,
    train_segmentation_model,
)

__all__ = ["MEDICALNET_WEIGHTS", "MODELS", "create_pipeline", "training_pipeline"]

#: The two models every segmentation study trains.
MODELS = tuple(TRAINING_ROLES)

_SHARED_PARAMS = {"params:segmentation", "params:runtime"}
#: The catalog entry of the optional MedicalNet weights every training node starts from
#: (``None`` when no file is configured; see conf/base/globals.yml ``medicalnet_weights``).
MEDICALNET_WEIGHTS = "segmentation.medicalnet_weights"


def training_pipeline() -> Pipeline:
    """One model's training and prediction; instantiated per model with a namespace.

    Free inputs: ``manifest`` (namespaced), ``subjects``, ``splits`` and
    ``medicalnet_weights`` (mapped to the shared ``segmentation.subjects`` /
    ``segmentation.splits`` / ``segmentation.medicalnet_weights``); outputs ``checkpoint``,
    ``history``, ``predictions``, ``scores``.
    """
    return Pipeline(
        [
            Node(
                train_segmentation_model,
                inputs=[
                    "subjects",
                    "manifest",
                    "splits",
                    "medicalnet_weights",
                    "params:segmentation",
                    "params:runtime",
                ],
                outputs=["checkpoint", "history"],
                name="train",
            ),
            Node(
                predict_segmentation_subjects,
                inputs=[
                    "checkpoint",
                    "subjects",
                    "splits",
                    "params:segmentation",
                    "params:runtime",
                ],
                outputs=["predictions", "scores"],
                name="predict",
            ),
        ]
    )


def create_pipeline(**kwargs: Any) -> Pipeline:
    """Create the ``segmentation`` pipeline (metadata, splits, subjects, original and oracle)."""
    data = Pipeline(
        [
            Node(
                split_subjects,
                inputs=["mrbrains_metadata", "params:segmentation"],
                outputs="splits",
                name="split_subjects",
            ),
            Node(
                make_training_manifests,
                inputs="splits",
                outputs=[f"{model}_manifest" for model in MODELS],
                name="make_training_manifests",
            ),
            Node(
                load_segmentation_subjects,
                inputs=["mrbrains_raw", "splits", "params:segmentation"],
                outputs="subjects",
                name="load_subjects",
            ),
        ],
        inputs={"mrbrains_metadata", "mrbrains_raw"},
        outputs={f"{model}_manifest": f"segmentation.{model}.manifest" for model in MODELS},
        parameters={"params:segmentation"},
        namespace="segmentation",
    )
    models = [
        Pipeline(
            training_pipeline(),
            inputs={
                "subjects": "segmentation.subjects",
                "splits": "segmentation.splits",
                "medicalnet_weights": MEDICALNET_WEIGHTS,
            },
            parameters=_SHARED_PARAMS,
            namespace=f"segmentation.{model}",
        )
        for model in MODELS
    ]
    return Pipeline(
        mrbrains_metadata_pipeline() + data + sum(models, Pipeline([])), tags="training"
    )
