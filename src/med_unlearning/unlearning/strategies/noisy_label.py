"""Noisy Label, the segmentation study's "learn noise" (docs/studies.md §2).

``L = J(retain) + α·J(forget, noisy target)`` on paired forget/retain batches. For
segmentation the noisy target is random labels (``noise_scale`` = fraction of voxels
relabelled, 1 = all), for reconstruction the image buried in noise (see
:mod:`~med_unlearning.unlearning.strategies._noisy_targets`).
"""

from __future__ import annotations

from pydantic import Field

from med_unlearning.unlearning.common import PairedParams, optimise_paired
from med_unlearning.unlearning.registry import StrategyResult, UnlearningRun, register_strategy
from med_unlearning.unlearning.strategies._noisy_targets import SeededGenerators, noisy_term

__all__ = ["NoisyLabelParams", "noisy_label"]


class NoisyLabelParams(PairedParams):
    """Noisy Label: ``J(retain) + alpha·J(forget, noisy target)`` (α ≈ 0.1–0.25 in the study).

    ``noise_scale`` 1 = entirely random labels for segmentation; for reconstruction, noise
    of the volume's max (relative) buries the image. ``resample_noise`` as in
    :class:`~med_unlearning.unlearning.strategies.nl.NLParams` (segmentation patches are
    random crops, so a label field fixed per subject id does not stay attached to the
    anatomy: redraw it there).
    """

    alpha: float = Field(default=0.25, ge=0)
    noise_scale: float = Field(default=1.0, ge=0)
    noise_relative: bool = True
    resample_noise: bool = False


@register_strategy(
    "noisy_label",
    NoisyLabelParams,
    family="segmentation_study",
    description="learn noise: retain loss + alpha * forget loss against random labels/noise",
)
def noisy_label(run: UnlearningRun, params: NoisyLabelParams) -> StrategyResult:
    """Noisy Label: ``L = J(retain) + α·J(forget, noisy target)`` on paired batches."""
    generators = SeededGenerators(run.seed, run.generator)
    return optimise_paired(
        run,
        params,
        "noisy_label",
        lambda model, batch: noisy_term(run.task, model, batch, params, generators),
        lambda retain, forget: retain + params.alpha * forget,
        forget_name="forget_noisy_loss",
    )
