"""``tuning`` pipeline: select each strategy's settings on validation data (Optuna)."""

from med_unlearning.pipelines.tuning.pipeline import create_pipeline

__all__ = ["create_pipeline"]
