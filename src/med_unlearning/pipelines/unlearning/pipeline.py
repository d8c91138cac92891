"""``unlearning`` pipeline: thin wiring of domain functions (filled in by its issue)."""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Pipeline


def create_pipeline(**kwargs: Any) -> Pipeline:
    """Create the ``unlearning`` pipeline."""
    return Pipeline([])
