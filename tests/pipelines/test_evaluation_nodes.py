"""Evaluation nodes that need no study run."""

from __future__ import annotations

from med_unlearning.pipelines.evaluation.nodes import _main_runs_only, method_name


def test_example_figures_keep_main_runs_and_drop_sweep_variants() -> None:
    per_case = {
        "knee": {"original": 1, "nl_ft": 2, method_name("nl_ft", "r50"): 3},
        "brain": {method_name("ft", "r1"): 4, "oracle": 5},
    }
    assert _main_runs_only(per_case) == {
        "knee": {"original": 1, "nl_ft": 2},
        "brain": {"oracle": 5},
    }
