"""Tests of med_unlearning.metrics.memorisation: generalisation gaps, warnings, per-label view."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from med_unlearning.metrics.memorisation import (
    FORGET_VS_ORACLE,
    FORGET_VS_UNSEEN,
    TRAINED_VS_UNSEEN,
    forget_label_changes,
    generalisation_gaps,
    memorisation_warnings,
)

SETS = {"retain": ["1", "4", "7"], "forget": ["070", "148"], "test": ["2", "3", "6", "8"],
        "forget_test": ["11", "12", "13"]}


def _results(dice: dict[tuple[str, str], float], lesion: dict[tuple[str, str], float] | None = None,
             jitter: float = 0.01) -> pd.DataFrame:
    """Tidy rows: dice[(method, set)] is the set's mean Dice, items spread by +-jitter."""
    rows = []
    for (method, set_name), value in dice.items():
        ids = SETS[set_name]
        for index, item in enumerate(ids):
            offset = jitter * (index - (len(ids) - 1) / 2)
            metrics = {"dice_mean": value + offset, "dice_white_matter": value + offset}
            if lesion is not None:
                metrics["dice_wm_lesions"] = lesion[(method, set_name)] + offset
            for metric, v in metrics.items():
                rows.append({"task": "segmentation", "method": method, "set": set_name,
                             "item_id": item, "metric": metric, "value": v,
                             "higher_is_better": True})
    return pd.DataFrame(rows)


MEMORISED = {
    ("original", "retain"): 0.80, ("original", "forget"): 0.78, ("original", "test"): 0.60,
    ("oracle", "retain"): 0.80, ("oracle", "forget"): 0.40, ("oracle", "test"): 0.60,
    ("noisy_label", "retain"): 0.79, ("noisy_label", "forget"): 0.42,
    ("noisy_label", "test"): 0.59,
}


def _gap(gaps: pd.DataFrame, model: str, comparison: str) -> pd.Series:
    return gaps[(gaps["model"] == model) & (gaps["comparison"] == comparison)].iloc[0]


def test_generalisation_gaps_of_a_memorising_original() -> None:
    gaps = generalisation_gaps(_results(MEMORISED), n_resamples=200)
    trained = _gap(gaps, "original", TRAINED_VS_UNSEEN)
    assert trained["n_a"] == 5 and trained["n_b"] == 4
    assert trained["gap"] == pytest.approx((3 * 0.80 + 2 * 0.78) / 5 - 0.60)
    assert trained["low"] > 0
    forget = _gap(gaps, "original", FORGET_VS_UNSEEN)
    assert forget["gap"] == pytest.approx(0.18) and forget["low"] > 0.1
    oracle = _gap(gaps, "original", FORGET_VS_ORACLE)
    assert oracle["paired"] and oracle["gap"] == pytest.approx(0.38)
    # The oracle trained on retain only, and never saw the forget subjects.
    assert _gap(gaps, "oracle", TRAINED_VS_UNSEEN)["set_a"] == "retain"
    assert _gap(gaps, "oracle", FORGET_VS_UNSEEN)["high"] < 0
    assert memorisation_warnings(gaps) == []


def test_forget_subjects_are_compared_with_unseen_subjects_of_their_kind() -> None:
    """A second site that every model segments worse: against typical unseen subjects the
    forget subjects look *not* memorised (site effect); against the site's own unseen
    subjects the original's memorisation shows."""
    site = {**MEMORISED, ("original", "forget"): 0.55, ("original", "forget_test"): 0.40,
            ("oracle", "forget"): 0.40, ("oracle", "forget_test"): 0.40}
    gaps = generalisation_gaps(_results(site), n_resamples=200)
    forget = _gap(gaps, "original", FORGET_VS_UNSEEN)
    assert forget["set_b"] == "forget_test" and forget["n_b"] == 3
    assert forget["gap"] == pytest.approx(0.15) and forget["low"] > 0.1
    trained = _gap(gaps, "original", TRAINED_VS_UNSEEN)
    assert trained["set_a"] == "retain+forget" and trained["set_b"] == "test+forget_test"
    assert _gap(gaps, "oracle", TRAINED_VS_UNSEEN)["set_b"] == "test"
    # Without the site's unseen subjects the same results compare with typical ones.
    without = _results(site)
    fallback = generalisation_gaps(without[without["set"] != "forget_test"], n_resamples=200)
    assert _gap(fallback, "original", FORGET_VS_UNSEEN)["set_b"] == "test"
    assert _gap(fallback, "original", FORGET_VS_UNSEEN)["high"] < 0


def test_a_request_with_nothing_to_forget_warns() -> None:
    flat = {key: (0.60 if key[0] == "oracle" or key[1] == "test" else 0.61) for key in MEMORISED}
    warnings = memorisation_warnings(generalisation_gaps(_results(flat), n_resamples=200))
    assert any(w.startswith("Nothing measurable to forget") for w in warnings)
    assert any("no memorisation" in w for w in warnings)
    assert any("no generalisation gap" in w for w in warnings)


def test_one_forget_subject_has_no_interval() -> None:
    one = _results(MEMORISED)
    one = one[~((one["set"] == "forget") & (one["item_id"] == "148"))]
    gaps = generalisation_gaps(one, n_resamples=200)
    oracle = _gap(gaps, "original", FORGET_VS_ORACLE)
    assert oracle["n_a"] == 1 and math.isnan(oracle["low"])
    warnings = memorisation_warnings(gaps)
    assert any("One forget subject" in w for w in warnings)


def test_no_unseen_subjects_no_gaps() -> None:
    results = _results(MEMORISED)
    gaps = generalisation_gaps(results[results["set"] != "test"])
    assert set(gaps["comparison"]) == {FORGET_VS_ORACLE}


def test_forget_label_changes_put_the_label_to_forget_first() -> None:
    lesion = {key: value for key, value in MEMORISED.items()}
    lesion[("original", "forget")] = 0.90      # memorised lesions: the most to forget
    lesion[("oracle", "forget")] = 0.10
    lesion[("noisy_label", "forget")] = 0.15
    table = forget_label_changes(_results(MEMORISED, lesion), n_resamples=200)
    assert list(table["method"].drop_duplicates()) == ["oracle", "noisy_label"]
    first = table[table["method"] == "noisy_label"].iloc[0]
    assert first["label"] == "wm_lesions"
    assert first["to_forget"] == pytest.approx(0.80)
    assert first["change"] == pytest.approx(-0.75)
    assert first["high"] < 0 and first["n"] == 2
    wm = table[(table["method"] == "noisy_label") & (table["label"] == "white_matter")].iloc[0]
    assert wm["change"] == pytest.approx(-0.36)
    assert "mean" not in set(table["label"])
