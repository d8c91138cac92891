"""``sample_data`` pipeline."""

from med_unlearning.pipelines.sample_data.pipeline import create_pipeline

__all__ = ["create_pipeline"]
