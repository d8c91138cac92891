"""Model composition, from the bilevel study (docs/studies.md §3).

The *body* (encoder) of one finished run — the study takes the run best at *retaining* —
with the *head* (decoder) of another — the run best at *forgetting* — optionally followed
by a short fine-tune on retain data. Which runs is explicit in the parameters
(``body_from`` / ``head_from``; ``original`` means the original model); the runs it may
combine are every other strategy's main run (``combines=combinable_runs``; see
:mod:`~med_unlearning.unlearning.strategies._combining`).
"""

from __future__ import annotations

import copy
import logging

import torch
from pydantic import Field, field_validator
from torch import nn

from med_unlearning.tasks.base import Task
from med_unlearning.training import train
from med_unlearning.unlearning.common import (
    StrategyParams,
    loop_for,
    make_optimizer,
    model_device,
)
from med_unlearning.unlearning.registry import (
    StrategyResult,
    UnlearningRun,
    combinable_runs,
    register_strategy,
)
from med_unlearning.unlearning.strategies._combining import (
    ORIGINAL,
    check_run_name,
    check_same_architecture,
    resolve_run_model,
    trainable_copy,
)

__all__ = ["CompositionParams", "compose_parts", "composition"]

logger = logging.getLogger(__name__)


class CompositionParams(StrategyParams):
    """Body of one run + head of another, with an optional retain fine-tune.

    The common keys (``epochs``, ``lr``, ``optimizer``, ``trainable``…) describe the
    fine-tune and only apply with ``finetune: true``.

    Attributes:
        body_from: the run (strategy name, or ``original``) whose encoder is kept — the
            study's choice: the run best at retaining (default ``ft``).
        head_from: the run whose decoder/head is kept — the run best at forgetting
            (default ``noisy_label``, the segmentation study's best forgetter).
        finetune: fine-tune the composed model on retain data for ``epochs`` epochs.
    """

    body_from: str = Field(default="ft", min_length=1)
    head_from: str = Field(default="noisy_label", min_length=1)
    finetune: bool = False
    lr: float = Field(default=1e-4, gt=0)

    _known_runs = field_validator("body_from", "head_from")(check_run_name)

    def required_runs(self) -> tuple[str, ...]:
        """The finished runs this strategy needs (``original`` excluded)."""
        return tuple(dict.fromkeys(n for n in (self.body_from, self.head_from) if n != ORIGINAL))


@torch.no_grad()
def compose_parts(task: Task, body: nn.Module, head: nn.Module) -> nn.Module:
    """A copy of ``body`` whose decoder/head parameters and buffers are ``head``'s.

    The encoder (and anything else outside the task's decoder part) stays ``body``'s. The
    inputs are not modified.

    Raises:
        ValueError: when the two models' architectures differ.
    """
    check_same_architecture(body, head, "body and head")
    composed = copy.deepcopy(body)
    target_parts = task.parts(composed).decoder
    source_parts = task.parts(head).decoder
    for target, source in zip(target_parts, source_parts, strict=True):
        target.load_state_dict(source.state_dict())
    return composed


@register_strategy(
    "composition",
    CompositionParams,
    needs_retain=True,
    family="bilevel_study",
    combines=combinable_runs,
    description="body (encoder) of the run best at retaining + head (decoder) of the run best "
    "at forgetting, optional short retain fine-tune",
)
def composition(run: UnlearningRun, params: CompositionParams) -> StrategyResult:
    """Compose two finished runs (see the module docstring)."""
    body = resolve_run_model(run, params.body_from)
    head = resolve_run_model(run, params.head_from)
    model = trainable_copy(compose_parts(run.task, body, head), model_device(run.model))
    logger.info("composition: body of %r + head of %r", params.body_from, params.head_from)
    extras = {"body_from": params.body_from, "head_from": params.head_from, "finetuned": False}
    if not params.finetune:
        return StrategyResult(model=model, extras=extras)
    if run.retain_loader is None:
        raise ValueError("composition with finetune: true needs retain data but the run has none")
    optimizer = make_optimizer(run.task, model, params)
    result = train(
        model, run.retain_loader, run.task.loss, optimizer,
        loop_for(run.loop, params, "composition_finetune"),
    )
    extras.update(finetuned=True, loop_wall_time_s=result.wall_time_s)
    return StrategyResult(model=model, history=result.history, extras=extras)
