"""``evaluation`` pipeline."""

from med_unlearning.pipelines.evaluation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
