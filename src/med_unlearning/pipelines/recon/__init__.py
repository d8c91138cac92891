"""``recon`` pipeline."""

from med_unlearning.pipelines.recon.pipeline import create_pipeline

__all__ = ["create_pipeline"]
