"""Shared sub-pipelines that build the metadata tables; ``recon`` and ``segmentation`` include them.

Adding one of these to several pipelines is safe: Kedro merges identical nodes.
"""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from med_unlearning.data.metadata import build_fastmri_metadata, build_mrbrains_metadata

__all__ = ["fastmri_metadata_pipeline", "mrbrains_metadata_pipeline"]


def fastmri_metadata_pipeline() -> Pipeline:
    """``fastmri_raw`` + ``fastmri_user_metadata`` -> ``fastmri_metadata``."""
    return Pipeline(
        [
            Node(
                build_fastmri_metadata,
                inputs=["fastmri_raw", "fastmri_user_metadata"],
                outputs="fastmri_metadata",
                name="build_fastmri_metadata",
            )
        ]
    )


def mrbrains_metadata_pipeline() -> Pipeline:
    """``mrbrains_raw`` + ``mrbrains_user_metadata`` -> ``mrbrains_metadata``."""
    return Pipeline(
        [
            Node(
                build_mrbrains_metadata,
                inputs=["mrbrains_raw", "mrbrains_user_metadata"],
                outputs="mrbrains_metadata",
                name="build_mrbrains_metadata",
            )
        ]
    )
