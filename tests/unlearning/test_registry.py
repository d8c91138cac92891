"""Tests of the strategy registry as the built-in strategies populate it
(med_unlearning.unlearning.registry, with the built-ins of med_unlearning.unlearning.strategies)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from med_unlearning.params.base import StrictModel
from med_unlearning.unlearning.common import PairedParams, StrategyParams
from med_unlearning.unlearning.registry import available_strategies, get_strategy

#: name -> (family, needs retain data, paired forget/retain batches)
ENGINE_STRATEGIES = {
    "ft": ("recon_study", True, False),
    "full_ft": ("recon_study", True, False),
    "ga_l1": ("recon_study", False, False),
    "nl": ("recon_study", False, False),
    "ga_l1_ft": ("recon_study", True, True),
    "nl_ft": ("recon_study", True, True),
    "neggrad_plus": ("baseline", True, True),
    "max_loss": ("segmentation_study", True, True),
    "noisy_label": ("segmentation_study", True, True),
    "retain_label": ("segmentation_study", True, True),
}


@pytest.mark.parametrize("name", sorted(ENGINE_STRATEGIES))
def test_strategy_is_registered_for_both_tasks(name: str) -> None:
    spec = get_strategy(name)
    family, needs_retain, paired = ENGINE_STRATEGIES[name]
    assert spec.tasks == frozenset({"recon", "segmentation"})
    assert (spec.family, spec.needs_retain) == (family, needs_retain)
    assert issubclass(spec.params_model, StrategyParams)
    assert issubclass(spec.params_model, PairedParams) == paired
    assert spec.description
    assert name in available_strategies("recon") and name in available_strategies("segmentation")


@pytest.mark.parametrize("name", sorted(ENGINE_STRATEGIES))
def test_parameters_are_strict_and_defaults_valid(name: str) -> None:
    spec = get_strategy(name)
    assert issubclass(spec.params_model, StrictModel)
    defaults = spec.validate_params(None)
    assert defaults.epochs >= 1
    with pytest.raises(ValidationError, match="typo"):
        spec.validate_params({"typo": 1})


def test_every_registered_strategy_validates_its_default_parameters() -> None:
    for name in available_strategies():
        spec = get_strategy(name)
        assert spec.validate_params({}) is not None, name


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(
        ValueError, match=r"Unknown unlearning strategy 'retrain'; valid: \[.*'ft'.*'nl_ft'"
    ):
        get_strategy("retrain")
