"""GPU smoke test: one tiny training step per task and one tiny run per registered unlearning
strategy on CUDA, checked against the same computation on the CPU.

Skipped without CUDA. With CUDA:

- training (both tasks): one step of the project's loop (:func:`med_unlearning.training.train`)
  from identical weights on CPU and CUDA in fp32 (TF32 off): same loss, same change of the
  model's outputs; and in bf16 autocast on CUDA (the ``gpu`` env's precision): a finite loss
  close to the fp32 one;
- unlearning (every registered strategy × task it applies to): one step through the engine
  (:func:`med_unlearning.unlearning.engine.run_unlearning`) on CPU and on CUDA from the same
  original checkpoint. The CUDA run must use the device and give finite weights; the change
  it makes to the model's outputs must match the CPU run's. Strategies whose targets are
  random (``noise_scale``) draw that noise from a generator on the batch's device, whose
  numbers differ between CPU and CUDA by design: they run once as configured (must complete
  on CUDA) and are compared with ``noise_scale = 0``.

Outputs are always compared on the CPU (both checkpoints are rebuilt there), so the
comparison measures what the device did to the weights, not forward-pass rounding.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader

from med_unlearning.data.samples import SegmentationSample
from med_unlearning.io.checkpoint import CheckpointMetadata, ModelCheckpoint
from med_unlearning.training import LoopSettings, train

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

TASKS = ("recon", "segmentation")
#: Relative error allowed between the CPU and CUDA changes of the model's outputs.
CHANGE_TOLERANCE = 0.1
#: Sign-gradient input perturbations flip where the input gradient is ~0, so the boundary
#: strategy's targets may differ on a few voxels between devices.
LOOSER_CHANGE_TOLERANCE = {"boundary": 0.25}
#: Relative tolerance of fp32 losses (CPU vs CUDA, TF32 off) and of bf16 vs fp32 losses.
FP32_LOSS_RTOL = 1e-4
BF16_LOSS_RTOL = 5e-2


@pytest.fixture(autouse=True)
def _plain_fp32() -> Iterator[None]:
    """Turn TF32 off so fp32 on CUDA is comparable with fp32 on the CPU."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


# ---- tiny tasks and data -------------------------------------------------------------------


def _recon_task(device: str) -> tuple[Any, list[Any], list[Any]]:
    """A tiny VarNet task and forget (knee) / retain (brain) batches of sample slices."""
    from med_unlearning.data.masks import KspaceUndersampler
    from med_unlearning.data.recon_dataset import FastMRISliceDataset, ReconSliceTransform
    from med_unlearning.data.sample_fastmri import lazy_fastmri_sample
    from med_unlearning.params.sample_data import FastMRISampleParams
    from med_unlearning.tasks.recon import ReconTask

    params = FastMRISampleParams.model_validate(
        {
            "image_size": [32, 32],
            "num_coils": 2,
            "brain": {"num_volumes": 1, "num_slices": 2},
            "knee": {"num_volumes": 1, "num_slices": 2},
        }
    )
    volumes = {key: generate() for key, generate in lazy_fastmri_sample(params, seed=0).items()}
    transform = ReconSliceTransform(
        KspaceUndersampler("equispaced", [4], [0.08]), mask_seed="per_volume"
    )

    def batches(anatomy: str) -> list[Any]:
        ids = [key for key in volumes if key.startswith(anatomy)]
        dataset = FastMRISliceDataset(volumes, transform, ids, uniform_shape=True)
        return list(DataLoader(dataset, batch_size=2, shuffle=False))

    task = ReconTask(
        "varnet", {"num_cascades": 1, "chans": 4, "pools": 4, "sens_chans": 2, "sens_pools": 4}
    )
    return task, batches("knee"), batches("brain")


def _segmentation_task(device: str) -> tuple[Any, list[Any], list[Any]]:
    """A tiny Med3D ResNet-10 task and forget / retain batches of random patches."""
    from med_unlearning.params.runtime import RuntimeParams
    from med_unlearning.params.segmentation import SegmentationParams
    from med_unlearning.tasks.segmentation import SegmentationTask

    params = SegmentationParams.model_validate(
        {
            "model": {"architecture": "med3d_resnet10", "base_width": 4, "head_channels": 8},
            "training": {"patch_size": [32, 32, 8]},
        }
    )
    task = SegmentationTask.from_params(params, RuntimeParams(device=device))
    generator = torch.Generator().manual_seed(0)

    def batch(subject: str) -> SegmentationSample:
        return SegmentationSample(
            image=torch.randn((2, 1, 32, 32, 8), generator=generator),
            label=torch.randint(0, task.num_classes, (2, 32, 32, 8), generator=generator),
            ids=(subject, subject),
        )

    return task, [batch("forget_1")], [batch("retain_1"), batch("retain_2")]


def _task(name: str, device: str) -> tuple[Any, list[Any], list[Any]]:
    return _recon_task(device) if name == "recon" else _segmentation_task(device)


def _batch_ids(batches: list[Any], task_name: str) -> list[str]:
    key = "volume_id" if task_name == "recon" else "ids"
    return sorted({str(item) for batch in batches for item in batch[key]})


def _checkpoint(task: Any, seed: int, manifest: list[str]) -> ModelCheckpoint:
    torch.manual_seed(seed)
    model = task.build_model()
    metadata = CheckpointMetadata(
        task=task.name,
        architecture=task.architecture,
        architecture_params=dict(task.architecture_params),
        data_manifest=manifest,
        wall_time_s=100.0,
        epochs=1,
        seed=seed,
    )
    return ModelCheckpoint(
        state_dict={key: value.detach().clone() for key, value in model.state_dict().items()},
        metadata=metadata,
    )


def _cpu_outputs(task: Any, state_dict: dict[str, torch.Tensor], batch: Any) -> torch.Tensor:
    """The model's outputs on ``batch``, computed on the CPU in eval mode."""
    torch.manual_seed(0)
    model = task.build_model()
    model.load_state_dict({key: value.detach().cpu() for key, value in state_dict.items()})
    model.eval()
    with torch.no_grad():
        return task.forward(model, batch).float()


def _change_error(before: torch.Tensor, cpu: torch.Tensor, cuda: torch.Tensor) -> float:
    """``||Δcuda − Δcpu|| / ||Δcpu||`` for the output changes Δ = after − before.

    When the CPU run did not change the outputs at all, the CUDA change is measured
    against the size of the outputs instead.
    """
    change_cpu, change_cuda = cpu - before, cuda - before
    scale = change_cpu.norm()
    if scale <= 1e-7 * before.norm():
        scale = before.norm()
    return float((change_cuda - change_cpu).norm() / scale)


# ---- training ------------------------------------------------------------------------------


def _one_training_step(
    task_name: str, device: str, precision: str
) -> tuple[float, dict[str, torch.Tensor]]:
    task, _, retain = _task(task_name, device)
    torch.manual_seed(0)
    model = task.build_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    settings = LoopSettings(
        epochs=1,
        device=device,
        precision=precision,
        grad_clip_norm=1.0,
        progress=False,
        description=f"gpu-smoke.{task_name}",
        max_steps_per_epoch=1,
    )
    result = train(model, retain, task.loss, optimizer, settings)
    assert next(model.parameters()).device.type == torch.device(device).type
    weights = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    return float(result.history["train_loss"].iloc[0]), weights


@pytest.mark.parametrize("task_name", TASKS)
def test_training_step_on_cuda_matches_cpu(task_name: str) -> None:
    loss_cpu, weights_cpu = _one_training_step(task_name, "cpu", "fp32")
    loss_cuda, weights_cuda = _one_training_step(task_name, "cuda", "fp32")
    assert loss_cuda == pytest.approx(loss_cpu, rel=FP32_LOSS_RTOL)

    task, _, retain = _task(task_name, "cpu")
    torch.manual_seed(0)
    initial = {
        key: value.detach().clone() for key, value in task.build_model().state_dict().items()
    }
    before = _cpu_outputs(task, initial, retain[0])
    error = _change_error(
        before,
        _cpu_outputs(task, weights_cpu, retain[0]),
        _cpu_outputs(task, weights_cuda, retain[0]),
    )
    assert error <= CHANGE_TOLERANCE, (
        f"{task_name}: CUDA step changed the outputs differently ({error:.3g})"
    )


@pytest.mark.parametrize("task_name", TASKS)
def test_bf16_training_step_on_cuda_is_close_to_fp32(task_name: str) -> None:
    loss_fp32, _ = _one_training_step(task_name, "cpu", "fp32")
    loss_bf16, weights = _one_training_step(task_name, "cuda", "bf16")
    assert loss_bf16 == pytest.approx(loss_fp32, rel=BF16_LOSS_RTOL)
    assert all(
        torch.isfinite(value).all() for value in weights.values() if value.is_floating_point()
    )


# ---- unlearning strategies -----------------------------------------------------------------


def _strategy_cases() -> list[tuple[str, str]]:
    from med_unlearning.unlearning.registry import available_strategies

    return [(task, name) for task in TASKS for name in available_strategies(task)]


def _smoke_params(strategy: str, *, quiet_noise: bool) -> Any:
    """One epoch of one step; ``noise_scale = 0`` when asked and the strategy has one."""
    from med_unlearning.unlearning.registry import get_strategy

    spec = get_strategy(strategy)
    raw: dict[str, Any] = {"epochs": 1, "max_steps_per_epoch": 1}
    if quiet_noise and "noise_scale" in spec.params_model.model_fields:
        raw["noise_scale"] = 0.0
    return spec.validate_params(raw)


def _unlearn(task_name: str, strategy: str, device: str, *, quiet_noise: bool) -> Any:
    from med_unlearning.unlearning.engine import combined_runs, run_unlearning
    from med_unlearning.unlearning.registry import get_strategy

    spec = get_strategy(strategy)
    task, forget, retain = _task(task_name, device)
    forget_ids, retain_ids = _batch_ids(forget, task_name), _batch_ids(retain, task_name)
    manifest = forget_ids + retain_ids
    original = _checkpoint(task, 0, manifest)
    others = {
        name: _checkpoint(task, index + 1, manifest)
        for index, name in enumerate(combined_runs(strategy))
    }
    from med_unlearning.unlearning.planning import UnlearningPlan
    from med_unlearning.unlearning.result import UnlearningSettings

    return run_unlearning(
        UnlearningPlan.from_ids(forget_ids, retain_ids if spec.needs_retain else []),
        UnlearningSettings(
            strategy,
            _smoke_params(strategy, quiet_noise=quiet_noise),
            seed=0,
            loop=LoopSettings(
                epochs=1, device=device, progress=False, description=f"gpu-smoke.{strategy}"
            ),
        ),
        task,
        original,
        forget,
        retain if spec.needs_retain else None,
        others=others,
    )


@pytest.mark.parametrize(("task_name", "strategy"), _strategy_cases())
def test_strategy_on_cuda_matches_cpu(task_name: str, strategy: str) -> None:
    from med_unlearning.unlearning.registry import get_strategy

    noisy = "noise_scale" in get_strategy(strategy).params_model.model_fields
    if noisy:  # the configured noise must work on CUDA (its generator lives on the device)
        configured = _unlearn(task_name, strategy, "cuda", quiet_noise=False)
        assert configured.record["device"].startswith("cuda")
    outcome_cpu = _unlearn(task_name, strategy, "cpu", quiet_noise=True)
    outcome_cuda = _unlearn(task_name, strategy, "cuda", quiet_noise=True)

    assert outcome_cuda.record["device"].startswith("cuda")
    weights_cuda = outcome_cuda.checkpoint.state_dict
    assert all(
        torch.isfinite(value).all() for value in weights_cuda.values() if value.is_floating_point()
    )

    task, forget, _ = _task(task_name, "cpu")
    before = _cpu_outputs(task, _checkpoint(task, 0, []).state_dict, forget[0])
    error = _change_error(
        before,
        _cpu_outputs(task, outcome_cpu.checkpoint.state_dict, forget[0]),
        _cpu_outputs(task, weights_cuda, forget[0]),
    )
    tolerance = LOOSER_CHANGE_TOLERANCE.get(strategy, CHANGE_TOLERANCE)
    assert error <= tolerance, (
        f"{task_name}.{strategy}: CUDA run changed the outputs differently ({error:.3g})"
    )
