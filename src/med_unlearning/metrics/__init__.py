"""Metrics: image quality (reconstruction); segmentation and membership inference live beside it."""

from med_unlearning.metrics.image_quality import (
    IMAGE_QUALITY_METRICS,
    nmse,
    psnr,
    slice_ssim,
    ssim,
    volume_metrics,
)

__all__ = ["IMAGE_QUALITY_METRICS", "nmse", "psnr", "slice_ssim", "ssim", "volume_metrics"]
