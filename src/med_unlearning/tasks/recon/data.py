"""The reconstruction data of a task: the one way to build slice datasets and loaders.

Training, validation, unlearning (forget/retain), evaluation, inference and the
benchmarks all build their fastMRI slice datasets with :func:`slice_dataset`, so a slice
is served the same way everywhere: training masks get a random offset per item (seeded
through torch's RNG), evaluation masks are seeded by the volume id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import torch
from torch.utils.data import DataLoader

from med_unlearning.data.masks import KspaceUndersampler
from med_unlearning.data.recon_dataset import (
    FastMRISliceDataset,
    ReconSliceTransform,
    VolumeSource,
)
from med_unlearning.io.checkpoint import ModelCheckpoint
from med_unlearning.training import make_loader

__all__ = ["recon_loader", "slice_dataset", "undersampler_from_checkpoint"]


def slice_dataset(
    volumes: Mapping[str, VolumeSource],
    volume_ids: Sequence[str] | None,
    undersampler: KspaceUndersampler,
    *,
    mask_seed: Literal["per_volume", "random"],
    uniform_shape: bool = False,
    cache: bool = False,
) -> FastMRISliceDataset:
    """The slices of ``volume_ids`` (``None`` = every volume) as undersampled samples.

    Args:
        mask_seed: ``random`` (training: a new mask offset per item) or ``per_volume``
            (validation/test: seeded by the volume id).
        uniform_shape: require one matrix size (needed to batch more than one slice).
        cache: read each used volume into memory once.
    """
    return FastMRISliceDataset(
        volumes,
        ReconSliceTransform(undersampler, mask_seed=mask_seed),
        volume_ids,
        uniform_shape=uniform_shape,
        cache=cache,
    )


def recon_loader(
    volumes: Mapping[str, VolumeSource],
    volume_ids: Sequence[str],
    undersampler: KspaceUndersampler,
    *,
    batch_size: int = 1,
    training: bool = False,
    seed: int = 0,
    cache: bool = False,
    num_workers: int = 0,
    pin_memory: bool | str = "auto",
    device: torch.device | str = "auto",
) -> DataLoader:
    """A loader of reconstruction batches over the slices of ``volume_ids``.

    ``training=True`` shuffles (seeded) and draws a random mask offset per item;
    ``training=False`` keeps the order and seeds each volume's mask by its file name (the
    validation/test masks). Batches above 1 need volumes of one matrix size.
    Unlearning strategies use this for their forget and retain loaders.
    """
    dataset = slice_dataset(
        volumes,
        volume_ids,
        undersampler,
        mask_seed="random" if training else "per_volume",
        uniform_shape=batch_size > 1,
        cache=cache,
    )
    return make_loader(
        dataset, batch_size, shuffle=training, seed=seed, num_workers=num_workers,
        pin_memory=pin_memory, device=device,
    )


def undersampler_from_checkpoint(checkpoint: ModelCheckpoint) -> KspaceUndersampler:
    """The mask a recon checkpoint was trained with (its ``extra["mask"]``).

    Raises:
        ValueError: the checkpoint records no mask settings.
    """
    mask = checkpoint.metadata.extra.get("mask")
    if not mask:
        raise ValueError(
            f"checkpoint {checkpoint.content_hash[:12]} records no mask settings "
            "(extra['mask']); pass an undersampler"
        )
    return KspaceUndersampler(**mask)
