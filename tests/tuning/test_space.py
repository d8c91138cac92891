"""Search-space declarations and Optuna sampling."""

from __future__ import annotations

import optuna
import pytest
from pydantic import ValidationError

from med_unlearning.tuning.space import SearchDimension, suggest


def _trial(seed: int = 0) -> optuna.Trial:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return study.ask()


def test_suggest_draws_each_dimension_in_range_with_its_type():
    space = {
        "epochs": SearchDimension(type="int", low=2, high=10),
        "lr": SearchDimension(type="float", low=1e-4, high=1e-2, log=True),
        "pairing": SearchDimension(type="categorical", choices=["forget", "longest"]),
    }
    for seed in range(5):
        values = suggest(_trial(seed), space)
        assert list(values) == ["epochs", "lr", "pairing"]
        assert isinstance(values["epochs"], int) and 2 <= values["epochs"] <= 10
        assert isinstance(values["lr"], float) and 1e-4 <= values["lr"] <= 1e-2
        assert values["pairing"] in ("forget", "longest")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "float", "low": 1.0}, "needs `low` and `high`"),
        ({"type": "float", "low": 2.0, "high": 1.0}, "must not exceed"),
        ({"type": "float", "low": 0.0, "high": 1.0, "log": True}, "log-scale"),
        ({"type": "int", "low": 1.5, "high": 3}, "whole bounds"),
        ({"type": "categorical"}, "non-empty `choices`"),
        ({"type": "categorical", "choices": [1], "low": 0}, "not `low`/`high`"),
        ({"type": "float", "low": 0.1, "high": 1.0, "log": True, "step": 0.1}, "cannot be"),
    ],
)
def test_inconsistent_dimensions_are_refused_with_the_reason(spec, message):
    with pytest.raises(ValidationError, match=message):
        SearchDimension(**spec)


def test_continuous_draws_are_rounded_to_readable_values_inside_the_bounds():
    space = {"noise_scale": SearchDimension(type="float", low=0.1, high=1.0, log=True)}
    for seed in range(10):
        value = suggest(_trial(seed), space)["noise_scale"]
        assert value == float(f"{value:.3g}")
        assert 0.1 <= value <= 1.0
