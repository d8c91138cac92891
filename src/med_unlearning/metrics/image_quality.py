"""Image-quality metrics with fastMRI's definitions (per volume), built on MONAI.

fastMRI (and the reconstruction study, docs/studies.md §1) scores a reconstructed volume
``prediction`` ``[slices, h, w]`` against its ``target`` with:

- **PSNR** = 20·log10(max) − 10·log10(MSE) over the whole volume, max = the volume's max;
- **SSIM** computed per slice (7×7 uniform window, k1 = 0.01, k2 = 0.03, sample covariance,
  data range = the volume's max, mean over the window positions fully inside the image),
  then averaged over the slices — exactly scikit-image's ``structural_similarity`` defaults;
- **NMSE** = ‖target − prediction‖² / ‖target‖².

:func:`slice_metrics` gives the same three numbers per 2-D slice (peak and SSIM data range
still the *volume's* max, so a slice's SSIM is exactly the term the volume SSIM averages):
the per-slice loss features of the membership-inference attack.

MONAI's SSIM uses population (co)variances; scikit-image and fastMRI use sample
(co)variances, which multiplies σ's by N/(N−1) (N = 49 window pixels). In SSIM that factor
only rescales the contrast constant, so :func:`slice_ssim` calls MONAI's
``compute_ssim_and_cs`` with ``k2 / sqrt(N/(N−1))`` and gets scikit-image's value exactly.
Images are divided by their data range first (SSIM is invariant to that), so raw fastMRI
values (~1e-4) stay well inside float32's precision.

:func:`slice_ssim` is differentiable and batched; the reconstruction loss uses it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from monai.metrics.regression import PSNRMetric, compute_ssim_and_cs

from med_unlearning.device import full_precision

__all__ = [
    "IMAGE_QUALITY_METRICS",
    "nmse",
    "psnr",
    "slice_metrics",
    "slice_ssim",
    "ssim",
    "volume_metrics",
]

#: The per-volume metrics :func:`volume_metrics` returns, in order.
IMAGE_QUALITY_METRICS = ("psnr", "ssim", "nmse")


def _as_batch(images: torch.Tensor) -> torch.Tensor:
    """``[B, H, W]`` or ``[B, 1, H, W]`` -> ``[B, 1, H, W]``."""
    if images.ndim == 3:
        return images.unsqueeze(1)
    if images.ndim == 4 and images.shape[1] == 1:
        return images
    raise ValueError(
        f"expected images of shape [B, H, W] or [B, 1, H, W], got {tuple(images.shape)}"
    )


@full_precision
def slice_ssim(
    prediction: torch.Tensor,
    target: torch.Tensor,
    data_range: float | torch.Tensor,
    win_size: int = 7,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """SSIM of each slice of a batch, as scikit-image/fastMRI define it (differentiable).

    Args:
        prediction: ``[B, H, W]`` or ``[B, 1, H, W]``.
        target: same shape as ``prediction``.
        data_range: the data range (the volume's max), a number or one value per slice
            (shape ``[B]``); values must be positive.
        win_size: side of the uniform window (odd).
        k1: luminance constant.
        k2: contrast constant.

    Returns:
        ``[B]`` SSIM values, computed in float32 (fp16/bf16 inputs are upcast and
        autocast is off: the window convolutions must not run in bf16).

    Raises:
        ValueError: for mismatched shapes, images smaller than the window, or an even window.
    """
    if prediction.shape != target.shape:
        raise ValueError(
            f"prediction and target shapes differ: {tuple(prediction.shape)} vs "
            f"{tuple(target.shape)}"
        )
    if win_size % 2 == 0:
        raise ValueError(f"win_size must be odd, got {win_size}")
    prediction = _as_batch(prediction)
    target = _as_batch(target)
    if min(prediction.shape[-2:]) < win_size:
        raise ValueError(
            f"images of size {tuple(prediction.shape[-2:])} are smaller than the {win_size}x"
            f"{win_size} SSIM window"
        )
    scale = torch.as_tensor(data_range, dtype=prediction.dtype, device=prediction.device)
    scale = scale.reshape(-1, 1, 1, 1) if scale.ndim else scale
    window_pixels = win_size * win_size
    sample_covariance_norm = window_pixels / (window_pixels - 1)
    ssim_map, _ = compute_ssim_and_cs(
        y_pred=prediction / scale,
        y=target / scale,
        spatial_dims=2,
        kernel_size=(win_size, win_size),
        kernel_sigma=(1.5, 1.5),
        data_range=1.0,
        kernel_type="uniform",
        k1=k1,
        k2=k2 / math.sqrt(sample_covariance_norm),
    )
    return ssim_map.mean(dim=(1, 2, 3))


def _volume_tensors(
    target: np.ndarray | torch.Tensor, prediction: np.ndarray | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    target_t = torch.as_tensor(np.asarray(target), dtype=torch.float64)
    prediction_t = torch.as_tensor(np.asarray(prediction), dtype=torch.float64)
    if target_t.shape != prediction_t.shape:
        raise ValueError(
            f"target and prediction shapes differ: {tuple(target_t.shape)} vs "
            f"{tuple(prediction_t.shape)}"
        )
    if target_t.ndim == 2:
        target_t, prediction_t = target_t[None], prediction_t[None]
    if target_t.ndim != 3:
        raise ValueError(
            f"expected a volume [slices, h, w] or a slice [h, w], got {tuple(target_t.shape)}"
        )
    return target_t, prediction_t


def _peak(target: torch.Tensor, max_value: float | None) -> float:
    peak = float(target.max()) if max_value is None else float(max_value)
    if not math.isfinite(peak) or peak <= 0:
        raise ValueError(f"the volume's max (data range) must be positive and finite, got {peak}")
    return peak


def psnr(
    target: np.ndarray | torch.Tensor,
    prediction: np.ndarray | torch.Tensor,
    max_value: float | None = None,
) -> float:
    """PSNR of a volume: 20·log10(max) − 10·log10(MSE over all voxels).

    Args:
        target: ``[slices, h, w]`` (or one slice ``[h, w]``).
        prediction: same shape.
        max_value: the peak (the volume's max attribute); ``None`` = ``target.max()``.
    """
    target_t, prediction_t = _volume_tensors(target, prediction)
    metric = PSNRMetric(max_val=_peak(target_t, max_value), reduction="none")
    return float(metric(prediction_t.reshape(1, -1), target_t.reshape(1, -1)).item())


def ssim(
    target: np.ndarray | torch.Tensor,
    prediction: np.ndarray | torch.Tensor,
    max_value: float | None = None,
    win_size: int = 7,
    k1: float = 0.01,
    k2: float = 0.03,
) -> float:
    """SSIM of a volume: per-slice SSIM (data range = the volume's max), averaged.

    Args:
        target: ``[slices, h, w]`` (or one slice ``[h, w]``).
        prediction: same shape.
        max_value: the data range; ``None`` = ``target.max()``.
        win_size: side of the uniform window.
        k1: luminance constant.
        k2: contrast constant.
    """
    target_t, prediction_t = _volume_tensors(target, prediction)
    peak = _peak(target_t, max_value)
    values = slice_ssim(prediction_t, target_t, peak, win_size=win_size, k1=k1, k2=k2)
    return float(values.mean().item())


def nmse(target: np.ndarray | torch.Tensor, prediction: np.ndarray | torch.Tensor) -> float:
    """Normalised MSE: ‖target − prediction‖² / ‖target‖².

    Raises:
        ValueError: when the target is all zeros (NMSE undefined).
    """
    target_t, prediction_t = _volume_tensors(target, prediction)
    energy = float((target_t**2).sum())
    if energy == 0:
        raise ValueError("NMSE is undefined for an all-zero target")
    return float(((target_t - prediction_t) ** 2).sum()) / energy


def volume_metrics(
    target: np.ndarray | torch.Tensor,
    prediction: np.ndarray | torch.Tensor,
    max_value: float | None = None,
) -> dict[str, float]:
    """PSNR, SSIM and NMSE of one volume (see :data:`IMAGE_QUALITY_METRICS`)."""
    return {
        "psnr": psnr(target, prediction, max_value),
        "ssim": ssim(target, prediction, max_value),
        "nmse": nmse(target, prediction),
    }


def slice_metrics(
    target: np.ndarray | torch.Tensor,
    prediction: np.ndarray | torch.Tensor,
    max_value: float | None = None,
) -> dict[str, np.ndarray]:
    """PSNR, SSIM and NMSE of every slice of one volume, with the volume's max as peak.

    The per-slice counterparts of :func:`volume_metrics`: ``ssim`` averages to the volume's
    SSIM; ``psnr`` is ``20·log10(max) − 10·log10(MSE of the slice)``; ``nmse`` is
    ``‖target − prediction‖² / ‖target‖²`` over the slice (NaN for an all-zero target slice,
    where it is undefined; PSNR is ``inf`` for a perfect slice).

    Args:
        target: ``[slices, h, w]`` (or one slice ``[h, w]``).
        prediction: same shape.
        max_value: the peak and SSIM data range; ``None`` = ``target.max()`` of the volume.

    Returns:
        ``{"psnr", "ssim", "nmse"}`` -> float64 ``[slices]``.
    """
    target_t, prediction_t = _volume_tensors(target, prediction)
    peak = _peak(target_t, max_value)
    squared_error = ((target_t - prediction_t) ** 2).flatten(1).sum(dim=1)
    energy = (target_t**2).flatten(1).sum(dim=1)
    metric = PSNRMetric(max_val=peak, reduction="none")
    return {
        "psnr": metric(prediction_t.flatten(1), target_t.flatten(1)).reshape(-1).numpy(),
        "ssim": slice_ssim(prediction_t, target_t, peak).numpy(),
        "nmse": torch.where(energy > 0, squared_error / energy, torch.nan).numpy(),
    }
