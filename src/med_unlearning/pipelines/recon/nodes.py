"""Nodes of the ``recon`` pipeline: thin wrappers over :mod:`med_unlearning.tasks.recon`.

Also holds :class:`ReconstructionH5Dataset`, the small Kedro dataset that writes a
reconstruction in fastMRI's submission convention (one HDF5 file per volume holding a
``reconstruction`` dataset), used inside a ``PartitionedDataset``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from kedro.io import AbstractDataset

from med_unlearning.data.masks import KspaceUndersampler
from med_unlearning.data.recon_dataset import (
    VolumeSource,
    load_volumes,
    read_reconstruction_h5,
    write_reconstruction_h5,
)
from med_unlearning.data.splits import RETAIN_VAL, ids_with_roles, split_by_selector
from med_unlearning.io.checkpoint import CheckpointMetadata, ModelCheckpoint
from med_unlearning.io.lineage import SPLITS_HASH_KEY, splits_table_hash
from med_unlearning.params.base import typed_params
from med_unlearning.params.recon import ReconParams
from med_unlearning.params.runtime import RuntimeParams
from med_unlearning.tasks.recon import (
    ReconTask,
    ReconTrainingSettings,
    fit_recon_model,
    model_from_checkpoint,
    reconstruct_volume,
)
from med_unlearning.training import ResumeSettings, resume_key

__all__ = [
    "ReconstructionH5Dataset",
    "make_reconstruct_node",
    "make_train_node",
    "reconstruct_split_volumes",
    "split_recon_volumes",
    "train_recon_run",
]

logger = logging.getLogger(__name__)

#: The columns of the ``recon.splits`` table.
SPLIT_COLUMNS = ("volume_id", "anatomy", "role")


def split_recon_volumes(
    fastmri_metadata: pd.DataFrame, params: ReconParams, runtime: RuntimeParams
) -> pd.DataFrame:
    """Split the fastMRI volumes into retain/forget train, validation and test (by volume).

    Returns:
        ``recon.splits``: columns ``volume_id``, ``anatomy``, ``role``, sorted by id.
    """
    params, runtime = typed_params(ReconParams, params), typed_params(RuntimeParams, runtime)
    seed = runtime.seed if params.splits.seed is None else params.splits.seed
    splits = split_by_selector(
        fastmri_metadata,
        params.forget.to_selector(),
        params.splits.to_counts(),
        seed=seed,
        id_column="volume_id",
        group_column=params.splits.group_column,
        keep_columns=("anatomy",),
        include=params.splits.include,
    )
    counts = splits.groupby(["role", "anatomy"]).size().to_dict()
    logger.info(
        "recon splits (seed %d, forget %s): %s", seed, params.forget.to_selector().describe(), counts
    )
    return splits


def _resume_settings(
    run_name: str,
    params: ReconParams,
    runtime: RuntimeParams,
    train_ids: list[str],
    val_ids: list[str],
) -> ResumeSettings | None:
    """Where run ``run_name`` keeps its epoch checkpoints (``runtime.resume_dir``), keyed by
    everything that defines the run except its epoch count (so a run can be extended)."""
    if runtime.checkpoint_every == 0 and not runtime.resume:
        return None
    recipe = params.model_dump(
        mode="json", exclude={"reconstructions": True, "training": {"epochs"}}
    )
    key = resume_key("recon", run_name, recipe, train_ids, val_ids, runtime.seed, runtime.precision)
    return ResumeSettings(
        path=Path(runtime.resume_dir) / "recon" / f"{run_name}.pt",
        every=runtime.checkpoint_every,
        resume=runtime.resume,
        key=key,
    )


def _undersampler(params: ReconParams) -> KspaceUndersampler:
    return KspaceUndersampler(**params.mask.model_dump())


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def train_recon_run(
    run_name: str,
    volumes: Mapping[str, VolumeSource],
    splits: pd.DataFrame,
    params: ReconParams,
    runtime: RuntimeParams,
) -> tuple[ModelCheckpoint, pd.DataFrame]:
    """Train run ``run_name`` (``original``, ``oracle``, ``reference``) on its split roles.

    Every run validates on ``retain_val`` only (never on forget-domain items) and is seeded
    with ``runtime.seed + seed_offset`` (the ``reference``: the oracle's recipe, seed + 1).

    Returns:
        The checkpoint (weights + lineage: architecture, the training volume ids, wall time,
        epochs, seed, mask and loss settings) and the per-epoch history.
    """
    params, runtime = typed_params(ReconParams, params), typed_params(RuntimeParams, runtime)
    if run_name not in params.runs:
        raise ValueError(f"recon.runs has no run {run_name!r}; defined: {sorted(params.runs)}")
    run = params.runs[run_name]
    train_ids = ids_with_roles(splits, run.train_roles, id_column="volume_id")
    val_ids = ids_with_roles(splits, [RETAIN_VAL], id_column="volume_id")
    if not train_ids:
        raise ValueError(
            f"recon.{run_name}: the splits table has no volume with roles {run.train_roles}"
        )
    task = ReconTask.from_params(params)
    seed = runtime.seed + run.seed_offset
    settings = ReconTrainingSettings.from_params(
        params, runtime, description=f"recon.{run_name}", seed=seed
    )
    resume = _resume_settings(run_name, params, runtime, train_ids, val_ids)
    settings = replace(settings, resume=resume)
    model, result = fit_recon_model(
        task, volumes, train_ids, val_ids, _undersampler(params), settings
    )
    history = result.history.copy()
    last = history.iloc[-1]
    metadata = CheckpointMetadata(
        task=task.name,
        architecture=task.architecture,
        architecture_params=task.architecture_params,
        data_manifest=train_ids,
        wall_time_s=float(result.wall_time_s),
        epochs=int(result.epochs_run),
        seed=seed,
        extra={
            "run": run_name,
            SPLITS_HASH_KEY: splits_table_hash(splits, "volume_id"),
            "train_roles": list(run.train_roles),
            "val_ids": val_ids,
            "mask": params.mask.model_dump(),
            "loss": params.loss.model_dump(),
            "encoder_cascades": params.model.encoder_cascades,
            "training": params.training.model_dump(),
            "final": {
                key: _finite_or_none(float(last[key]))
                for key in ("train_loss", "val_loss", "val_psnr", "val_ssim")
                if key in last
            },
        },
    )
    state_dict = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    checkpoint = ModelCheckpoint(state_dict=state_dict, metadata=metadata)
    logger.info("recon.%s trained in %.1fs: %r", run_name, result.wall_time_s, checkpoint)
    return checkpoint, history


def reconstruct_split_volumes(
    checkpoint: ModelCheckpoint,
    volumes: Mapping[str, VolumeSource],
    splits: pd.DataFrame,
    params: ReconParams,
    runtime: RuntimeParams,
) -> dict[str, np.ndarray]:
    """Reconstruct the volumes of ``recon.reconstructions.roles`` when asked.

    Returns:
        ``{volume id: reconstruction [slices, h, w]}`` — empty unless
        ``recon.reconstructions.write`` is true.
    """
    params, runtime = typed_params(ReconParams, params), typed_params(RuntimeParams, runtime)
    if not params.reconstructions.write:
        return {}
    volume_ids = ids_with_roles(splits, params.reconstructions.roles, id_column="volume_id")
    task_and_model = model_from_checkpoint(checkpoint, runtime.device)
    undersampler = _undersampler(params)
    outputs = {}
    for volume_id, volume in load_volumes(volumes, volume_ids).items():
        result = reconstruct_volume(
            task_and_model, volume, undersampler, volume_id=volume_id,
            batch_size=params.inference_batch_size(), device=runtime.device,
        )
        outputs[volume_id] = result.output
    logger.info(
        "Reconstructed %d volumes with checkpoint %s", len(outputs), checkpoint.content_hash[:12]
    )
    return outputs


def make_train_node(run_name: str) -> Callable[..., tuple[ModelCheckpoint, pd.DataFrame]]:
    """The training node function of run ``run_name`` (for the namespaced pipeline)."""

    def train_recon_model(
        volumes: Mapping[str, VolumeSource],
        splits: pd.DataFrame,
        params: ReconParams,
        runtime: RuntimeParams,
    ) -> tuple[ModelCheckpoint, pd.DataFrame]:
        return train_recon_run(run_name, volumes, splits, params, runtime)

    train_recon_model.__doc__ = f"Train the ``{run_name}`` reconstruction model. " + (
        train_recon_run.__doc__ or ""
    )
    return train_recon_model


def make_reconstruct_node(run_name: str) -> Callable[..., dict[str, np.ndarray]]:
    """The reconstruction node function of run ``run_name``."""

    def reconstruct_volumes(
        checkpoint: ModelCheckpoint,
        volumes: Mapping[str, VolumeSource],
        splits: pd.DataFrame,
        params: ReconParams,
        runtime: RuntimeParams,
    ) -> dict[str, np.ndarray]:
        return reconstruct_split_volumes(checkpoint, volumes, splits, params, runtime)

    reconstruct_volumes.__doc__ = f"Reconstruct volumes with the ``{run_name}`` model. " + (
        reconstruct_split_volumes.__doc__ or ""
    )
    return reconstruct_volumes


class ReconstructionH5Dataset(AbstractDataset[np.ndarray, np.ndarray]):
    """One reconstruction ``[slices, h, w]`` as a fastMRI-style HDF5 file.

    The file holds a float32 dataset ``reconstruction`` (fastMRI's submission format);
    writes are atomic. Use inside a ``partitions.PartitionedDataset`` with
    ``filename_suffix: .h5``.
    """

    def __init__(self, *, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = Path(filepath)
        self.metadata = metadata

    def load(self) -> np.ndarray:
        return read_reconstruction_h5(self._filepath)

    def save(self, data: np.ndarray) -> None:
        write_reconstruction_h5(self._filepath, data)

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
