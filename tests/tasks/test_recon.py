"""The reconstruction task: loss, targets, parts, training determinism, checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity
from torch.utils.data import DataLoader

from med_unlearning.data.masks import KspaceUndersampler
from med_unlearning.data.recon_dataset import FastMRISliceDataset, ReconSliceTransform
from med_unlearning.io.checkpoint import (
    CheckpointMetadata,
    ModelCheckpoint,
    load_checkpoint,
    save_checkpoint,
)
from med_unlearning.io.fastmri import FastMRIVolume
from med_unlearning.params.recon import ReconParams
from med_unlearning.tasks import Task
from med_unlearning.tasks.recon import (
    ReconLoss,
    ReconTask,
    ReconTrainingSettings,
    evaluate_reconstructions,
    fit_recon_model,
    model_from_checkpoint,
    reconstruct_volume,
    reconstruct_volumes,
)

TINY_VARNET = {"num_cascades": 1, "chans": 2, "sens_chans": 2}
MASK = {"kind": "equispaced", "accelerations": [4.0], "center_fractions": [0.08]}


def _fft2c(images: np.ndarray) -> np.ndarray:
    shifted = np.fft.ifftshift(images, axes=(-2, -1))
    return np.fft.fftshift(np.fft.fft2(shifted, norm="ortho"), axes=(-2, -1))


def tiny_volume(seed: int = 0, slices: int = 3, size: int = 32, with_max: bool = True) -> FastMRIVolume:
    """Smooth blobs seen by two smooth coils; fastMRI layout and raw scale (~1e-4)."""
    rng = np.random.default_rng(seed)
    rows, cols = np.meshgrid(np.linspace(-1, 1, size), np.linspace(-1, 1, size), indexing="ij")
    images = np.zeros((slices, size, size))
    for index in range(slices):
        for _ in range(4):
            cy, cx = rng.uniform(-0.5, 0.5, size=2)
            images[index] += np.exp(-((rows - cy) ** 2 + (cols - cx) ** 2) / rng.uniform(0.02, 0.2))
    coils = np.stack([np.exp(-((rows - 1) ** 2 + cols**2)), np.exp(-((rows + 1) ** 2 + cols**2))])
    kspace = _fft2c(1e-4 * images[:, None] * coils[None]).astype(np.complex64)
    shifted = np.fft.ifftshift(kspace, axes=(-2, -1))
    coil_images = np.fft.fftshift(np.fft.ifft2(shifted, norm="ortho"), axes=(-2, -1))
    rss = np.sqrt((np.abs(coil_images) ** 2).sum(axis=1)).astype(np.float32)
    attrs = {"acquisition": "AXT2", "max": float(rss.max())} if with_max else {"acquisition": "AXT2"}
    return FastMRIVolume(kspace=kspace, reconstruction=rss, ismrmrd_header=b"", attrs=attrs)


def _batch(volumes: dict, batch_size: int = 3) -> dict:
    dataset = FastMRISliceDataset(volumes, ReconSliceTransform(KspaceUndersampler(**MASK)))
    return next(iter(DataLoader(dataset, batch_size=batch_size, shuffle=False)))


@pytest.fixture(params=["varnet", "unet2d"])
def task_and_model(request) -> tuple[ReconTask, torch.nn.Module]:
    params = TINY_VARNET if request.param == "varnet" else {"chans": 2}
    task = ReconTask(request.param, params)
    torch.manual_seed(0)
    return task, task.build_model()


def test_recon_task_implements_the_task_protocol() -> None:
    assert isinstance(ReconTask(), Task)
    task = ReconTask.from_params(ReconParams.model_validate({"model": {"varnet": TINY_VARNET}}))
    assert task.architecture == "varnet" and task.architecture_params["num_cascades"] == 1
    assert task.loss_settings == ReconLoss()


def test_forward_is_cropped_to_the_target_and_loss_is_finite(task_and_model) -> None:
    task, model = task_and_model
    batch = _batch({"v": tiny_volume()})
    output = task.forward(model, batch)
    assert output.shape == task.target(batch).shape == (3, 32, 32)
    loss = task.loss(model, batch)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_loss_is_finite_without_max_and_uses_the_reconstruction_max() -> None:
    task = ReconTask("varnet", TINY_VARNET)
    torch.manual_seed(0)
    model = task.build_model()
    with_max = _batch({"v": tiny_volume(with_max=True)})
    without_max = _batch({"v": tiny_volume(with_max=False)})
    torch.testing.assert_close(with_max.max_value, without_max.max_value)
    loss = task.loss(model, without_max)
    assert torch.isfinite(loss)
    torch.testing.assert_close(loss, task.loss(model, with_max))


def test_criterion_is_one_minus_ssim_plus_weighted_l1() -> None:
    task = ReconTask(loss=ReconLoss(l1_weight=0.5))
    batch = _batch({"v": tiny_volume()})
    target = task.target(batch)
    output = target + 1e-5 * torch.randn(target.shape, generator=torch.Generator().manual_seed(0))
    per_slice = task.criterion(output, target, batch, reduction="none")
    for index in range(3):
        peak = float(batch.max_value[index])
        ssim = structural_similarity(
            target[index].double().numpy(), output[index].double().numpy(), data_range=peak
        )
        l1 = float((output[index] - target[index]).abs().mean())
        assert float(per_slice[index]) == pytest.approx(1 - ssim + 0.5 * l1, abs=1e-4)
    assert float(task.criterion(output, target, batch)) == pytest.approx(float(per_slice.mean()))
    assert float(task.criterion(target, target, batch)) == pytest.approx(0.0, abs=1e-6)


def test_noisy_target_has_the_requested_raw_scale_and_is_reproducible() -> None:
    task = ReconTask()
    batch = _batch({"v": tiny_volume()})
    first = task.noisy_target(batch, 1e-5, torch.Generator().manual_seed(3))
    second = task.noisy_target(batch, 1e-5, torch.Generator().manual_seed(3))
    torch.testing.assert_close(first, second)
    assert float((first - task.target(batch)).std()) == pytest.approx(1e-5, rel=0.1)
    relative = task.noisy_target(batch, 0.1 * task.data_range(batch)[:, None, None])
    assert float((relative - task.target(batch)).std()) == pytest.approx(
        0.1 * float(batch.max_value.mean()), rel=0.15
    )


def test_parts_split_every_parameter_and_decode_of_encode_is_forward(task_and_model) -> None:
    task, model = task_and_model
    batch = _batch({"v": tiny_volume()})
    parts = task.parts(model)
    encoder = {id(p) for p in parts.encoder_parameters()}
    decoder = {id(p) for p in parts.decoder_parameters()}
    assert encoder and decoder and not encoder & decoder
    assert encoder | decoder == {id(p) for p in model.parameters()}
    features = task.encode(model, batch)
    assert isinstance(features, tuple) and all(isinstance(f, torch.Tensor) for f in features)
    torch.testing.assert_close(task.decode(model, features, batch), task.forward(model, batch))
    assert "encoder=" in repr(parts)


def test_with_inputs_replaces_the_network_input(task_and_model) -> None:
    task, model = task_and_model
    batch = _batch({"v": tiny_volume()})
    inputs = task.inputs(batch)
    changed = task.with_inputs(batch, torch.ones_like(inputs))
    assert changed is not batch and torch.equal(task.inputs(batch), inputs)
    if task.architecture == "varnet":
        unsampled = ~batch.mask.expand_as(inputs)
        assert float(task.inputs(changed)[unsampled].abs().sum()) == 0.0
    else:
        assert torch.equal(task.inputs(changed), torch.ones_like(inputs))


def _fit(seed: int, volumes: dict, epochs: int = 2):
    task = ReconTask("varnet", TINY_VARNET)
    settings = ReconTrainingSettings(
        epochs=epochs, batch_size=2, lr=3e-3, seed=seed, device="cpu", progress=False,
        plateau_patience=5,
    )
    return task, *fit_recon_model(task, volumes, ["v0", "v1"], ["v2"], KspaceUndersampler(**MASK), settings)


def test_training_is_deterministic_on_cpu() -> None:
    volumes = {f"v{index}": tiny_volume(index) for index in range(3)}
    _, model_a, result_a = _fit(5, volumes)
    _, model_b, result_b = _fit(5, volumes)
    columns = ["epoch", "train_loss", "lr", "val_loss", "val_psnr", "val_ssim", "steps", "items"]
    assert result_a.history[columns].equals(result_b.history[columns])
    for (name, a), (_, b) in zip(model_a.state_dict().items(), model_b.state_dict().items()):
        assert torch.equal(a, b), name
    _, _, result_c = _fit(6, volumes)
    assert not result_a.history["train_loss"].equals(result_c.history["train_loss"])


def test_checkpoint_round_trip_restores_identical_outputs(tmp_path: Path) -> None:
    volumes = {f"v{index}": tiny_volume(index) for index in range(3)}
    task, model, result = _fit(0, volumes, epochs=1)
    metadata = CheckpointMetadata(
        task="recon", architecture=task.architecture, architecture_params=task.architecture_params,
        data_manifest=["v0", "v1"], epochs=result.epochs_run, seed=0, extra={"mask": MASK},
    )
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, ModelCheckpoint(model.state_dict(), metadata))
    restored_task, restored = model_from_checkpoint(load_checkpoint(path))
    batch = _batch({"v2": volumes["v2"]})
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(
            restored_task.forward(restored, batch), task.forward(model, batch), rtol=0, atol=0
        )
    from_checkpoint = reconstruct_volume(load_checkpoint(path), volumes["v2"], volume_id="v2")
    from_pair = reconstruct_volume(
        (task, model), volumes["v2"], KspaceUndersampler(**MASK), volume_id="v2"
    )
    assert from_checkpoint.output.shape == (3, 32, 32)
    np.testing.assert_array_equal(from_checkpoint.output, from_pair.output)


def test_model_from_checkpoint_rejects_other_tasks() -> None:
    metadata = CheckpointMetadata(
        task="segmentation", architecture="varnet", architecture_params={}, data_manifest=[]
    )
    with pytest.raises(ValueError, match="not 'recon'"):
        model_from_checkpoint(ModelCheckpoint({}, metadata))


def test_reconstructions_are_stacked_per_volume_and_scored() -> None:
    volumes = {f"v{index}": tiny_volume(index) for index in range(2)}
    task = ReconTask("varnet", TINY_VARNET)
    torch.manual_seed(0)
    model = task.build_model()
    dataset = FastMRISliceDataset(volumes, ReconSliceTransform(KspaceUndersampler(**MASK)))
    loader = DataLoader(dataset, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(0))
    results = reconstruct_volumes(model, task, loader)
    assert sorted(results) == ["v0", "v1"]
    np.testing.assert_array_equal(results["v1"].target, volumes["v1"].reconstruction)
    scores = evaluate_reconstructions(results)
    assert list(scores["volume_id"]) == ["v0", "v1"]
    assert {"psnr", "ssim", "nmse", "zero_filled_psnr", "loss"} <= set(scores.columns)
    assert scores[["psnr", "ssim", "zero_filled_psnr"]].notna().all().all()


def test_recon_loader_orders_and_masks_by_purpose() -> None:
    from med_unlearning.tasks.recon import recon_loader, undersampler_from_checkpoint

    volumes = {f"v{index}": tiny_volume(index) for index in range(2)}
    undersampler = KspaceUndersampler(**MASK)
    evaluation = recon_loader(volumes, ["v1", "v0"], undersampler, batch_size=2)
    ids = [item for batch in evaluation for item in batch.ids]
    assert ids == [f"v{v}:slice {s}" for v in (0, 1) for s in range(3)]
    first = [batch.mask for batch in evaluation]
    assert all(torch.equal(a, b) for a, b in zip(first, [batch.mask for batch in evaluation]))
    training = recon_loader(volumes, ["v0", "v1"], undersampler, batch_size=2, training=True, seed=1)
    torch.manual_seed(0)
    order = [item for batch in training for item in batch.ids]
    assert sorted(order) == sorted(ids) and order != ids
    metadata = CheckpointMetadata(task="recon", architecture="varnet", architecture_params={}, data_manifest=[])
    with pytest.raises(ValueError, match="records no mask"):
        undersampler_from_checkpoint(ModelCheckpoint({}, metadata))


def test_oversampled_kspace_output_is_centre_cropped_to_the_reconstruction(task_and_model) -> None:
    task, model = task_and_model
    full = tiny_volume(size=48)  # k-space 48 x 48, as fastMRI's 640 x 368 around a 320 x 320 target
    cropped = FastMRIVolume(
        kspace=full.kspace,
        reconstruction=np.ascontiguousarray(full.reconstruction[:, 8:40, 8:40]),
        ismrmrd_header=b"",
        attrs=full.attrs,
    )
    batch = _batch({"v": cropped})
    output = task.forward(model, batch)
    assert batch.masked_kspace.shape[-3:-1] == (48, 48)
    assert output.shape == batch.target.shape == (3, 32, 32)
    if task.architecture == "varnet":  # untrained VarNet: its full image, centre-cropped
        full_image = model(batch.masked_kspace, batch.mask)
        torch.testing.assert_close(output, full_image[:, 8:40, 8:40])
