"""Summaries, oracle gaps, distances, headline figures, costs, tables and verdicts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from med_unlearning.metrics.comparison import evaluate_study
from med_unlearning.metrics.methods import missing_methods, order_methods
from med_unlearning.metrics.oracle import (
    cost_ratios,
    distance_to_oracle,
    oracle_gaps,
    relative_to_original,
)
from med_unlearning.metrics.results_table import (
    ResultsTableError,
    summarize,
    validate_results_table,
)
from med_unlearning.metrics.verdicts import verdicts
from med_unlearning.params.evaluation import EvaluationParams, VerdictParams
from med_unlearning.reporting.formatting import format_ci
from med_unlearning.reporting.tables import study_table

#: (method, set, metric) -> per-item values. Designed so that, with SSIM tolerance 0.02 and
#: PSNR tolerance 1 dB: nl_ft matches the oracle, ft keeps the original's forget quality,
#: ga_l1 destroys everything.
RECON = {
    ("original", "retain_test", "ssim"): [0.95, 0.97, 0.96],
    ("original", "forget_train", "ssim"): [0.90, 0.92, 0.91],
    ("oracle", "retain_test", "ssim"): [0.96, 0.96, 0.97],
    ("oracle", "forget_train", "ssim"): [0.80, 0.82, 0.84],
    ("ft", "retain_test", "ssim"): [0.96, 0.97, 0.96],
    ("ft", "forget_train", "ssim"): [0.90, 0.91, 0.92],
    ("nl_ft", "retain_test", "ssim"): [0.955, 0.96, 0.965],
    ("nl_ft", "forget_train", "ssim"): [0.81, 0.83, 0.83],
    ("ga_l1", "retain_test", "ssim"): [0.20, 0.30, 0.25],
    ("ga_l1", "forget_train", "ssim"): [0.10, 0.15, 0.20],
    ("original", "retain_test", "psnr"): [39.0, 39.2, 38.8],
    ("original", "forget_train", "psnr"): [37.0, 37.3, 37.1],
    ("oracle", "retain_test", "psnr"): [39.4, 39.3, 39.4],
    ("oracle", "forget_train", "psnr"): [31.7, 31.8, 31.7],
    ("ft", "retain_test", "psnr"): [39.2, 39.1, 39.2],
    ("ft", "forget_train", "psnr"): [37.2, 37.1, 37.2],
    ("nl_ft", "retain_test", "psnr"): [38.9, 39.0, 38.8],
    ("nl_ft", "forget_train", "psnr"): [31.6, 31.9, 31.7],
    ("ga_l1", "retain_test", "psnr"): [16.1, 16.3, 16.2],
    ("ga_l1", "forget_train", "psnr"): [13.4, 13.5, 13.3],
}
SEGMENTATION = {
    ("original", "retain", "dice_mean"): [0.76, 0.75],
    ("original", "forget", "dice_mean"): [0.92, 0.93],
    ("oracle", "retain", "dice_mean"): [0.74, 0.75],
    ("oracle", "forget", "dice_mean"): [0.60, 0.62],
    ("noisy_label", "retain", "dice_mean"): [0.63, 0.64],
    ("noisy_label", "forget", "dice_mean"): [0.06, 0.07],
    ("original", "retain", "mae"): [0.05, 0.06],
    ("oracle", "retain", "mae"): [0.05, 0.05],
    ("noisy_label", "retain", "mae"): [0.08, 0.07],
}
HIGHER = {"ssim": True, "psnr": True, "dice_mean": True, "mae": False, "nmse": False}
TOLERANCES = VerdictParams(
    tolerances={"ssim": 0.02, "psnr": 1.0, "dice_mean": 0.05, "nmse": 0.005},
    privacy_tolerance=0.1,
    max_cost_ratio=0.5,
)


def _table(values: dict, task: str, **extra: object) -> list[dict]:
    return [
        {"task": task, "method": method, "set": set_name, "item_id": f"{set_name}-{index}",
         "metric": metric, "value": value, "higher_is_better": HIGHER[metric], **extra}
        for (method, set_name, metric), items in values.items()
        for index, value in enumerate(items)
    ]  # fmt: skip


@pytest.fixture
def results() -> pd.DataFrame:
    return pd.DataFrame(_table(RECON, "recon") + _table(SEGMENTATION, "segmentation"))


def _mean(values: dict, method: str, set_name: str, metric: str) -> float:
    return float(np.mean(values[(method, set_name, metric)]))


# --------------------------------------------------------------------------------------------
# Validation


def test_missing_column_is_named(results: pd.DataFrame) -> None:
    with pytest.raises(ResultsTableError, match=r"results: missing column\(s\) \['value'\]"):
        validate_results_table(results.drop(columns="value"))


def test_duplicated_item_rows_are_rejected(results: pd.DataFrame) -> None:
    with pytest.raises(ResultsTableError, match="duplicated row"):
        validate_results_table(pd.concat([results, results.iloc[:1]]))


def test_non_numeric_value_is_named(results: pd.DataFrame) -> None:
    broken = results.astype({"value": object})
    broken.loc[0, "value"] = "high"
    with pytest.raises(ResultsTableError, match=r"column 'value' must be numeric, got 'high'"):
        validate_results_table(broken)


def test_retain_fraction_must_be_a_fraction(results: pd.DataFrame) -> None:
    with pytest.raises(ResultsTableError, match="retain_fraction"):
        validate_results_table(results.assign(retain_fraction=10.0))


def test_metric_with_both_directions_is_rejected(results: pd.DataFrame) -> None:
    broken = results.copy()
    broken.loc[broken.index[0], "higher_is_better"] = False
    with pytest.raises(ResultsTableError, match="both True and False"):
        validate_results_table(broken)


def test_empty_table_is_an_error() -> None:
    with pytest.raises(ResultsTableError, match="empty"):
        validate_results_table(pd.DataFrame(columns=["task"]))


def test_direction_is_filled_for_known_metrics(results: pd.DataFrame) -> None:
    table = validate_results_table(results.drop(columns="higher_is_better"))
    directions = table.groupby("metric")["higher_is_better"].first().to_dict()
    assert directions == {metric: HIGHER[metric] for metric in directions}


# --------------------------------------------------------------------------------------------
# Numbers


def test_summary_mean_std_and_count(results: pd.DataFrame) -> None:
    summary = summarize(results).set_index(["task", "method", "set", "metric"])
    for (method, set_name, metric), values in RECON.items():
        row = summary.loc[("recon", method, set_name, metric)]
        assert row["mean"] == pytest.approx(np.mean(values))
        assert row["std"] == pytest.approx(np.std(values, ddof=1))
        assert row["n"] == len(values)


def test_summary_ignores_nan_items(results: pd.DataFrame) -> None:
    extra = {"task": "recon", "method": "ft", "set": "retain_test", "item_id": "nan-item",
             "metric": "ssim", "value": np.nan, "higher_is_better": True}  # fmt: skip
    summary = summarize(pd.concat([results, pd.DataFrame([extra])]))
    row = summary.set_index(["task", "method", "set", "metric"]).loc[
        ("recon", "ft", "retain_test", "ssim")
    ]
    assert row["n"] == len(RECON[("ft", "retain_test", "ssim")])
    assert row["mean"] == pytest.approx(np.mean(RECON[("ft", "retain_test", "ssim")]))


def test_oracle_gap_is_method_minus_oracle(results: pd.DataFrame) -> None:
    gaps = oracle_gaps(results, n_resamples=200).set_index(["task", "method", "set", "metric"])
    assert "oracle" not in gaps.index.get_level_values("method")
    for (method, set_name, metric) in RECON:
        if method == "oracle":
            continue
        expected = _mean(RECON, method, set_name, metric) - _mean(RECON, "oracle", set_name, metric)
        row = gaps.loc[("recon", method, set_name, metric)]
        assert row["gap"] == pytest.approx(expected)
        assert row["n_paired"] == 3
        assert row["gap_ci_low"] <= row["gap"] + 1e-12 and row["gap"] - 1e-12 <= row["gap_ci_high"]
    # direction-aware: lower MAE than the oracle would be better; noisy_label's is higher
    mae = gaps.loc[("segmentation", "noisy_label", "retain", "mae")]
    assert not mae["better_than_oracle"]


def test_gap_is_nan_without_an_oracle(results: pd.DataFrame) -> None:
    gaps = oracle_gaps(results.loc[results["method"] != "oracle"])
    assert gaps["gap"].isna().all() and gaps["gap_ci_low"].isna().all()


def test_paired_gap_interval_excludes_zero_for_a_consistent_shift() -> None:
    # Items differ a lot in difficulty (a 10 dB spread) but the method is 0.5 dB below the
    # oracle on every one: the paired interval sees the shift, the per-model spread does not.
    base = np.linspace(25.0, 35.0, 12)
    rows = _table({("oracle", "retain_test", "psnr"): list(base),
                   ("m", "retain_test", "psnr"): list(base - 0.5 + np.tile([0.05, -0.05], 6))},
                  "recon")  # fmt: skip
    gap = oracle_gaps(pd.DataFrame(rows), n_resamples=300).iloc[0]
    assert gap["gap"] == pytest.approx(-0.5)
    assert -0.6 < gap["gap_ci_low"] < gap["gap_ci_high"] < -0.4
    summary = summarize(pd.DataFrame(rows), n_resamples=300).set_index("method")
    assert summary.at["m", "ci_high"] - summary.at["m", "ci_low"] > 2.0


def test_distance_to_oracle_combines_retain_and_forget(results: pd.DataFrame) -> None:
    pairs = {"recon": [(("retain_test", "ssim"), ("forget_train", "ssim"))],
             "segmentation": [(("retain", "dice_mean"), ("forget", "dice_mean"))]}  # fmt: skip
    distances = distance_to_oracle(results, pairs, n_resamples=200).set_index(["task", "method"])
    for method in ("original", "ft", "nl_ft", "ga_l1", "oracle"):
        retain_gap = _mean(RECON, method, "retain_test", "ssim") - _mean(
            RECON, "oracle", "retain_test", "ssim"
        )
        forget_gap = _mean(RECON, method, "forget_train", "ssim") - _mean(
            RECON, "oracle", "forget_train", "ssim"
        )
        expected = math.sqrt(retain_gap**2 + forget_gap**2)
        row = distances.loc[("recon", method)]
        assert row["distance_to_oracle"] == pytest.approx(expected)
        assert row["distance_ci_low"] <= row["distance_ci_high"]
    assert distances.loc[("recon", "oracle"), "distance_to_oracle"] == 0
    assert (distances["criteria"] == "test").all()


def test_headline_relative_to_original(results: pd.DataFrame) -> None:
    headline = {"segmentation": (("retain", "dice_mean"), ("forget", "dice_mean"))}
    relative = relative_to_original(summarize(results), headline).set_index("method")
    original_forget = _mean(SEGMENTATION, "original", "forget", "dice_mean")
    original_retain = _mean(SEGMENTATION, "original", "retain", "dice_mean")
    method_forget = _mean(SEGMENTATION, "noisy_label", "forget", "dice_mean")
    method_retain = _mean(SEGMENTATION, "noisy_label", "retain", "dice_mean")
    row = relative.loc["noisy_label"]
    assert row["forget_relative_decrease"] == pytest.approx(
        (original_forget - method_forget) / original_forget
    )
    assert row["retain_kept"] == pytest.approx(method_retain / original_retain)
    assert relative.loc["original", "forget_relative_decrease"] == pytest.approx(0.0)


def test_cost_ratio_to_retraining() -> None:
    costs = pd.DataFrame({"task": ["recon"] * 3 + ["segmentation"],
                          "method": ["oracle", "nl_ft", "ft", "noisy_label"],
                          "wall_time_s": [800.0, 35.0, 20.0, 12.0]})  # fmt: skip
    table = cost_ratios(costs).set_index(["task", "method"])
    assert table.loc[("recon", "nl_ft"), "ratio_to_retraining"] == pytest.approx(35.0 / 800.0)
    assert table.loc[("recon", "oracle"), "ratio_to_retraining"] == pytest.approx(1.0)
    assert math.isnan(table.loc[("segmentation", "noisy_label"), "ratio_to_retraining"])


def test_cost_table_with_two_times_for_one_run_is_rejected() -> None:
    costs = pd.DataFrame({"task": ["recon", "recon"], "method": ["ft", "ft"],
                          "wall_time_s": [1.0, 2.0]})  # fmt: skip
    with pytest.raises(ResultsTableError, match="two rows"):
        cost_ratios(costs)


# --------------------------------------------------------------------------------------------
# Order and layout


def test_method_order_original_oracle_then_strategies_and_sweeps() -> None:
    methods = ["zeta", "nl_ft", "ft@50%", "oracle", "ft", "ft@5%", "original"]
    sweep = {"ft@50%": (0.5, math.nan), "ft@5%": (0.05, math.nan)}
    ordered = order_methods(methods, method_order=["ft", "nl_ft"], sweep_keys=sweep)
    assert ordered == ["original", "oracle", "ft", "ft@5%", "ft@50%", "nl_ft", "zeta"]


def test_recon_study_table_layout_and_cells(results: pd.DataFrame) -> None:
    summary = summarize(results)
    table = study_table(summary, "recon", method_order=["ft", "nl_ft", "ga_l1"],
                        expected_methods=["full_ft"])  # fmt: skip
    # full_ft is not in method_order: unknown strategies follow the known ones
    assert list(table["method"]) == ["original", "oracle", "ft", "nl_ft", "ga_l1", "full_ft"]
    retain_header = next(column for column in table.columns if "BTA" in column)
    assert "PSNR / SSIM" in retain_header
    assert [c for c in table.columns if "UA" in c]
    row = table.set_index("method").loc["nl_ft"]
    psnr = RECON[("nl_ft", "retain_test", "psnr")]
    ssim = RECON[("nl_ft", "retain_test", "ssim")]
    cells = summary.set_index(["task", "method", "set", "metric"])
    psnr_row = cells.loc[("recon", "nl_ft", "retain_test", "psnr")]
    ssim_row = cells.loc[("recon", "nl_ft", "retain_test", "ssim")]
    expected = (
        f"{format_ci(np.mean(psnr), psnr_row['ci_low'], psnr_row['ci_high'], 'psnr')} / "
        f"{format_ci(np.mean(ssim), ssim_row['ci_low'], ssim_row['ci_high'], 'ssim')}"
    )
    assert row[retain_header] == expected and "[" in expected
    assert psnr_row["ci_low"] <= np.mean(psnr) <= psnr_row["ci_high"]
    assert (table.set_index("method").loc["full_ft"] == "missing").all()


def test_segmentation_study_table_has_relative_columns(results: pd.DataFrame) -> None:
    summary = summarize(results)
    relative = relative_to_original(
        summary, {"segmentation": (("retain", "dice_mean"), ("forget", "dice_mean"))}
    )
    table = study_table(summary, "segmentation", relative=relative).set_index("method")
    original = _mean(SEGMENTATION, "original", "forget", "dice_mean")
    decrease = (original - _mean(SEGMENTATION, "noisy_label", "forget", "dice_mean")) / original
    assert table.loc["noisy_label", "forget decrease vs original"] == f"{100 * decrease:.1f}%"
    assert "retain Dice" in table.columns and "retain MAE" in table.columns


def test_missing_methods_per_task(results: pd.DataFrame) -> None:
    expected = {"recon": ["ft", "full_ft"], "segmentation": ["noisy_label", "fix_decoder"]}
    assert missing_methods(summarize(results), expected) == {
        "recon": ["full_ft"],
        "segmentation": ["fix_decoder"],
    }


# --------------------------------------------------------------------------------------------
# Verdicts

CRITERIA = {
    "recon": ([("retain_test", "ssim"), ("retain_test", "psnr")],
              [("forget_train", "ssim"), ("forget_train", "psnr")]),
    "segmentation": ([("retain", "dice_mean")], [("forget", "dice_mean")]),
}  # fmt: skip
MEMBERSHIP = pd.DataFrame(
    {"task": "recon", "method": ["original", "oracle", "ft", "nl_ft", "ga_l1"],
     "private": ["exposed", "yes", "exposed", "yes", "n/a"],
     "private_detail": ["AUC 0.95", "AUC 0.50", "AUC 0.90", "AUC 0.52",
                        "not computable: 1 member(s)"]}
)  # fmt: skip
COSTS = pd.DataFrame({"task": "recon", "method": ["oracle", "nl_ft", "ft", "ga_l1"],
                      "wall_time_s": [800.0, 35.0, 20.0, 500.0]})  # fmt: skip


def _verdicts(results: pd.DataFrame, criteria=CRITERIA, **kwargs) -> pd.DataFrame:
    return verdicts(summarize(results, n_resamples=200), oracle_gaps(results, n_resamples=200),
                    criteria, TOLERANCES, **kwargs)  # fmt: skip


@pytest.fixture
def recon_verdicts(results: pd.DataFrame) -> pd.DataFrame:
    table = _verdicts(
        results, membership=MEMBERSHIP, costs=cost_ratios(COSTS),
        expected_methods={"recon": ["ft", "nl_ft", "full_ft"]},
        tuning_record={"nl_ft": "Optuna TPE, 20 trials, sets retain_val+forget_val"},
    )  # fmt: skip
    return table.loc[table["task"] == "recon"].set_index("method")


def test_verdict_forgot_from_intervals(recon_verdicts: pd.DataFrame) -> None:
    assert recon_verdicts.at["nl_ft", "forgot"] == "yes"
    assert recon_verdicts.at["ft", "forgot"] == "not enough"
    assert recon_verdicts.at["original", "forgot"] == "not enough"
    assert recon_verdicts.at["ga_l1", "forgot"] == "too much"
    detail = recon_verdicts.at["nl_ft", "forgot_detail"]
    assert "forget_train SSIM" in detail and "[" in detail and "vs ±0.020" in detail
    assert "oracle" not in recon_verdicts.index


def test_verdict_kept(recon_verdicts: pd.DataFrame) -> None:
    assert recon_verdicts.at["nl_ft", "kept"] == "yes"
    assert recon_verdicts.at["ft", "kept"] == "yes"
    assert recon_verdicts.at["ga_l1", "kept"] == "lost"


def test_verdict_is_inconclusive_when_the_interval_is_too_wide() -> None:
    rows = _table({("oracle", "forget_train", "psnr"): [30.0, 30.0, 30.0, 30.0],
                   ("noisy", "forget_train", "psnr"): [27.0, 33.0, 26.0, 34.0]},
                  "recon")  # fmt: skip
    table = _verdicts(pd.DataFrame(rows), {"recon": ([], [("forget_train", "psnr")])})
    assert table.set_index("method").at["noisy", "forgot"] == "inconclusive"
    one = _table({("oracle", "forget_train", "psnr"): [30.0],
                  ("m", "forget_train", "psnr"): [30.1]}, "recon")  # fmt: skip
    single = _verdicts(pd.DataFrame(one), {"recon": ([], [("forget_train", "psnr")])})
    assert single.set_index("method").at["m", "forgot"] == "inconclusive"
    assert "no CI" in single.set_index("method").at["m", "forgot_detail"]


def test_verdict_private_and_cost(recon_verdicts: pd.DataFrame) -> None:
    assert recon_verdicts.at["nl_ft", "private"] == "yes"
    assert recon_verdicts.at["ft", "private"] == "exposed"
    assert recon_verdicts.at["ga_l1", "private"] == "n/a"
    assert "not computable" in recon_verdicts.at["ga_l1", "private_detail"]
    assert recon_verdicts.at["nl_ft", "cost_ratio"] == pytest.approx(35.0 / 800.0)
    assert recon_verdicts.at["nl_ft", "cost"] == "cheap"
    assert recon_verdicts.at["ga_l1", "cost"] == "expensive"
    assert recon_verdicts.at["original", "cost"] == "n/a"


def test_verdict_settings_selected_on(recon_verdicts: pd.DataFrame) -> None:
    assert recon_verdicts.at["nl_ft", "selected_on"].startswith("Optuna TPE")
    assert recon_verdicts.at["ft", "selected_on"] == "conf defaults (not tuned)"


def test_verdict_missing_method_is_listed_not_an_error(recon_verdicts: pd.DataFrame) -> None:
    row = recon_verdicts.loc["full_ft"]
    assert row["status"] == "missing"
    assert (row[["forgot", "kept", "private", "cost"]] == "missing").all()
    assert "did not run" in row["sentence"]


def test_verdict_sentence_derives_from_the_verdicts(recon_verdicts: pd.DataFrame) -> None:
    sentence = recon_verdicts.at["nl_ft", "sentence"]
    assert sentence.startswith("nl_ft — forgot as much as the oracle")
    for aspect in ("kept the retain quality", "private (attack AUC", "cheap", "of retraining"):
        assert aspect in sentence
    assert "did not forget enough" in recon_verdicts.at["ft", "sentence"]
    assert "forgot too much" in recon_verdicts.at["ga_l1", "sentence"]


def test_verdicts_without_oracle_are_not_available(results: pd.DataFrame) -> None:
    table = _verdicts(results.loc[results["method"] != "oracle"])
    ran = table.loc[table["status"] == "ran"]
    assert (ran["forgot"] == "n/a").all() and (ran["kept"] == "n/a").all()
    assert ran["forgot_detail"].str.contains("no oracle result").all()


def test_forgot_is_direction_aware_for_lower_is_better_metrics() -> None:
    rows = _table(
        {("oracle", "forget", "nmse"): [0.040, 0.041, 0.039],
         ("same", "forget", "nmse"): [0.041, 0.042, 0.040],
         ("better", "forget", "nmse"): [0.020, 0.021, 0.019],
         ("worse", "forget", "nmse"): [0.080, 0.081, 0.079]},
        "recon",
    )  # fmt: skip
    table = _verdicts(pd.DataFrame(rows), {"recon": ([], [("forget", "nmse")])})
    forgot = table.set_index("method")["forgot"]
    assert forgot["same"] == "yes"
    assert forgot["better"] == "not enough"  # lower error than the oracle: remembers
    assert forgot["worse"] == "too much"


def test_dice_label_metrics_fall_back_to_the_dice_tolerance() -> None:
    rows = _table({("oracle", "forget", "dice_mean"): [0.5]}, "segmentation")
    rows += [
        {"task": "segmentation", "method": method, "set": "forget", "item_id": "s1",
         "metric": "dice_cerebellum", "value": value, "higher_is_better": True}
        for method, value in (("oracle", 0.60), ("close", 0.64), ("far", 0.70))
    ]  # fmt: skip
    table = _verdicts(
        pd.DataFrame(rows), {"segmentation": ([], [("forget", "dice_cerebellum")])}
    ).set_index("method")
    # one subject: no interval, so inconclusive; the tolerance is still dice_mean's
    assert table.at["close", "forgot"] == "inconclusive"
    assert "vs ±0.050" in table.at["close", "forgot_detail"]


# --------------------------------------------------------------------------------------------
# Everything at once, and the parameters


def test_evaluate_study_from_params_survives_a_csv_round_trip(
    results: pd.DataFrame, tmp_path
) -> None:
    params = EvaluationParams.model_validate({"statistics": {"n_resamples": 200}})
    tables = evaluate_study(results, params, costs=COSTS, membership=MEMBERSHIP,
                            expected_methods={"recon": ["full_ft"]})  # fmt: skip
    assert set(tables) == {"summary", "oracle_gaps", "distances", "relative", "costs",
                           "verdicts", "recommendations"}  # fmt: skip
    paths = {name: tmp_path / f"{name}.csv" for name in ("summary", "oracle_gaps")}
    for name, path in paths.items():
        tables[name].to_csv(path, index=False)
    again = verdicts(pd.read_csv(paths["summary"]), pd.read_csv(paths["oracle_gaps"]),
                     CRITERIA, params.verdicts)  # fmt: skip
    original = verdicts(tables["summary"], tables["oracle_gaps"], CRITERIA, params.verdicts)
    pd.testing.assert_frame_equal(again, original)
    assert "full_ft" in set(tables["verdicts"]["method"])
    # no validation sets in these results: no recommendation, and the reason says so
    recommended = tables["recommendations"].set_index("task")
    assert recommended.at["recon", "method"] == ""
    assert "no validation data" in recommended.at["recon", "reason"]


def _with_validation(results: pd.DataFrame) -> pd.DataFrame:
    extra = {
        ("oracle", "retain_val", "ssim"): [0.96, 0.97, 0.96, 0.95],
        ("oracle", "forget_val", "ssim"): [0.80, 0.82, 0.81, 0.83],
        ("nl_ft", "retain_val", "ssim"): [0.955, 0.965, 0.96, 0.95],
        ("nl_ft", "forget_val", "ssim"): [0.81, 0.82, 0.815, 0.83],
        ("ft", "retain_val", "ssim"): [0.96, 0.97, 0.96, 0.95],
        ("ft", "forget_val", "ssim"): [0.90, 0.91, 0.92, 0.93],
        ("ga_l1", "retain_val", "ssim"): [0.3, 0.2, 0.25, 0.3],
        ("ga_l1", "forget_val", "ssim"): [0.1, 0.1, 0.2, 0.15],
    }
    return pd.concat([results, pd.DataFrame(_table(extra, "recon"))], ignore_index=True)


def test_recommendation_is_selected_on_validation_data_only(results: pd.DataFrame) -> None:
    data = EvaluationParams().model_dump()
    data["statistics"]["n_resamples"] = 200
    data["tasks"]["recon"]["validation"] = {
        "retain": [{"set": "retain_val", "metric": "ssim"}],
        "forget": [{"set": "forget_val", "metric": "ssim"}],
    }
    params = EvaluationParams.model_validate(data)
    with_val = _with_validation(results)
    tables = evaluate_study(with_val, params)
    recommended = tables["recommendations"].set_index("task")
    assert recommended.at["recon", "method"] == "nl_ft"
    assert "validation" in recommended.at["recon", "reason"]
    verdict = tables["verdicts"].set_index(["task", "method"])
    assert verdict.at[("recon", "ft"), "val_forgot"] == "not enough"
    # Test data never enter the choice: make nl_ft terrible on the *test* sets only.
    broken = with_val.copy()
    test_rows = (broken["method"] == "nl_ft") & (broken["set"] == "forget_train")
    broken.loc[test_rows, "value"] = broken.loc[test_rows, "value"] - 0.5
    again = evaluate_study(broken, params)["recommendations"].set_index("task")
    assert again.at["recon", "method"] == "nl_ft"
    # segmentation has no 'val' set here
    assert "no validation data" in recommended.at["segmentation", "reason"]


def test_seed_repeats_are_pooled_per_item(results: pd.DataFrame) -> None:
    params = EvaluationParams.model_validate({"statistics": {"n_resamples": 200}})
    repeat = results.loc[(results["method"] == "nl_ft")].assign(method="nl_ft@seed1")
    repeat["value"] = repeat["value"] + 0.01
    tables = evaluate_study(pd.concat([results, repeat], ignore_index=True), params)
    summary = tables["summary"].set_index(["task", "method", "set", "metric"])
    pooled = summary.loc[("recon", "nl_ft", "retain_test", "ssim")]
    seed0 = summary.loc[("recon", "nl_ft@seed0", "retain_test", "ssim")]
    assert pooled["n_seeds"] == 2 and seed0["n_seeds"] == 1
    assert pooled["mean"] == pytest.approx(seed0["mean"] + 0.005)
    assert ("recon", "nl_ft@seed1", "retain_test", "ssim") in summary.index


def test_evaluation_params_pair_retain_and_forget() -> None:
    with pytest.raises(ValidationError, match="pair up one to one"):
        EvaluationParams.model_validate(
            {"tasks": {"recon": {
                "retain": [{"set": "retain_test", "metric": "ssim"}],
                "forget": [{"set": "forget_train", "metric": "ssim"},
                           {"set": "forget_train", "metric": "psnr"}],
                "attack": {"member_set": "forget_train", "nonmember_set": "forget_test",
                           "metrics": ["ssim"]},
            }}}
        )  # fmt: skip
    with pytest.raises(ValidationError, match="colour map"):
        EvaluationParams.model_validate({"figures": {"error_cmap": "no-such-map"}})
    with pytest.raises(ValidationError, match="must name different models"):
        EvaluationParams.model_validate({"original_method": "x", "oracle_method": "x"})
