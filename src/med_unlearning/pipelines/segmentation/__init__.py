"""``segmentation`` pipeline."""

from med_unlearning.pipelines.segmentation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
