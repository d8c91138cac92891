"""``recon`` pipeline: split the fastMRI volumes, train the original and the oracle model.

::

    fastmri_raw ─► build_fastmri_metadata ─► fastmri_metadata
    fastmri_metadata ─► recon.split_volumes ─► recon.splits
    recon.splits ─► recon.original.train_model ─► recon.original.checkpoint, .history
                 ├► recon.oracle.train_model   ─► recon.oracle.checkpoint,   .history
                 └► recon.reference.train_model ─► recon.reference.checkpoint, .history
    checkpoint ─► recon.<run>.reconstruct_volumes ─► recon.<run>.reconstructions (optional)

``original`` trains on ``retain_train`` + ``forget_train``, ``oracle`` on ``retain_train``
only, ``reference`` exactly like the oracle with another seed (``runtime.seed + 1``): the
seed-noise floor of the oracle gaps and the membership attack's calibration model; it never
sees a forget item (``recon.runs`` in the parameters). All are instances of one namespaced
template.
"""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Node, Pipeline

from med_unlearning.pipelines.metadata import fastmri_metadata_pipeline
from med_unlearning.pipelines.recon.nodes import (
    make_reconstruct_node,
    make_train_node,
    split_recon_volumes,
)

__all__ = ["RUNS", "create_pipeline", "training_pipeline"]

#: The training runs, each a namespace ``recon.<run>`` (see ``recon.runs`` in parameters).
RUNS = ("original", "oracle", "reference")

_PARAMETERS = {"params:recon", "params:runtime"}


def training_pipeline(run_name: str) -> Pipeline:
    """The training template for one run, namespaced ``<run_name>`` (``recon.<run_name>``
    once inside :func:`create_pipeline`).

    Outputs ``checkpoint`` (versioned safetensors via the catalog factory), ``history`` and
    ``reconstructions``; reads ``fastmri_raw`` and ``splits``.
    """
    template = Pipeline(
        [
            Node(
                make_train_node(run_name),
                inputs=["fastmri_raw", "splits", "params:recon", "params:runtime"],
                outputs=["checkpoint", "history"],
                name="train_model",
            ),
            Node(
                make_reconstruct_node(run_name),
                inputs=[
                    "checkpoint",
                    "fastmri_raw",
                    "splits",
                    "params:recon",
                    "params:runtime",
                ],
                outputs="reconstructions",
                name="reconstruct_volumes",
            ),
        ]
    )
    return Pipeline(
        template,
        namespace=run_name,
        inputs={"fastmri_raw", "splits"},
        parameters=_PARAMETERS,
    )


def create_pipeline(**kwargs: Any) -> Pipeline:
    """Create the ``recon`` pipeline (metadata, splits, original and oracle training)."""
    split = Pipeline(
        [
            Node(
                split_recon_volumes,
                inputs=["fastmri_metadata", "params:recon", "params:runtime"],
                outputs="splits",
                name="split_volumes",
            )
        ]
    )
    runs = sum((training_pipeline(run) for run in RUNS), Pipeline([]))
    recon = Pipeline(
        split + runs,
        namespace="recon",
        inputs={"fastmri_raw", "fastmri_metadata"},
        parameters=_PARAMETERS,
    )
    return Pipeline(fastmri_metadata_pipeline() + recon, tags="training")
