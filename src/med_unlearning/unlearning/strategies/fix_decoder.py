"""Fix Decoder, a feature-space strategy of the segmentation study (docs/studies.md §2).

The decoder stays frozen; the encoder's features of forget inputs are pushed (MSE) towards
the frozen encoder's features of a *noise input* (per item and channel, noise with the
input's own mean and standard deviation), while retain features are held to the frozen
encoder's. The loss, its normalisation and the frozen-decoder check are shared with Random
Encoder in :mod:`~med_unlearning.unlearning.strategies._features`.
"""

from __future__ import annotations

from med_unlearning.tasks.base import Batch, Features
from med_unlearning.unlearning.registry import StrategyResult, UnlearningRun, register_strategy
from med_unlearning.unlearning.strategies._features import (
    FeatureUnlearningParams,
    input_matched_noise,
    item_generators,
    noise_generator,
    train_encoder,
)

__all__ = ["FixDecoderParams", "fix_decoder"]


class FixDecoderParams(FeatureUnlearningParams):
    """Fix Decoder: forget features → the frozen encoder's features of a noise input."""


@register_strategy(
    "fix_decoder",
    FixDecoderParams,
    needs_retain=True,
    family="segmentation_study",
    description="decoder frozen; forget features -> the frozen encoder's features of a "
    "noise input (input-matched statistics); retain features held (MSE)",
)
def fix_decoder(run: UnlearningRun, params: FixDecoderParams) -> StrategyResult:
    """Fix Decoder (see the module docstring)."""
    fallback = noise_generator(run, 2)

    def target(batch: Batch, _: Features) -> Features:
        inputs = run.task.inputs(batch)
        item_gens = None if params.resample_noise else item_generators(batch, run.seed, "inputs")
        noise = input_matched_noise(inputs, item_gens=item_gens, generator=fallback)
        return run.task.encode(run.frozen, run.task.with_inputs(batch, noise))

    return train_encoder(run, params, target, "fix_decoder")
