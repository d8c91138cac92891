"""Cartesian k-space undersampling with MONAI's masks, seeded the fastMRI way.

MONAI's :class:`~monai.apps.reconstruction.transforms.array.EquispacedKspaceMask` and
:class:`~monai.apps.reconstruction.transforms.array.RandomKspaceMask` draw their random
choices (the equispaced offset, the random columns) from a numpy ``RandomState``.
:class:`KspaceUndersampler` re-seeds that state for every call, so the caller decides where
the randomness comes from:

- validation/test: :func:`seed_for_volume` — the same volume always gets the same mask,
  whatever the order, the process or the machine (fastMRI seeds by file name too);
- training: :func:`training_seed` — a fresh seed drawn from torch's RNG, which the project
  seeds (:func:`med_unlearning.training.seed_everything`, and per DataLoader worker), so a
  run's sequence of masks is reproducible.

The sampling dimension is the last spatial one (``W``, fastMRI's phase-encoding columns).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

import numpy as np
import torch
from monai.apps.reconstruction.transforms.array import (
    EquispacedKspaceMask,
    KspaceMask,
    RandomKspaceMask,
)

__all__ = [
    "MASK_KINDS",
    "KspaceMaskError",
    "KspaceUndersampler",
    "UndersampledSlice",
    "build_kspace_mask",
    "seed_for_volume",
    "training_seed",
]

MaskKind = Literal["equispaced", "random"]

#: Registry of the mask families, by the name used in parameters.
MASK_KINDS: dict[str, type[KspaceMask]] = {
    "equispaced": EquispacedKspaceMask,
    "random": RandomKspaceMask,
}


class KspaceMaskError(ValueError):
    """Mask settings that cannot produce a valid undersampling pattern."""


def seed_for_volume(volume_id: str) -> int:
    """A stable seed from a volume's file name (CRC-32 of its UTF-8 bytes).

    Only the last component of a partition id counts (``brain/file_001`` -> ``file_001``),
    so the mask follows the file, as in fastMRI, wherever the file is stored. Unlike
    ``hash()``, CRC-32 does not change between processes, so validation and test masks are
    identical in every run and on every machine.
    """
    file_name = PurePosixPath(str(volume_id).replace("\\", "/")).name
    return zlib.crc32(file_name.encode("utf-8"))


def training_seed() -> int:
    """A seed for one training sample's mask, drawn from torch's (seeded) global RNG."""
    return int(torch.randint(0, 2**31 - 1, (1,)).item())


def build_kspace_mask(
    kind: MaskKind,
    accelerations: Sequence[float],
    center_fractions: Sequence[float],
) -> KspaceMask:
    """Build MONAI's mask transform for complex k-space with real/imaginary as last dim.

    Args:
        kind: ``equispaced`` (the study's choice) or ``random``.
        accelerations: undersampling factors; one pair is picked uniformly per call.
        center_fractions: fraction of fully sampled centre columns, one per acceleration.

    Raises:
        KspaceMaskError: for an unknown kind, mismatched lengths or out-of-range values.
    """
    if kind not in MASK_KINDS:
        raise KspaceMaskError(f"Unknown mask kind {kind!r}; expected one of {sorted(MASK_KINDS)}")
    if len(accelerations) == 0 or len(accelerations) != len(center_fractions):
        raise KspaceMaskError(
            "accelerations and center_fractions must be non-empty and of equal length, got "
            f"{list(accelerations)} and {list(center_fractions)}"
        )
    for acceleration, fraction in zip(accelerations, center_fractions):
        if acceleration <= 1:
            raise KspaceMaskError(f"acceleration must be > 1, got {acceleration}")
        if not 0 < fraction < 1 / acceleration:
            raise KspaceMaskError(
                f"center_fraction must lie in (0, 1/acceleration) = (0, {1 / acceleration:.4g}) "
                f"so that the outer columns are undersampled, got {fraction}"
            )
    return MASK_KINDS[kind](
        center_fractions=list(center_fractions),
        accelerations=list(accelerations),
        spatial_dims=2,
        is_complex=True,
    )


@dataclass(frozen=True)
class UndersampledSlice:
    """One slice after undersampling.

    Attributes:
        masked_kspace: ``[coils, H, W, 2]`` float32, real/imaginary last (MONAI's layout).
        mask: ``[1, 1, W, 1]`` bool, True on sampled columns (broadcasts over the k-space).
        zero_filled: ``[H, W]`` float32, root-sum-of-squares of the zero-filled coil images.
    """

    masked_kspace: torch.Tensor
    mask: torch.Tensor
    zero_filled: torch.Tensor

    @property
    def acceleration(self) -> float:
        """Columns in total divided by columns sampled."""
        return float(self.mask.numel() / self.mask.sum().item())


class KspaceUndersampler:
    """Undersample one k-space slice with a MONAI mask, seeded per call.

    Args:
        kind: ``equispaced`` or ``random``.
        accelerations: undersampling factors (one is picked per call).
        center_fractions: fully sampled centre fraction for each acceleration.

    Example:
        >>> undersample = KspaceUndersampler("equispaced", [8], [0.04])
        >>> sample = undersample(kspace_slice, seed=seed_for_volume("file_brain_001"))
    """

    def __init__(
        self,
        kind: MaskKind = "equispaced",
        accelerations: Sequence[float] = (8,),
        center_fractions: Sequence[float] = (0.04,),
    ) -> None:
        self.kind = kind
        self.accelerations = tuple(float(value) for value in accelerations)
        self.center_fractions = tuple(float(value) for value in center_fractions)
        self._mask = build_kspace_mask(kind, self.accelerations, self.center_fractions)

    def __repr__(self) -> str:
        return (
            f"KspaceUndersampler(kind={self.kind!r}, accelerations={list(self.accelerations)}, "
            f"center_fractions={list(self.center_fractions)})"
        )

    def __call__(self, kspace: np.ndarray, seed: int) -> UndersampledSlice:
        """Undersample ``kspace`` with the mask drawn from ``seed``.

        Args:
            kspace: complex k-space, multi-coil ``[coils, H, W]`` or single-coil ``[H, W]``
                (treated as one coil).
            seed: the mask's seed (see :func:`seed_for_volume`, :func:`training_seed`).

        Raises:
            KspaceMaskError: when ``kspace`` is not complex 2-D/3-D, or too narrow for the
                centre fraction to keep at least one column.
        """
        array = np.asarray(kspace)
        if not np.iscomplexobj(array) or array.ndim not in (2, 3):
            raise KspaceMaskError(
                "kspace must be a complex [coils, H, W] or [H, W] array, got "
                f"dtype {array.dtype} and shape {array.shape}"
            )
        if array.ndim == 2:
            array = array[None]
        num_cols = array.shape[-1]
        if min(int(round(num_cols * fraction)) for fraction in self.center_fractions) < 1:
            raise KspaceMaskError(
                f"k-space width {num_cols} is too small for center_fractions "
                f"{list(self.center_fractions)}: no centre column would be kept"
            )
        self._mask.set_random_state(seed=int(seed) % (2**32))
        masked_kspace, zero_filled = self._mask(array.astype(np.complex64, copy=False))
        mask = self._mask.mask.to(torch.bool)
        return UndersampledSlice(
            masked_kspace=masked_kspace.to(torch.float32),
            mask=mask,
            zero_filled=zero_filled.to(torch.float32),
        )
