"""``sample_data`` pipeline: write the built-in sample study in the real on-disk formats.

::

    params:sample_data.fastmri  ─► generate_fastmri_sample  ─► fastmri_raw
    params:sample_data.mrbrains ─► generate_mrbrains_sample ─► mrbrains_raw

``fastmri_raw`` / ``mrbrains_raw`` are the raw folders the other pipelines read: one
write-once catalog entry each (``WriteOnceFolderDataset``), so Kedro runs these nodes
before any reader. Data are generated in a staging
folder moved into place when complete (see ``WriteOnceFolderDataset``). A raw folder that
already holds files (real data, or an earlier sample) is left untouched and nothing is
generated.
"""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Node, Pipeline

from med_unlearning.pipelines.sample_data.nodes import (
    generate_fastmri_sample,
    generate_mrbrains_sample,
)

__all__ = ["create_pipeline"]


def create_pipeline(**kwargs: Any) -> Pipeline:
    """Create the ``sample_data`` pipeline (two independent generator nodes)."""
    return Pipeline(
        [
            Node(
                func=generate_fastmri_sample,
                inputs=["params:sample_data.fastmri", "params:sample_data.seed", "params:runtime"],
                outputs="fastmri_raw",
                name="generate_fastmri_sample",
            ),
            Node(
                func=generate_mrbrains_sample,
                inputs=["params:sample_data.mrbrains", "params:sample_data.seed", "params:runtime"],
                outputs="mrbrains_raw",
                name="generate_mrbrains_sample",
            ),
        ],
        tags="sample_data",
    )
