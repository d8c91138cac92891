"""Build a task and its unlearning data from parameters: one entry point for every task.

An unlearning run needs the task its original was trained with and loaders of the forget
items and of the retain subset. :func:`task_for_checkpoint` and :func:`unlearning_loaders`
give both for any task name, so a caller (the Kedro node, a script, a notebook) never
branches on the task:

- reconstruction: the checkpoint's own architecture, loss and encoder split
  (:meth:`~med_unlearning.tasks.recon.ReconTask.from_checkpoint`); slice loaders whose
  masks get random offsets as in training, with the original's mask settings;
- segmentation: the ``segmentation`` parameters' task (data handling, loss, inference)
  with the network the checkpoint holds; random-patch loaders of the chosen subjects.

Raw parameter mappings are validated into their typed models here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch.utils.data import DataLoader

from med_unlearning.data.masks import KspaceUndersampler
from med_unlearning.data.recon_dataset import VolumeSource
from med_unlearning.data.seg_dataset import SubjectVolume
from med_unlearning.io.checkpoint import ModelCheckpoint
from med_unlearning.params.base import typed_params
from med_unlearning.params.recon import ReconParams
from med_unlearning.params.runtime import RuntimeParams
from med_unlearning.params.segmentation import SegmentationParams
from med_unlearning.tasks.base import Task
from med_unlearning.tasks.recon import ReconTask, recon_loader
from med_unlearning.tasks.segmentation import SegmentationTask

__all__ = [
    "TASK_NAMES",
    "LoaderIds",
    "Loaders",
    "recon_task_for",
    "segmentation_task_for",
    "task_for_checkpoint",
    "unlearning_loaders",
]

logger = logging.getLogger(__name__)

#: The forget loader and the retain loader (``None`` when the run uses no retain data).
Loaders = tuple[DataLoader, DataLoader | None]


@dataclass(frozen=True)
class LoaderIds:
    """The items an unlearning run's loaders serve (e.g. an
    :class:`~med_unlearning.unlearning.planning.UnlearningPlan`)."""

    forget_ids: Sequence[str]
    retain_ids: Sequence[str]


def recon_task_for(original: ModelCheckpoint, params: ReconParams) -> ReconTask:
    """The reconstruction task the original was trained with (its metadata, else ``params``)."""
    return ReconTask.from_checkpoint(original, defaults=params)


def segmentation_task_for(
    original: ModelCheckpoint, params: SegmentationParams, runtime: RuntimeParams
) -> SegmentationTask:
    """The segmentation task of ``segmentation`` parameters, with the network the original
    was trained with.

    The checkpoint decides the architecture (the model to unlearn is *that* model); the
    parameters give data handling, loss and inference. Label mapping and modalities must
    agree, since they define what the network's channels mean.

    Raises:
        ValueError: the checkpoint records another label mapping or modality list.
    """
    task = SegmentationTask.from_params(params, runtime)
    meta = original.metadata
    recorded = {
        "label_mapping": meta.extra.get("label_mapping", task.label_mapping.name),
        "modalities": list(meta.extra.get("modalities", task.modalities)),
    }
    expected = {"label_mapping": task.label_mapping.name, "modalities": list(task.modalities)}
    if recorded != expected:
        raise ValueError(
            f"segmentation.original.checkpoint was trained with {recorded} but the segmentation "
            f"parameters give {expected}; use the parameters the checkpoint was trained with"
        )
    if (meta.architecture, dict(meta.architecture_params)) != (
        task.architecture,
        task.architecture_params,
    ):
        logger.warning(
            "segmentation parameters describe %s %s but the original checkpoint holds %s %s; "
            "unlearning the checkpoint's network",
            task.architecture,
            task.architecture_params,
            meta.architecture,
            meta.architecture_params,
        )
        task.architecture = meta.architecture
        task.architecture_params = dict(meta.architecture_params)
    return task


def _recon_loaders(
    task: Task,
    volumes: Mapping[str, VolumeSource],
    ids: LoaderIds,
    original: ModelCheckpoint,
    params: ReconParams,
    data: Any,
    runtime: RuntimeParams,
    seed: int,
) -> Loaders:
    """Shuffled slice loaders; masks as the original's (``extra["mask"]``, else
    ``recon.mask``) with random offsets, as in training."""
    batch_size = data.batch_size or params.training.batch_size
    cache = params.training.cache_volumes if data.cache_volumes is None else data.cache_volumes
    mask = original.metadata.extra.get("mask") or params.mask.model_dump()
    undersampler = KspaceUndersampler(**mask)

    def loader(item_ids: Sequence[str], stream: int) -> DataLoader:
        return recon_loader(
            volumes,
            item_ids,
            undersampler,
            batch_size=batch_size,
            training=True,
            seed=seed + stream,
            cache=cache,
            num_workers=runtime.num_workers,
            pin_memory=runtime.pin_memory,
            device=runtime.device,
        )

    retain = loader(ids.retain_ids, 1) if ids.retain_ids else None  # built first, as always
    return loader(ids.forget_ids, 0), retain


def _segmentation_loaders(
    task: Task,
    subjects: Mapping[str, SubjectVolume],
    ids: LoaderIds,
    original: ModelCheckpoint,
    params: SegmentationParams,
    data: Any,
    runtime: RuntimeParams,
    seed: int,
) -> Loaders:
    """Random-patch loaders of the preprocessed ``subjects`` (``segmentation.subjects``).

    Raises:
        ValueError: a planned subject is not among ``subjects``.
    """
    if not isinstance(task, SegmentationTask):
        raise TypeError(f"segmentation loaders need a SegmentationTask, got {task!r}")
    training = params.training
    absent = [item for item in [*ids.forget_ids, *ids.retain_ids] if item not in subjects]
    if absent:
        raise ValueError(
            f"subjects {absent} of the unlearning plan are not in segmentation.subjects "
            f"(holds {sorted(subjects)}); run the segmentation pipeline with these splits"
        )

    def loader(item_ids: Sequence[str], stream: int) -> DataLoader:
        return task.patch_loader(
            [subjects[item] for item in item_ids],
            data.patch_size or training.patch_size,
            data.samples_per_subject or training.samples_per_subject,
            training.pos_fraction if data.pos_fraction is None else data.pos_fraction,
            batch_size=data.batch_size or training.batch_size,
            seed=seed + stream,
            num_workers=runtime.num_workers,
            pin_memory=runtime.pin_memory,
            device=runtime.device,
        )

    retain = loader(ids.retain_ids, 1) if ids.retain_ids else None  # built first, as always
    return loader(ids.forget_ids, 0), retain


@dataclass(frozen=True)
class _TaskBuilders:
    params: type
    task: Callable[[ModelCheckpoint, Any, RuntimeParams], Task]
    loaders: Callable[..., Loaders]


_BUILDERS: dict[str, _TaskBuilders] = {
    "recon": _TaskBuilders(
        ReconParams, lambda original, params, runtime: recon_task_for(original, params),
        _recon_loaders,
    ),
    "segmentation": _TaskBuilders(SegmentationParams, segmentation_task_for, _segmentation_loaders),
}

#: The task names the builders know.
TASK_NAMES = tuple(_BUILDERS)


def _builders(task_name: str) -> _TaskBuilders:
    if task_name not in _BUILDERS:
        raise ValueError(f"unknown task {task_name!r}; tasks: {list(_BUILDERS)}")
    return _BUILDERS[task_name]


def task_for_checkpoint(
    task_name: str,
    original: ModelCheckpoint,
    task_params: Any,
    runtime: RuntimeParams | Mapping[str, Any] | None = None,
) -> Task:
    """The task ``original`` was trained with, completed by the task's parameters.

    Args:
        task_name: ``recon`` or ``segmentation``.
        original: the checkpoint to unlearn from.
        task_params: the task's parameter section (typed, or a raw mapping).
        runtime: the ``runtime`` section (device, precision); ``None`` = defaults.
    """
    builders = _builders(task_name)
    runtime = typed_params(RuntimeParams, {} if runtime is None else runtime)
    return builders.task(original, typed_params(builders.params, task_params), runtime)


def unlearning_loaders(
    task: Task,
    data: Mapping[str, Any],
    ids: LoaderIds | Any,
    original: ModelCheckpoint,
    task_params: Any,
    data_params: Any,
    runtime: RuntimeParams | Mapping[str, Any] | None,
    seed: int,
) -> Loaders:
    """The shuffled forget loader (stream ``seed``) and retain loader (stream ``seed + 1``,
    ``None`` without retain ids) of an unlearning run.

    Args:
        task: the run's task (:func:`task_for_checkpoint`).
        data: the task's items: reconstruction volumes or preprocessed segmentation subjects.
        ids: has ``forget_ids`` and ``retain_ids`` (e.g. the run's ``UnlearningPlan``).
        original: the checkpoint being unlearned (reconstruction: its mask settings).
        task_params: the task's parameter section (its training settings are the defaults).
        data_params: the run's ``unlearning.<task>.data`` block (``null`` fields = defaults).
        runtime: the ``runtime`` section (workers, pinning, device).
        seed: the run's seed.
    """
    builders = _builders(task.name)
    runtime = typed_params(RuntimeParams, {} if runtime is None else runtime)
    params = typed_params(builders.params, task_params)
    return builders.loaders(task, data, ids, original, params, data_params, runtime, seed)
