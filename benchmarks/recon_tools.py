"""Reconstruction helpers shared by several benchmarks: reading the raw volumes, the data
of one recon run, and a bare PyTorch training loop to compare the project's loop against."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

__all__ = ["BareEpoch", "ReconSetup", "bare_recon_training", "load_raw_volumes", "recon_setup"]


def load_raw_volumes(folder: Path) -> dict[str, Any]:
    """``{volume id: lazy FastMRIVolume}`` for every ``.h5`` under ``folder`` (the partition
    ids the catalog gives: relative path without ``.h5``)."""
    from med_unlearning.io.fastmri import read_fastmri_volume

    return {
        path.relative_to(folder).with_suffix("").as_posix(): read_fastmri_volume(path)
        for path in sorted(folder.rglob("*.h5"))
    }


@dataclass
class ReconSetup:
    """Everything one reconstruction training run uses, built from typed parameters.

    Attributes:
        task: the :class:`~med_unlearning.tasks.recon.ReconTask`.
        train_set: the training slices (random mask offsets, as the project trains).
        val_set: the validation slices (masks seeded by volume id).
        params: the ``recon`` parameters (:class:`~med_unlearning.params.recon.ReconParams`).
        runtime: the ``runtime`` parameters.
    """

    task: Any
    train_set: Any
    val_set: Any
    params: Any
    runtime: Any


def recon_setup(
    volumes: Mapping[str, Any],
    train_ids: Sequence[str],
    val_ids: Sequence[str],
    recon_params: Mapping[str, Any] | Any,
    runtime_params: Mapping[str, Any] | Any,
) -> ReconSetup:
    """The task and datasets of a recon run, exactly as ``fit_recon_model`` builds them."""
    from med_unlearning.data.masks import KspaceUndersampler
    from med_unlearning.params.recon import ReconParams
    from med_unlearning.params.runtime import RuntimeParams
    from med_unlearning.tasks.recon import ReconTask, slice_dataset

    params = (
        recon_params
        if isinstance(recon_params, ReconParams)
        else ReconParams.model_validate(dict(recon_params))
    )
    runtime = (
        runtime_params
        if isinstance(runtime_params, RuntimeParams)
        else RuntimeParams.model_validate(dict(runtime_params))
    )
    undersampler = KspaceUndersampler(**params.mask.model_dump())
    batch_size = params.training.batch_size
    cache = params.training.cache_volumes

    def dataset(ids: Sequence[str], mask_seed: Any) -> Any:
        return slice_dataset(
            volumes, ids, undersampler, mask_seed=mask_seed, uniform_shape=batch_size > 1,
            cache=cache,
        )

    return ReconSetup(
        task=ReconTask.from_params(params),
        train_set=dataset(train_ids, "random"),
        val_set=dataset(val_ids, "per_volume") if val_ids else None,
        params=params,
        runtime=runtime,
    )


@dataclass
class BareEpoch:
    """One epoch of the bare loop: items trained, seconds, seconds waiting for data."""

    items: int
    epoch_time_s: float
    data_time_s: float


def bare_recon_training(
    setup: ReconSetup, epochs: int, seed: int, *, validate: bool = True
) -> list[BareEpoch]:
    """Train a fresh model of ``setup`` with a plain PyTorch loop; time every epoch.

    The loop does what any hand-written loop does and nothing more: shuffle, move to the
    device, zero the gradients, forward + the task's loss, backward, clip, step, and (with
    ``validate``) the same per-epoch validation pass and plateau scheduler step as the
    project's recon training, so both sides time the same work.
    """
    from med_unlearning.data.samples import ReconSample
    from med_unlearning.device import autocast_dtype, resolve_device
    from med_unlearning.tasks.recon import evaluate_reconstructions, reconstruct_volumes

    params, runtime, task = setup.params, setup.runtime, setup.task
    device = resolve_device(runtime.device)
    training = params.training
    # The project's run applies these settings too: they are configuration, not overhead.
    torch.use_deterministic_algorithms(runtime.deterministic, warn_only=True)
    torch.manual_seed(seed)
    model = task.build_model().to(device)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=training.lr, weight_decay=training.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=training.scheduler.factor, patience=training.scheduler.patience
    )
    generator = torch.Generator().manual_seed(seed)
    pin = device.type == "cuda" if runtime.pin_memory == "auto" else bool(runtime.pin_memory)
    loader = DataLoader(
        setup.train_set,
        batch_size=training.batch_size,
        shuffle=True,
        generator=generator,
        num_workers=runtime.num_workers,
        pin_memory=pin,
        persistent_workers=runtime.num_workers > 0,
    )
    val_loader = (
        DataLoader(setup.val_set, batch_size=training.batch_size, shuffle=False)
        if validate and setup.val_set is not None
        else None
    )
    amp = autocast_dtype(runtime.precision, device)
    non_blocking = device.type == "cuda"

    def to_device(batch: ReconSample) -> ReconSample:
        return ReconSample(
            *(
                value.to(device, non_blocking=non_blocking)
                if isinstance(value, torch.Tensor)
                else value
                for value in batch
            )
        )

    epochs_out = []
    for _ in range(epochs):
        model.train()
        start = time.perf_counter()
        data_time = 0.0
        items = 0
        fetch = time.perf_counter()
        for batch in loader:
            data_time += time.perf_counter() - fetch
            batch = to_device(batch)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                loss = task.loss(model, batch)
            loss.backward()
            if training.grad_clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), training.grad_clip_norm)
            optimizer.step()
            items += len(batch.ids)
            if (
                training.max_steps_per_epoch
                and items >= training.max_steps_per_epoch * training.batch_size
            ):
                break
            fetch = time.perf_counter()
        if val_loader is not None:
            model.eval()
            with torch.no_grad():
                scores = evaluate_reconstructions(
                    reconstruct_volumes(model, task, val_loader, device), include_zero_filled=False
                )
            scheduler.step(float(scores["loss"].mean()))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        epochs_out.append(BareEpoch(items, time.perf_counter() - start, data_time))
    return epochs_out
