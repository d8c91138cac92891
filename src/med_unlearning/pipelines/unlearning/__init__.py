"""``unlearning`` pipeline."""

from med_unlearning.pipelines.unlearning.pipeline import create_pipeline

__all__ = ["create_pipeline"]
