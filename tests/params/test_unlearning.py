"""Tests for med_unlearning.params.unlearning (the ``unlearning`` parameters section)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from med_unlearning.params import ParameterError, validate_section
from med_unlearning.params.unlearning import UnlearningParams
from med_unlearning.unlearning.grid import HORIZON_SWEEP, RETAIN_SWEEP, UnlearningRunSpec


def test_defaults_are_the_studies_requests() -> None:
    params = UnlearningParams()
    assert params.recon.request.to_request().describe() == "anatomy in ['knee']"
    assert params.segmentation.request.to_request().describe() == "role in ['forget_train']"
    assert params.for_task("recon") is params.recon
    with pytest.raises(ValueError, match="unknown task"):
        params.for_task("ct")


def test_strategy_blocks_are_validated_by_their_own_models() -> None:
    params = UnlearningParams.model_validate(
        {"recon": {"strategies": {"nl_ft": {"noise_scale": 0.2, "epochs": 2}}}}
    )
    typed = params.recon.strategy_params(UnlearningRunSpec("recon", "nl_ft"))
    assert (typed.noise_scale, typed.epochs) == (0.2, 2)
    assert params.recon.strategy_params(UnlearningRunSpec("recon", "ft")).epochs == 1  # defaults


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"recon": {"strategies": {"retrain": {}}}},
            r"Unknown unlearning strategy 'retrain'; valid: \[",
        ),
        ({"recon": {"strategies": {"nl": {"noise_scale": -0.1}}}}, "nl.noise_scale"),
        ({"recon": {"strategies": {"ft": {"retain_fraction": 0}}}}, "ft.retain_fraction"),
        ({"segmentation": {"strategies": {"ft": {"retain_fraction": 1.01}}}}, "ft.retain_fraction"),
        ({"recon": {"retain_fractions": {"r1": 0.01}}}, "exactly the retain_fraction variants"),
        (
            {
                "recon": {
                    "retain_fractions": {
                        "r1": 0.0,
                        "r5": 0.05,
                        "r10": 0.1,
                        "r20": 0.2,
                        "r50": 0.5,
                        "r100": 1.0,
                    }
                }
            },
            r"\(0, 1\]",
        ),
        ({"segmentation": {"horizons": {"short": 0, "long": 5}}}, "horizon epochs must be >= 1"),
        (
            {"recon": {"request": {"column": "anatomy", "values": ["knee"], "ids": ["x"]}}},
            "exactly one",
        ),
        ({"recon": {"default_retain_fraction": 0}}, "default_retain_fraction"),
        ({"recon": {"data": {"batch_size": 0}}}, "batch_size"),
        ({"mri": {}}, "mri"),
    ],
)
def test_bad_values_are_clear_errors(raw: dict, message: str) -> None:
    with pytest.raises((ValidationError, ParameterError), match=message):
        validate_section("unlearning", raw)


def test_sweep_variants_override_one_parameter() -> None:
    params = UnlearningParams.model_validate(
        {
            "recon": {"strategies": {"ft": {"retain_fraction": 0.1, "epochs": 3}}},
            "segmentation": {"horizons": {"short": 4, "long": 9}},
        }
    )
    ft_r50 = params.recon.strategy_params(UnlearningRunSpec("recon", "ft", RETAIN_SWEEP, "r50"))
    assert (ft_r50.retain_fraction, ft_r50.epochs) == (0.5, 3)
    long = params.segmentation.strategy_params(
        UnlearningRunSpec("segmentation", "noisy_label", HORIZON_SWEEP, "long")
    )
    assert long.epochs == 9


def test_retain_fraction_falls_back_to_the_task_default() -> None:
    params = UnlearningParams.model_validate({"segmentation": {"default_retain_fraction": 0.3}})
    task = params.segmentation
    assert (
        task.retain_fraction(task.strategy_params(UnlearningRunSpec("segmentation", "ft"))) == 0.1
    )

    class NoFraction:
        pass

    assert task.retain_fraction(NoFraction()) == 0.3  # type: ignore[arg-type]


def test_a_block_for_a_strategy_of_another_task_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    from med_unlearning.params.base import StrictModel
    from med_unlearning.unlearning import registry

    class NoParams(StrictModel):
        pass

    spec = registry.StrategySpec(
        "labels_only",
        lambda run, params: None,
        NoParams,
        frozenset({"segmentation"}),
        False,
        "baseline",
        "needs class labels",
    )
    monkeypatch.setitem(registry._REGISTRY, "labels_only", spec)
    UnlearningParams.model_validate({"segmentation": {"strategies": {"labels_only": {}}}})
    with pytest.raises(ValidationError, match="does not apply to task 'recon'.*needs class labels"):
        UnlearningParams.model_validate({"recon": {"strategies": {"labels_only": {}}}})
