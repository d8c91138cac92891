"""NL-FT, the reconstruction study's "learn noise" with fine-tuning (docs/studies.md §1).

``L = w_r·J(retain) + w_f·J(forget, target + λ·noise)`` on paired forget/retain batches:
NL (:mod:`~med_unlearning.unlearning.strategies.nl`) and fine-tuning on the retain subset in
the same steps. The noisy target is fixed per forget item by default (see
:mod:`~med_unlearning.unlearning.strategies._noisy_targets`).
"""

from __future__ import annotations

from pydantic import Field

from med_unlearning.unlearning.common import PairedParams, optimise_paired
from med_unlearning.unlearning.registry import StrategyResult, UnlearningRun, register_strategy
from med_unlearning.unlearning.strategies._noisy_targets import SeededGenerators, noisy_term

__all__ = ["NLFTParams", "nl_ft"]


class NLFTParams(PairedParams):
    """NL-FT: ``retain_weight·J(retain) + forget_weight·J(forget, target + λ·noise)``.

    ``noise_scale``, ``noise_relative`` and ``resample_noise`` as in
    :class:`~med_unlearning.unlearning.strategies.nl.NLParams`.
    """

    noise_scale: float = Field(default=0.1, ge=0)
    noise_relative: bool = True
    resample_noise: bool = False
    forget_weight: float = Field(default=1.0, ge=0)
    retain_weight: float = Field(default=1.0, ge=0)


@register_strategy(
    "nl_ft",
    NLFTParams,
    family="recon_study",
    description="NL on forget data + fine-tuning on the retain subset in the same steps",
)
def nl_ft(run: UnlearningRun, params: NLFTParams) -> StrategyResult:
    """NL-FT: ``L = w_r·J(retain) + w_f·J(forget, target + λ·noise)`` on paired batches."""
    generators = SeededGenerators(run.seed, run.generator)
    return optimise_paired(
        run,
        params,
        "nl_ft",
        lambda model, batch: noisy_term(run.task, model, batch, params, generators),
        lambda retain, forget: params.retain_weight * retain + params.forget_weight * forget,
        forget_name="forget_noisy_loss",
    )
