"""Model composition from finished unlearning runs (bilevel study, DESIGN.md §2.3).

Two compositions of runs that already exist (the engine hands their models over in
:attr:`~med_unlearning.unlearning.registry.UnlearningRun.others`, by strategy name):

- **composition** (:func:`compose_parts`): the *body* (encoder) of one run — the study takes
  the run best at *retaining* — with the *head* (decoder) of another — the run best at
  *forgetting* — optionally followed by a short fine-tune on retain data;
- **interpolation** (:func:`interpolate_weights`): θ = (1 − t)·θ_a + t·θ_b, a straight line
  in weight space between two runs.

Which runs to combine is explicit in the parameters (``body_from`` / ``head_from``,
``start_run`` / ``end_run``); the name ``original`` means the original model. Kedro builds
the pipeline before it reads parameters, so the runs a composition *may* use are fixed here
(:data:`COMBINABLE_RUNS`, declared to the engine with
:func:`~med_unlearning.unlearning.engine.declare_combined_runs`: every main run of the other
strategies, so a composition node runs after them and receives their checkpoints); the
parameters pick two of them. Choosing the "best" runs automatically needs their evaluation,
so the evaluation pipeline can write these names later (e.g. the run with the smallest
retain gap to the oracle as the body, the one with the smallest forget gap as the head).
"""

from __future__ import annotations

import copy
import logging

import torch
from pydantic import Field, field_validator
from torch import nn

from med_unlearning.tasks.base import Task
from med_unlearning.training import train
from med_unlearning.unlearning.common import StrategyParams, loop_for, make_optimizer
from med_unlearning.unlearning.engine import declare_combined_runs
from med_unlearning.unlearning.registry import StrategyResult, UnlearningRun, register_strategy

__all__ = [
    "COMBINABLE_RUNS",
    "ORIGINAL",
    "CompositionParams",
    "InterpolationParams",
    "compose_parts",
    "composition",
    "interpolate_weights",
    "interpolation",
    "resolve_run_model",
]

logger = logging.getLogger(__name__)

#: The run name that refers to the original (frozen) model.
ORIGINAL = "original"

#: The finished runs (main run of each strategy) a composition may combine; the pipeline
#: feeds all their checkpoints to the composition strategies. Add a run here to make it
#: combinable.
COMBINABLE_RUNS: tuple[str, ...] = (
    "ft",
    "full_ft",
    "ga_l1",
    "ga_l1_ft",
    "nl",
    "nl_ft",
    "neggrad_plus",
    "max_loss",
    "noisy_label",
    "retain_label",
    "random_encoder",
    "fix_decoder",
    "boundary",
    "ssd",
)


def _check_run_name(value: str) -> str:
    if value != ORIGINAL and value not in COMBINABLE_RUNS:
        raise ValueError(
            f"{value!r} is not a combinable run; valid: {[ORIGINAL, *COMBINABLE_RUNS]} "
            "(med_unlearning.unlearning.composition.COMBINABLE_RUNS)"
        )
    return value


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

    _known_runs = field_validator("body_from", "head_from")(_check_run_name)

    def required_runs(self) -> tuple[str, ...]:
        """The finished runs this strategy needs (``original`` excluded)."""
        return tuple(dict.fromkeys(n for n in (self.body_from, self.head_from) if n != ORIGINAL))


class InterpolationParams(StrategyParams):
    """Linear interpolation between two runs' weights (no training).

    Attributes:
        start_run: θ_a (strategy name, or ``original``, the default).
        end_run: θ_b (default ``noisy_label``).
        t: position on the line, in [0, 1] (0 = ``start_run``, 1 = ``end_run``).
    """

    start_run: str = Field(default=ORIGINAL, min_length=1)
    end_run: str = Field(default="noisy_label", min_length=1)
    t: float = Field(default=0.5, ge=0, le=1)

    _known_runs = field_validator("start_run", "end_run")(_check_run_name)

    def required_runs(self) -> tuple[str, ...]:
        """The finished runs this strategy needs (``original`` excluded)."""
        return tuple(dict.fromkeys(n for n in (self.start_run, self.end_run) if n != ORIGINAL))


def resolve_run_model(run: UnlearningRun, name: str) -> nn.Module:
    """The model of run ``name`` (``original`` = the frozen original).

    Raises:
        ValueError: when the engine did not provide that run, naming the ones it did.
    """
    if name == ORIGINAL:
        return run.frozen
    if name not in run.others:
        raise ValueError(
            f"Composition needs the finished run {name!r}, but only "
            f"{sorted(run.others) + [ORIGINAL]} are available; run that strategy first (same "
            "task) or name another"
        )
    return run.others[name]


def _check_same_architecture(first: nn.Module, second: nn.Module, what: str) -> None:
    shapes_a = {key: tuple(value.shape) for key, value in first.state_dict().items()}
    shapes_b = {key: tuple(value.shape) for key, value in second.state_dict().items()}
    if shapes_a != shapes_b:
        differing = sorted(set(shapes_a) ^ set(shapes_b)) or sorted(
            key for key in shapes_a if shapes_a[key] != shapes_b[key]
        )
        raise ValueError(
            f"Cannot combine {what}: the two models have different architectures "
            f"(differing tensors: {differing[:5]})"
        )


def _trainable_copy(model: nn.Module, device: torch.device) -> nn.Module:
    copied = copy.deepcopy(model).to(device)
    copied.requires_grad_(True)
    return copied.train()


@torch.no_grad()
def compose_parts(task: Task, body: nn.Module, head: nn.Module) -> nn.Module:
    """A copy of ``body`` whose decoder/head parameters and buffers are ``head``'s.

    The encoder (and anything else outside the task's decoder part) stays ``body``'s. The
    inputs are not modified.

    Raises:
        ValueError: when the two models' architectures differ.
    """
    _check_same_architecture(body, head, "body and head")
    composed = copy.deepcopy(body)
    target_parts = task.parts(composed).decoder
    source_parts = task.parts(head).decoder
    for target, source in zip(target_parts, source_parts, strict=True):
        target.load_state_dict(source.state_dict())
    return composed


@torch.no_grad()
def interpolate_weights(start: nn.Module, end: nn.Module, t: float) -> nn.Module:
    """A copy of ``start`` with weights ``(1 − t)·θ_start + t·θ_end``.

    Floating-point parameters and buffers (e.g. BatchNorm statistics) are interpolated;
    integer buffers (e.g. ``num_batches_tracked``) come from the nearer end. ``t = 0`` and
    ``t = 1`` give the end points exactly.
    """
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"interpolation t must be in [0, 1], got {t}")
    _check_same_architecture(start, end, "the interpolation's end points")
    mixed = copy.deepcopy(start)
    end_state = end.state_dict()
    state = {}
    for key, value in start.state_dict().items():
        other = end_state[key].to(value.device)
        if value.is_floating_point() and 0.0 < t < 1.0:
            state[key] = (1.0 - t) * value + t * other
        else:  # end points exactly, and integer buffers from the nearer end
            state[key] = (value if t < 0.5 else other).clone()
    mixed.load_state_dict(state)
    return mixed


def _device_of(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    return torch.device("cpu")


@register_strategy(
    "composition",
    CompositionParams,
    needs_retain=True,
    family="bilevel_study",
    description="body (encoder) of the run best at retaining + head (decoder) of the run best "
    "at forgetting, optional short retain fine-tune",
)
def composition(run: UnlearningRun, params: CompositionParams) -> StrategyResult:
    """Compose two finished runs (see the module docstring)."""
    body = resolve_run_model(run, params.body_from)
    head = resolve_run_model(run, params.head_from)
    model = _trainable_copy(compose_parts(run.task, body, head), _device_of(run.model))
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


@register_strategy(
    "interpolation",
    InterpolationParams,
    needs_retain=False,
    family="bilevel_study",
    description="linear weight interpolation (1 - t) * theta_a + t * theta_b between two runs",
)
def interpolation(run: UnlearningRun, params: InterpolationParams) -> StrategyResult:
    """Interpolate two finished runs' weights (see the module docstring)."""
    start = resolve_run_model(run, params.start_run)
    end = resolve_run_model(run, params.end_run)
    model = _trainable_copy(interpolate_weights(start, end, params.t), _device_of(run.model))
    logger.info("interpolation: %r -> %r at t = %.3g", params.start_run, params.end_run, params.t)
    return StrategyResult(
        model=model,
        extras={"start_run": params.start_run, "end_run": params.end_run, "t": params.t},
    )


declare_combined_runs("composition", COMBINABLE_RUNS)
declare_combined_runs("interpolation", COMBINABLE_RUNS)
