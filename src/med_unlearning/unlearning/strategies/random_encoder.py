"""Random Encoder, a feature-space strategy of the segmentation study (docs/studies.md §2).

The decoder stays frozen; the encoder's features of forget inputs are pushed (MSE) towards
noise whose per-channel mean and standard deviation are those of the *frozen* encoder's
features on the forget set, while retain features are held to the frozen encoder's. The
loss, its normalisation and the frozen-decoder check are shared with Fix Decoder in
:mod:`~med_unlearning.unlearning.strategies._features`.
"""

from __future__ import annotations

import logging

from med_unlearning.tasks.base import Batch, Features
from med_unlearning.unlearning.common import model_device
from med_unlearning.unlearning.registry import StrategyResult, UnlearningRun, register_strategy
from med_unlearning.unlearning.strategies._features import (
    FeatureUnlearningParams,
    feature_statistics,
    item_generators,
    matched_feature_noise,
    noise_generator,
    train_encoder,
)

__all__ = ["RandomEncoderParams", "random_encoder"]

logger = logging.getLogger(__name__)


class RandomEncoderParams(FeatureUnlearningParams):
    """Random Encoder: forget features → noise with the frozen features' channel statistics."""


@register_strategy(
    "random_encoder",
    RandomEncoderParams,
    needs_retain=True,
    family="segmentation_study",
    description="decoder frozen; forget features -> noise with the frozen encoder's "
    "per-channel feature statistics; retain features held (MSE)",
)
def random_encoder(run: UnlearningRun, params: RandomEncoderParams) -> StrategyResult:
    """Random Encoder (see the module docstring)."""
    device = model_device(run.model)
    statistics = feature_statistics(run.task, run.frozen, run.forget_loader, device)
    logger.info(
        "random_encoder: frozen feature statistics on %d forget items: %s",
        statistics.items,
        statistics.summary(),
    )
    fallback = noise_generator(run, 1)

    def target(batch: Batch, template: Features) -> Features:
        item_gens = None if params.resample_noise else item_generators(batch, run.seed, "features")
        return matched_feature_noise(template, statistics, item_gens=item_gens, generator=fallback)

    result = train_encoder(run, params, target, "random_encoder", statistics)
    result.extras["feature_statistics"] = statistics.summary()
    return result
