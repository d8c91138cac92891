"""Metrics: scoring models and comparing them with the retrained oracle.

- per item: :mod:`.image_quality` (reconstruction), :mod:`.segmentation`, :mod:`.finite`;
  :mod:`.directions` (which way is better, per metric); :mod:`.scoring` (one checkpoint →
  rows of the tidy results table) and :mod:`.task_scores` (a task's scores stacked);
- the table: :mod:`.results_table` (contract, validation, summary), :mod:`.methods` (method
  names and display order), :mod:`.statistics` (intervals, equivalence, seed pooling);
- the comparisons: :mod:`.oracle` (gaps, distances, costs), :mod:`.verdicts`,
  :mod:`.recommendation`, :mod:`.membership` (the attack), :mod:`.memorisation`, all at once
  in :mod:`.comparison`; :mod:`.erasure_verification` adds them to the erasure records.

The image-quality metrics are importable from the package itself.
"""

from med_unlearning.metrics.image_quality import (
    IMAGE_QUALITY_METRICS,
    nmse,
    psnr,
    slice_ssim,
    ssim,
    volume_metrics,
)

__all__ = ["IMAGE_QUALITY_METRICS", "nmse", "psnr", "slice_ssim", "ssim", "volume_metrics"]
