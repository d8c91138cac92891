"""The tuning parameters refuse test sets and parameters a strategy does not have."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from med_unlearning.params.tuning import TuningParams

SPACE = {"epochs": {"type": "int", "low": 1, "high": 3}}


def _params(**task):
    block = {
        "retain": {"set": "retain_val", "metric": "ssim"},
        "forget": {"set": "forget_train", "metric": "ssim"},
        "strategies": {"nl_ft": {"space": SPACE}},
        **task,
    }
    return {"tasks": {"recon": block}}


def test_valid_parameters_list_their_searches():
    params = TuningParams.model_validate(_params())
    assert list(params.for_task("recon").searches()) == ["nl_ft"]
    assert params.for_task("segmentation") is None


@pytest.mark.parametrize("test_set", ["retain_test", "forget_test", "test"])
def test_a_test_set_can_never_select_settings(test_set):
    with pytest.raises(ValidationError, match="validation sets"):
        TuningParams.model_validate(_params(retain={"set": test_set, "metric": "ssim"}))
    with pytest.raises(ValidationError, match="validation sets"):
        TuningParams.model_validate(_params(attack={"nonmember_set": test_set}))


@pytest.mark.parametrize("training_set", ["retain_train", "retain", "forget_train"])
def test_training_items_may_select_settings(training_set):
    """Damage to memorised training items is what a retain criterion must see; training
    items are no test set."""
    params = TuningParams.model_validate(_params(retain={"set": training_set, "metric": "ssim"}))
    assert params.for_task("recon").retain.set == training_set


def test_a_dimension_must_be_a_parameter_of_the_strategy():
    bad = _params(strategies={"nl_ft": {"space": {"epochz": SPACE["epochs"]}}})
    with pytest.raises(ValidationError, match=r"\['epochz'\] are not parameters of 'nl_ft'"):
        TuningParams.model_validate(bad)


def test_only_restricts_the_searches_and_must_name_declared_ones():
    both = _params(strategies={"nl_ft": {"space": SPACE}, "nl": {"space": SPACE}}, only=["nl"])
    assert list(TuningParams.model_validate(both).for_task("recon").searches()) == ["nl"]
    with pytest.raises(ValidationError, match="have no search"):
        TuningParams.model_validate(_params(only=["ssd"]))
