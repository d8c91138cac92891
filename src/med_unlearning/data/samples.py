"""The typed samples the datasets yield and the tasks consume.

Each sample is a :class:`typing.NamedTuple`, so torch's ``default_collate`` batches it field
by field into the same type (tensors stacked along a new leading batch axis, strings into
lists), and the device/precision helpers rebuild it with ``type(batch)(*moved)``. A modified
copy is ``batch._replace(field=value)``. Shapes below are per item; a batch adds a leading
``B`` axis to every tensor and turns every string field into a tuple of ``B`` strings.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["ReconSample", "SegmentationSample"]


class ReconSample(NamedTuple):
    """One undersampled fastMRI slice, as
    :class:`~med_unlearning.data.recon_dataset.ReconSliceTransform` builds it.

    Values stay at the file's raw scale (fastMRI: ~1e-4); the networks normalise internally
    (see :mod:`med_unlearning.models.recon`).
    """

    #: ``[coils, H, W, 2]`` float32 — undersampled k-space, raw scale, real/imaginary last
    #: (MONAI's layout; single-coil data gets a coil axis of 1).
    masked_kspace: torch.Tensor
    #: ``[1, 1, W, 1]`` bool — sampled columns (False outside the acquired columns).
    mask: torch.Tensor
    #: ``[h, w]`` float32 — RSS of the zero-filled coil images, centre-cropped to the target
    #: size (the U-Net's input and the zero-filled baseline).
    zero_filled: torch.Tensor
    #: ``[h, w]`` float32 — the file's RSS/ESC reconstruction slice (zeros when the file has
    #: none, with ``has_target`` False).
    target: torch.Tensor
    #: ``[]`` bool — whether ``target`` holds the file's reconstruction.
    has_target: torch.Tensor
    #: ``[]`` float32 — the volume's max (attribute ``max``; without it the maximum of the
    #: volume's reconstruction; without that the slice target's max), the study's SSIM data
    #: range and PSNR peak; never 0 or NaN.
    max_value: torch.Tensor
    #: ``"<volume>:slice <i>"`` — names the item (error messages, per-item noise seeds).
    ids: str
    #: The volume's id (e.g. ``"brain/file_brain_AXT2_001"``).
    volume_id: str
    #: ``[]`` int64 — the slice's index in its volume.
    slice_index: torch.Tensor


class SegmentationSample(NamedTuple):
    """One MRBrainS18 training patch (:class:`~med_unlearning.data.seg_dataset.PatchDataset`)."""

    #: ``[C, x, y, z]`` float32 — the z-scored modalities (channels in the order of
    #: ``segmentation.data.modalities``).
    image: torch.Tensor
    #: ``[x, y, z]`` int64 — class indices,
    #: :data:`~med_unlearning.data.labels.IGNORE_INDEX` where ignored.
    label: torch.Tensor
    #: The subject id the patch was cut from (e.g. ``"070"``).
    ids: str
