"""NL, the reconstruction study's "learn noise" (docs/studies.md §1).

Train on the forget data only, towards ``target + λ·noise``, the noise relative to the image
(``λ·data_range``, ``noise_relative: true``) — the study's λ = 1e-5 on raw fastMRI scale is
about 0.1 of a volume's max. The noisy target is fixed per forget item by default (see
:mod:`~med_unlearning.unlearning.strategies._noisy_targets`).
:mod:`~med_unlearning.unlearning.strategies.nl_ft` adds a retain term in the same steps.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from med_unlearning.tasks.base import Batch
from med_unlearning.unlearning.common import StrategyParams, TermTracker, optimise
from med_unlearning.unlearning.registry import StrategyResult, UnlearningRun, register_strategy
from med_unlearning.unlearning.strategies._noisy_targets import SeededGenerators, noisy_term

__all__ = ["NLParams", "nl"]


class NLParams(StrategyParams):
    """NL.

    Attributes:
        noise_scale: λ. Reconstruction: noise std as a fraction of each volume's max with
            ``noise_relative`` (else in raw units). Segmentation: the fraction of forget
            voxels given random labels, in [0, 1].
        noise_relative: scale the noise by the task's per-item data range (tasks that have
            one: reconstruction); ignored by tasks without a data range.
        resample_noise: redraw the noise at every step (``true``) instead of fixing each
            forget item's noisy target by the run seed and the item id (``false``, the
            default: a corrupted label the model must fit; see
            :mod:`~med_unlearning.unlearning.strategies._noisy_targets`).
    """

    noise_scale: float = Field(default=0.1, ge=0)
    noise_relative: bool = True
    resample_noise: bool = False


@register_strategy(
    "nl",
    NLParams,
    needs_retain=False,
    family="recon_study",
    description="learn noise: fit forget data to target + noise (relative to the image)",
)
def nl(run: UnlearningRun, params: NLParams) -> StrategyResult:
    """NL: ``L = J(forget, target + λ·noise)`` on forget batches only."""
    tracker = TermTracker()
    generators = SeededGenerators(run.seed, run.generator)

    def loss_fn(model: nn.Module, batch: Batch) -> torch.Tensor:
        forget = noisy_term(run.task, model, batch, params, generators)
        tracker.add("forget_noisy_loss", forget)
        return forget

    return optimise(run, params, run.forget_loader, loss_fn, "nl", tracker)
