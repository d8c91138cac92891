"""conf/gpu: loads through the schema; its settings agree with each other and the studies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from med_unlearning.params import validate_parameters
from med_unlearning.unlearning.grid import study_runs


@pytest.fixture(scope="module")
def gpu_params(project_path: Path) -> dict[str, Any]:
    """conf/gpu merged softly over conf/base, exactly as ``kedro run --env gpu`` loads it."""
    from kedro.config import OmegaConfigLoader

    loader = OmegaConfigLoader(
        conf_source=str(project_path / "conf"),
        base_env="base",
        default_run_env="gpu",
        merge_strategy={"parameters": "soft"},
    )
    return validate_parameters(loader["parameters"])


def test_gpu_params_load_through_the_schema(gpu_params: dict[str, Any]) -> None:
    assert gpu_params["runtime"].precision == "bf16"
    assert gpu_params["segmentation"].model.architecture == "med3d_resnet50"
    assert tuple(gpu_params["segmentation"].training.patch_size) == (128, 128, 48)
    assert gpu_params["recon"].model.varnet.num_cascades == 12
    # every run of the grid gets valid typed parameters from the merged blocks
    unlearning = gpu_params["unlearning"]
    for task in ("recon", "segmentation"):
        for spec in study_runs(task):
            unlearning.for_task(task).strategy_params(spec)


def test_segmentation_unlearning_head_multiplier_equals_trainings(
    gpu_params: dict[str, Any],
) -> None:
    """A strategy that updates the head with SGD uses the head multiplier the model was
    trained with (the study's 100x), not conf/base's sample value (10x)."""
    training = gpu_params["segmentation"].training.optimizer.head_lr_multiplier
    assert training == 100.0
    block = gpu_params["unlearning"].segmentation
    checked = []
    for spec in study_runs("segmentation"):
        typed = block.strategy_params(spec)
        if getattr(typed, "optimizer", None) != "sgd" or typed.trainable == "encoder":
            continue
        assert typed.head_lr_multiplier == training, (spec.run, typed.head_lr_multiplier)
        checked.append(spec.run)
    assert {"ft", "nl", "noisy_label", "boundary"} <= set(checked)


def test_gpu_boundary_is_not_the_known_no_op(gpu_params: dict[str, Any]) -> None:
    """conf/base records that the bilevel study's SGD 1e-5 left every figure unchanged."""
    for task in ("recon", "segmentation"):
        spec = next(s for s in study_runs(task) if s.run == "boundary")
        typed = gpu_params["unlearning"].for_task(task).strategy_params(spec)
        assert not (typed.optimizer == "sgd" and typed.lr <= 1e-5), (task, typed)

