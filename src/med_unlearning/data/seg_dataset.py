"""MRBrainS18-layout subjects as torch data: loading, preprocessing, patch sampling.

A subject folder holds ``pre/reg_T1.nii.gz`` (or ``pre/T1.nii.gz``), ``pre/reg_IR.nii.gz``,
``pre/FLAIR.nii.gz`` and ``segm.nii.gz``; modality files are chosen as the metadata table does
(:func:`~med_unlearning.data.metadata.group_mrbrains_partitions`). The Kedro catalog hands
this module a mapping from partition ids (``"070/pre/T1"``, ``"070/segm"``) to zero-argument
callables that return lazy nibabel images (a ``PartitionedDataset`` of ``NiftiDataset``);
nothing here opens files itself, so the functions work the same with or without Kedro.

Preprocessing, once per subject (:func:`load_subject`), with MONAI transforms:

1. stack the requested modalities as channels (``[C, X, Y, Z]``, float32), map the labels
   with a :class:`~med_unlearning.data.labels.LabelMapping`;
2. crop to the foreground box (MONAI ``CropForeground`` on a mask of the voxels where some
   modality exceeds a fraction of its 99th percentile — MR background is noise, not zero —
   or the label is not background, plus a margin); the box is kept so that predictions can
   be put back on the full grid;
3. z-score each channel over its non-zero voxels (``NormalizeIntensity(nonzero=True,
   channel_wise=True)``); exact zeros (e.g. padding) stay 0.

Training draws random patches (:class:`PatchDataset`, ``RandCropByPosNegLabeld`` centred on
labelled or on non-air background voxels); whole volumes are segmented by sliding-window
inference (see :mod:`med_unlearning.tasks.segmentation`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import nibabel as nib
import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import CropForeground, NormalizeIntensity, RandCropByPosNegLabeld, SpatialPad
from monai.transforms.utils import map_binary_to_indices
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from med_unlearning.data.labels import LabelMapping
from med_unlearning.data.metadata import (
    MRBRAINS_MODALITY_FILES,
    MRBrainsSubjectFiles,
    group_mrbrains_partitions,
)
from med_unlearning.data.samples import SegmentationSample
from med_unlearning.io.nifti import check_same_grid, read_nifti_array

__all__ = [
    "MissingModalityError",
    "PatchDataset",
    "SegmentationDataError",
    "SubjectVolume",
    "load_subject",
    "load_subjects",
]

logger = logging.getLogger(__name__)

_SUFFIX = ".nii.gz"

ImageLoader = Callable[[], nib.Nifti1Image]


class SegmentationDataError(ValueError):
    """Segmentation data that cannot be used; the message names subject and file."""


class MissingModalityError(SegmentationDataError):
    """A modality requested in parameters (or the label) has no file in a subject's folder."""


@dataclass(repr=False)
class SubjectVolume:
    """One preprocessed subject.

    Attributes:
        subject_id: the subject folder's id (e.g. ``"070"``).
        image: z-scored modalities, cropped to the foreground box, float32 ``[C, x, y, z]``.
        label: class indices (uint8, :data:`IGNORE_INDEX` where ignored) on the same crop,
            or ``None`` for a subject without ``segm``.
        modalities: the channel order of ``image``.
        affine: the 4×4 affine of the full original grid (all files share it).
        header: the NIfTI header of the first modality file (predictions reuse it).
        full_shape: the original grid's shape ``(X, Y, Z)``.
        crop_start: first voxel of the crop box on the original grid.
        files: file key -> file name, for messages (``{"T1": "070/pre/T1.nii.gz", …}``).
    """

    subject_id: str
    image: np.ndarray
    label: np.ndarray | None
    modalities: tuple[str, ...]
    affine: np.ndarray
    header: nib.Nifti1Header
    full_shape: tuple[int, int, int]
    crop_start: tuple[int, int, int]
    files: dict[str, str] = field(default_factory=dict)

    @property
    def crop_slices(self) -> tuple[slice, slice, slice]:
        """Where :attr:`image` lies on the original grid."""
        return tuple(
            slice(start, start + size)
            for start, size in zip(self.crop_start, self.image.shape[1:], strict=True)
        )  # type: ignore[return-value]

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along the three axes (from the affine)."""
        norms = np.linalg.norm(self.affine[:3, :3], axis=0)
        return tuple(float(value) for value in norms)  # type: ignore[return-value]

    def uncrop(self, volume: np.ndarray, fill: int | float = 0) -> np.ndarray:
        """Place a ``[..., x, y, z]`` array on the crop box back onto the full grid."""
        full = np.full((*volume.shape[:-3], *self.full_shape), fill, dtype=volume.dtype)
        full[(..., *self.crop_slices)] = volume
        return full

    def full_label(self) -> np.ndarray | None:
        """Class indices on the full original grid (background outside the crop box)."""
        return None if self.label is None else self.uncrop(self.label)

    def __repr__(self) -> str:
        return (
            f"SubjectVolume({self.subject_id!r}, modalities={list(self.modalities)}, "
            f"crop={tuple(self.image.shape[1:])} of {self.full_shape}, "
            f"labelled={self.label is not None})"
        )


def _existing_files(subject: MRBrainsSubjectFiles) -> str:
    present = list(subject.modalities.values())
    if subject.segmentation:
        present.append(subject.segmentation)
    return ", ".join(f"{pid}{_SUFFIX}" for pid in sorted(present)) or "no usable file"


def _missing_modality(subject: MRBrainsSubjectFiles, modality: str) -> MissingModalityError:
    if modality not in MRBRAINS_MODALITY_FILES:
        return MissingModalityError(
            f"Unknown modality {modality!r} in segmentation.data.modalities; expected some of "
            f"{sorted(MRBRAINS_MODALITY_FILES)}"
        )
    tried = " or ".join(
        f"{subject.subject_id}/pre/{name}{_SUFFIX}" for name in MRBRAINS_MODALITY_FILES[modality]
    )
    return MissingModalityError(
        f"Subject {subject.subject_id!r}: modality {modality!r} requested "
        f"(segmentation.data.modalities) but {tried} does not exist; the subject has: "
        f"{_existing_files(subject)}."
    )


def _crop_box(
    image: np.ndarray, label: np.ndarray | None, margin: int, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Foreground box: any channel above ``threshold`` × its 99th percentile, or labelled."""
    levels = np.percentile(image.reshape(image.shape[0], -1), 99, axis=1) * threshold
    source = np.any(image > levels[:, None, None, None], axis=0, keepdims=True)
    if label is not None:
        source = source | (label[None] > 0)
    if not source.any():
        return np.zeros(3, dtype=int), np.asarray(image.shape[1:])
    cropper = CropForeground(margin=margin, allow_smaller=True)
    start, end = cropper.compute_bounding_box(source)
    return np.asarray(start, dtype=int), np.asarray(end, dtype=int)


def _plain(array: Any) -> np.ndarray:
    if isinstance(array, MetaTensor):
        array = array.as_tensor()
    if isinstance(array, torch.Tensor):
        array = array.numpy()
    return np.asarray(array)


def load_subject(
    subject: MRBrainsSubjectFiles,
    partitions: Mapping[str, ImageLoader | nib.Nifti1Image],
    modalities: Sequence[str],
    mapping: LabelMapping,
    *,
    crop_margin: int = 4,
    crop_threshold: float = 0.1,
    require_label: bool = True,
) -> SubjectVolume:
    """Read, check and preprocess one subject (see the module docstring).

    Args:
        subject: the subject's files, from
            :func:`~med_unlearning.data.metadata.group_mrbrains_partitions` (which picks
            ``reg_T1`` over ``T1`` and ``reg_IR`` over ``IR``: the registered files lie on the
            label grid).
        partitions: partition id -> lazy image, or zero-argument callable returning one.
        modalities: the channels to stack, e.g. ``["T1"]`` or ``["T1", "IR", "FLAIR"]``.
        mapping: how raw labels become classes.
        crop_margin: voxels added around the foreground box.
        crop_threshold: a voxel is foreground when some channel exceeds this fraction of
            that channel's 99th percentile (0 = any positive voxel), or when it is labelled.
        require_label: raise when ``segm`` is missing (training); ``False`` for inference.

    Raises:
        MissingModalityError: a requested modality (or the label) has no file.
        NiftiGridError: an image and the label (or two images) disagree in shape or affine.
        LabelValueError: the label file holds values outside the legend.
        SegmentationDataError: an image is not 3D or holds NaN/inf.
    """
    subject_id = subject.subject_id

    def opened(partition_id: str) -> nib.Nifti1Image:
        item = partitions[partition_id]
        return item if isinstance(item, nib.Nifti1Image) else item()

    if not modalities:
        raise SegmentationDataError("segmentation.data.modalities is empty; expected e.g. ['T1']")
    for modality in modalities:
        if modality not in subject.modalities:
            raise _missing_modality(subject, modality)
    names = {modality: f"{subject.modalities[modality]}{_SUFFIX}" for modality in modalities}
    images = [opened(subject.modalities[modality]) for modality in modalities]
    label_image = None
    if subject.segmentation is not None:
        label_image = opened(subject.segmentation)
        names["segm"] = f"{subject.segmentation}{_SUFFIX}"
    elif require_label:
        raise MissingModalityError(
            f"Subject {subject_id!r}: label file {subject_id}/segm{_SUFFIX} does not exist "
            f"(needed for training and evaluation); the subject has: {_existing_files(subject)}."
        )

    for modality, image in zip(modalities, images, strict=True):
        if len(image.shape) != 3:
            raise SegmentationDataError(
                f"Subject {subject_id!r}: {names[modality]} has shape {image.shape}; expected a "
                "3D volume"
            )
    reference, reference_name = images[0], names[modalities[0]]
    for modality, image in zip(modalities[1:], images[1:], strict=True):
        check_same_grid(reference, image, reference_name, names[modality])
    if label_image is not None:
        check_same_grid(reference, label_image, reference_name, names["segm"])

    stacked = np.stack([read_nifti_array(image, np.float32) for image in images])
    finite = np.isfinite(stacked).reshape(len(modalities), -1).all(axis=1)
    if not finite.all():
        bad = [names[m] for m, ok in zip(modalities, finite, strict=True) if not ok]
        raise SegmentationDataError(
            f"Subject {subject_id!r}: {', '.join(bad)} hold NaN or infinite voxels; expected "
            "finite intensities"
        )
    label = None
    if label_image is not None:
        label = mapping.apply(read_nifti_array(label_image), subject=subject_id, file=names["segm"])

    start, end = _crop_box(stacked, label, crop_margin, crop_threshold)
    slices = tuple(slice(int(s), int(e)) for s, e in zip(start, end, strict=True))
    normalise = NormalizeIntensity(nonzero=True, channel_wise=True, dtype=np.float32)
    image = _plain(normalise(stacked[(slice(None), *slices)])).astype(np.float32, copy=False)
    return SubjectVolume(
        subject_id=subject_id,
        image=np.ascontiguousarray(image),
        label=None if label is None else np.ascontiguousarray(label[slices]),
        modalities=tuple(modalities),
        affine=np.asarray(reference.affine, dtype=np.float64),
        header=reference.header.copy(),
        full_shape=tuple(int(n) for n in reference.shape[:3]),  # type: ignore[arg-type]
        crop_start=tuple(int(s) for s in start),  # type: ignore[arg-type]
        files=names,
    )


def load_subjects(
    partitions: Mapping[str, ImageLoader | nib.Nifti1Image],
    subject_ids: Sequence[str],
    modalities: Sequence[str],
    mapping: LabelMapping,
    *,
    crop_margin: int = 4,
    crop_threshold: float = 0.1,
    require_label: bool = True,
) -> dict[str, SubjectVolume]:
    """Load and preprocess ``subject_ids`` from catalog partitions (see :func:`load_subject`).

    Args:
        partitions: the ``mrbrains_raw`` partitions (``"070/pre/T1"`` -> loader).
        subject_ids: the subjects to load, in order.

    Raises:
        SegmentationDataError: a requested subject has no files, listing the subjects found.
    """
    grouped = group_mrbrains_partitions(partitions)
    unknown = [subject for subject in subject_ids if subject not in grouped]
    if unknown:
        raise SegmentationDataError(
            f"Subjects {unknown} have no files (<subject>/pre/*{_SUFFIX}, <subject>/segm{_SUFFIX}) "
            f"in the MRBrainS18 folder; subjects found: {sorted(grouped)}"
        )
    subjects = {}
    for subject_id in tqdm(subject_ids, desc="MRBrainS18 subjects", unit="subject", disable=None):
        subjects[subject_id] = load_subject(
            grouped[subject_id],
            partitions,
            modalities,
            mapping,
            crop_margin=crop_margin,
            crop_threshold=crop_threshold,
            require_label=require_label,
        )
        logger.info("Loaded %r", subjects[subject_id])
    return subjects


class PatchDataset(Dataset):
    """Random training patches from preprocessed subjects (MONAI ``RandCropByPosNegLabeld``).

    Each epoch yields ``samples_per_subject`` patches per subject (item ``i`` comes from
    subject ``i % n_subjects``). A patch is centred on a labelled voxel with probability
    ``pos_fraction``, else on a background voxel inside the head (label 0, some modality
    non-zero; any label-0 voxel when the head has none). Volumes smaller than the patch are
    zero-padded (image 0, label background).

    Randomness: each item seeds its crop from torch's global generator, which
    :func:`med_unlearning.training.seed_everything` seeds in the main process and the
    DataLoader seeds per worker — so patches are reproducible for a seed and differ between
    workers.

    Items are :class:`~med_unlearning.data.samples.SegmentationSample` s (``image`` float32
    ``[C, *patch]``, ``label`` int64 ``[*patch]``, ``ids`` the subject id); ignored voxels
    carry :data:`~med_unlearning.data.labels.IGNORE_INDEX`.
    """

    def __init__(
        self,
        subjects: Sequence[SubjectVolume],
        patch_size: Sequence[int],
        samples_per_subject: int,
        pos_fraction: float = 0.8,
    ) -> None:
        if not subjects:
            raise SegmentationDataError("PatchDataset needs at least one subject")
        unlabeled = [subject.subject_id for subject in subjects if subject.label is None]
        if unlabeled:
            raise SegmentationDataError(f"Subjects {unlabeled} have no label; cannot train on them")
        if samples_per_subject < 1:
            raise ValueError(f"samples_per_subject must be >= 1, got {samples_per_subject}")
        if not 0.0 <= pos_fraction <= 1.0:
            raise ValueError(f"pos_fraction must be in [0, 1], got {pos_fraction}")
        self.patch_size = tuple(int(n) for n in patch_size)
        self.samples_per_subject = samples_per_subject
        self.pos_fraction = pos_fraction
        pad = SpatialPad(spatial_size=self.patch_size, mode="constant")
        self._items: list[dict[str, Any]] = []
        for subject in subjects:
            image = _plain(pad(subject.image))
            label = _plain(pad(subject.label[None]))  # type: ignore[index]
            foreground, background = map_binary_to_indices(
                label, image=np.any(image != 0, axis=0, keepdims=True), image_threshold=0
            )
            if len(background) == 0:  # everything inside the head is labelled: use the air
                foreground, background = map_binary_to_indices(label)
            self._items.append(
                {
                    "image": torch.from_numpy(np.ascontiguousarray(image)),
                    "label": torch.from_numpy(label.astype(np.int64)),
                    "fg": foreground,
                    "bg": background,
                    "ids": subject.subject_id,
                }
            )
        self.subject_ids = [subject.subject_id for subject in subjects]
        self._crop = RandCropByPosNegLabeld(
            keys=["image", "label"],
            label_key="label",
            spatial_size=self.patch_size,
            pos=pos_fraction,
            neg=1.0 - pos_fraction,
            num_samples=1,
            fg_indices_key="fg",
            bg_indices_key="bg",
        )

    def __len__(self) -> int:
        return len(self._items) * self.samples_per_subject

    def __getitem__(self, index: int) -> SegmentationSample:
        item = self._items[index % len(self._items)]
        seed = int(torch.randint(0, 2**31 - 1, (1,)).item())
        self._crop.set_random_state(seed=seed)
        patch = self._crop(dict(item))[0]
        label = torch.as_tensor(_plain(patch["label"]))[0].long()
        return SegmentationSample(
            image=torch.as_tensor(_plain(patch["image"])).float(), label=label, ids=item["ids"]
        )

    def __repr__(self) -> str:
        return (
            f"PatchDataset(subjects={self.subject_ids}, patch_size={self.patch_size}, "
            f"samples_per_subject={self.samples_per_subject}, pos_fraction={self.pos_fraction})"
        )

