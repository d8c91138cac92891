"""What the strategies that combine finished runs share: model composition
(:mod:`~med_unlearning.unlearning.strategies.composition`) and weight interpolation
(:mod:`~med_unlearning.unlearning.strategies.interpolation`) (bilevel study, docs/studies.md §3).

The engine hands the finished runs' models over in
:attr:`~med_unlearning.unlearning.registry.UnlearningRun.others`, by run name; the name
:data:`ORIGINAL` means the original model. Kedro builds the pipeline before it reads
parameters, so the runs a combining strategy *may* use are fixed when it registers:
``combines=combinable_runs``, the main run of every registered strategy that combines
nothing itself and applies to both tasks
(:func:`~med_unlearning.unlearning.registry.combinable_runs`). The combining node then runs
after them and receives their checkpoints; the parameters pick two of them
(:func:`check_run_name` validates the pick). Choosing the "best" runs automatically needs
their evaluation, so the evaluation pipeline can write these names later (e.g. the run with
the smallest retain gap to the oracle as the body, the one with the smallest forget gap as
the head).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from med_unlearning.unlearning.registry import UnlearningRun, combinable_runs

__all__ = [
    "ORIGINAL",
    "check_run_name",
    "check_same_architecture",
    "resolve_run_model",
    "trainable_copy",
]

#: The run name that refers to the original (frozen) model.
ORIGINAL = "original"


def check_run_name(value: str) -> str:
    """``value`` when it names a combinable run or :data:`ORIGINAL` (a parameters validator).

    Raises:
        ValueError: for any other name, listing the valid ones.
    """
    runs = combinable_runs()
    if value != ORIGINAL and value not in runs:
        raise ValueError(
            f"{value!r} is not a combinable run; valid: {[ORIGINAL, *runs]} "
            "(every registered strategy that combines no runs and applies to every task: "
            "med_unlearning.unlearning.registry.combinable_runs)"
        )
    return value


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


def check_same_architecture(first: nn.Module, second: nn.Module, what: str) -> None:
    """Raise a ``ValueError`` naming ``what`` when the two models' tensors differ."""
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


def trainable_copy(model: nn.Module, device: torch.device) -> nn.Module:
    """A deep copy of ``model`` on ``device``, in train mode, every parameter trainable."""
    copied = copy.deepcopy(model).to(device)
    copied.requires_grad_(True)
    return copied.train()
