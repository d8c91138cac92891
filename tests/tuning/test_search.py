"""Seeded Optuna searches: reproducible, start from the current setting, never hide errors."""

from __future__ import annotations

import pytest

from med_unlearning.tuning.objectives import ObjectiveValue
from med_unlearning.tuning.search import TrialResult, run_search
from med_unlearning.tuning.space import SearchDimension

SPACE = {
    "epochs": SearchDimension(type="int", low=1, high=10),
    "noise_scale": SearchDimension(type="float", low=0.05, high=1.0, log=True),
}


def _bowl(params):
    value = (params["epochs"] - 6) ** 2 + (params["noise_scale"] - 0.4) ** 2
    return TrialResult(ObjectiveValue(value, {"epochs_term": (params["epochs"] - 6) ** 2}), 1.0)


def test_the_same_seed_selects_the_same_setting():
    first = run_search(_bowl, SPACE, n_trials=12, seed=3)
    second = run_search(_bowl, SPACE, n_trials=12, seed=3)
    assert first.best_params == second.best_params
    assert first.trials.equals(second.trials)
    assert len(first.trials) == 12
    assert first.best_value == pytest.approx(first.trials["objective"].min())
    assert {"param_epochs", "param_noise_scale", "epochs_term", "cost_s"} <= set(first.trials)


def test_the_current_setting_is_the_first_trial_so_selection_never_does_worse():
    current = {"epochs": 6, "noise_scale": 0.4}
    outcome = run_search(_bowl, SPACE, n_trials=3, seed=0, current=current)
    assert outcome.trials.loc[0, "param_epochs"] == 6
    assert outcome.best_params == {"epochs": 6, "noise_scale": 0.4}
    assert outcome.best_value == 0.0


def test_a_current_value_outside_the_space_is_not_enqueued():
    current = {"epochs": 50, "noise_scale": 0.4}
    outcome = run_search(_bowl, SPACE, n_trials=2, seed=0, current=current)
    assert outcome.trials.loc[0, "param_epochs"] != 50


def test_a_failing_trial_is_an_error_not_a_skipped_trial():
    def broken(params):
        raise RuntimeError("trial exploded")

    with pytest.raises(RuntimeError, match="trial exploded"):
        run_search(broken, SPACE, n_trials=2, seed=0)


def test_non_finite_trials_are_recorded_and_never_selected():
    def sometimes_nan(params):
        value = float("nan") if params["epochs"] == 6 else float(params["epochs"])
        return TrialResult(ObjectiveValue(value), 0.0)

    current = {"epochs": 6, "noise_scale": 0.4}
    outcome = run_search(sometimes_nan, SPACE, n_trials=4, seed=0, current=current)
    assert outcome.trials.loc[0, "state"] == "non-finite"
    assert outcome.best_params["epochs"] != 6
