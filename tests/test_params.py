"""Parameter schemas: typos and wrong types fail at start with the key's name."""

from __future__ import annotations

import pytest

from med_unlearning.params import ParameterError, validate_parameters
from med_unlearning.params.runtime import RuntimeParams


def test_runtime_defaults_are_valid() -> None:
    params = validate_parameters({"runtime": {}})
    assert isinstance(params["runtime"], RuntimeParams)
    assert params["runtime"].device == "auto"


def test_misspelt_key_is_named() -> None:
    with pytest.raises(ParameterError, match=r"runtime\.devcie"):
        validate_parameters({"runtime": {"devcie": "cpu"}})


def test_wrong_type_is_named_with_value() -> None:
    with pytest.raises(ParameterError, match=r"runtime\.seed.*'many'"):
        validate_parameters({"runtime": {"seed": "many"}})


def test_unknown_section_is_named() -> None:
    with pytest.raises(ParameterError, match=r"runtmie: unknown parameters section"):
        validate_parameters({"runtmie": {}})


def test_all_problems_reported_together() -> None:
    with pytest.raises(ParameterError) as error:
        validate_parameters({"runtime": {"seed": -1, "precision": "fp8"}, "bogus": 1})
    message = str(error.value)
    assert "runtime.seed" in message and "runtime.precision" in message and "bogus" in message


def test_free_top_level_path_keys_are_allowed() -> None:
    validated = validate_parameters({"data_root": "/tmp/x", "raw": {"fastmri_dir": "/d"}})
    assert validated == {}


def test_project_conf_envs_validate(project_path) -> None:
    """base (with local), test and gpu parameters all pass validation (soft merge over base)."""
    from kedro.config import OmegaConfigLoader

    for env in ("local", "test", "gpu"):
        loader = OmegaConfigLoader(
            conf_source=str(project_path / "conf"),
            base_env="base",
            default_run_env=env,
            merge_strategy={"parameters": "soft"},
        )
        validate_parameters(loader["parameters"])
