"""Evaluation nodes that need no study run."""

from __future__ import annotations

from med_unlearning.metrics.methods import method_name
from med_unlearning.reporting.study_figures import main_runs_only


def test_example_figures_keep_main_runs_and_drop_sweep_variants() -> None:
    per_case = {
        "knee": {"original": 1, "nl_ft": 2, method_name("nl_ft", "r50"): 3},
        "brain": {method_name("ft", "r1"): 4, "oracle": 5},
    }
    assert main_runs_only(per_case) == {
        "knee": {"original": 1, "nl_ft": 2},
        "brain": {"oracle": 5},
    }


def _tidy(task: str, method: str, set_name: str, values: list[float], metric: str) -> list[dict]:
    return [{"task": task, "method": method, "set": set_name, "item_id": f"{set_name}{i}",
             "metric": metric, "value": v, "higher_is_better": True}
            for i, v in enumerate(values)]  # fmt: skip


def test_study_tables_add_null_check_and_recommendation_tables() -> None:
    import numpy as np
    import pandas as pd

    from med_unlearning.params.evaluation import EvaluationParams
    from med_unlearning.pipelines.evaluation.nodes import study_tables

    rng = np.random.default_rng(0)
    rows = []
    for method, shift in (("original", 0.05), ("oracle", 0.0), ("reference", 0.0),
                          ("zero_filled", -0.3), ("nl_ft", 0.0)):  # fmt: skip
        for set_name in ("retain_test", "forget_test", "forget_train"):
            for metric in ("ssim", "psnr", "nmse"):
                base = {"ssim": 0.8, "psnr": 30.0, "nmse": 0.05}[metric]
                rows += _tidy("recon", method, set_name,
                              list(base + shift + rng.normal(0, 0.001, 4)), metric)  # fmt: skip
    results = pd.DataFrame(rows)
    results.loc[results["metric"] == "nmse", "higher_is_better"] = False
    params = EvaluationParams.model_validate(
        {"statistics": {"n_resamples": 100}, "membership": {"n_resamples": 50},
         "tasks": {"recon": {**EvaluationParams().tasks["recon"].model_dump(),
                             "attack": {"member_set": "forget_train",
                                        "nonmember_set": "forget_test", "granularity": "volume",
                                        "metrics": ["ssim", "nmse"]}}}}
    )  # fmt: skip
    costs = pd.DataFrame({"task": ["recon"] * 2, "method": ["oracle", "nl_ft"],
                          "wall_time_s": [100.0, 5.0]})  # fmt: skip
    empty = pd.DataFrame(columns=["task", "method", "wall_time_s"])
    outputs = study_tables(results, pd.DataFrame(), costs, empty, params,
                           {"recon": ["original", "oracle", "nl_ft"]})  # fmt: skip
    assert len(outputs) == 10
    membership, null, recommendations = outputs[6], outputs[8], outputs[9]
    assert set(null["method"]) == {"oracle", "zero_filled"}
    assert (membership["calibration"] == "reference").all()
    assert "no validation data" in recommendations.iloc[0]["reason"]


def test_memorisation_tables_node_gives_gaps_and_label_changes() -> None:
    """The evaluation node behind generalisation_gap.csv / forget_label_change.csv."""
    import pandas as pd

    from med_unlearning.params.evaluation import EvaluationParams
    from med_unlearning.pipelines.evaluation.nodes import memorisation_tables

    rows = []
    for method, forget in (("original", 0.8), ("oracle", 0.4), ("noisy_label", 0.45)):
        for set_name, ids, value in (("retain", "abc", 0.8), ("forget", "de", forget),
                                     ("test", "fghi", 0.5)):  # fmt: skip
            for index, item in enumerate(ids):
                for metric in ("dice_mean", "dice_wm_lesions"):
                    rows.append({"task": "segmentation", "method": method, "set": set_name,
                                 "item_id": item, "metric": metric,
                                 "value": value + 0.01 * index, "higher_is_better": True})
    params = EvaluationParams.model_validate({"statistics": {"n_resamples": 100}})
    gaps, labels = memorisation_tables(pd.DataFrame(rows), params)
    assert set(gaps["model"]) == {"original", "oracle"}
    assert (gaps["task"] == "segmentation").all() and gaps["low"].notna().all()
    assert set(labels["method"]) == {"oracle", "noisy_label"}
    assert set(labels["label"]) == {"wm_lesions"}
