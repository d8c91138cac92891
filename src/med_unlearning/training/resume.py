"""Epoch checkpoints of a long run, and resuming from the last one.

:class:`ResumeSettings` says where the state file lives and how often it is written;
the loop calls :func:`checkpoint_due`, :func:`capture_state` and :func:`save_resume_state`
after an epoch, and :func:`resume_point` before the first one. The state file holds every
RNG's state as well as the model's and optimiser's, so a resumed run ends with the same
weights as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from med_unlearning.io.checkpoint import stale_temporaries, temporary_path

__all__ = [
    "ResumePoint",
    "ResumeSettings",
    "ResumeStateError",
    "capture_state",
    "checkpoint_due",
    "resume_key",
    "resume_point",
    "save_resume_state",
]

# the package's logger name, as before the loop was split into modules
logger = logging.getLogger(__package__)


class ResumeStateError(ValueError):
    """A resume state file cannot be used (another run's, or unreadable); names the file."""


@dataclass(frozen=True)
class ResumeSettings:
    """Epoch checkpoints of a long run, and resuming from the last one.

    Attributes:
        path: the state file (the caller derives it from the run's output location).
        every: write the state every this many epochs (and after the last epoch);
            ``0`` = never write.
        resume: start from the state file when it exists (else train from scratch).
        key: what the run is (a hash of its settings and data); a state file written
            under another key is refused rather than silently continued.

    The state holds the model, optimiser, scheduler and AMP scaler states, the RNG states
    (torch CPU/CUDA, numpy, python, the loader's shuffling generator), the epoch and the
    history so far; it is written atomically (temporary file + ``os.replace``) and read
    with ``torch.load(weights_only=True)``; a temporary file a killed run left next to it is
    removed, with a warning, by the next write (only one this host's dead process named for
    this state file). A resumed run ends with the same weights as an
    uninterrupted one (on CPU; on CUDA up to non-deterministic kernels).
    """

    path: str | Path
    every: int = 1
    resume: bool = True
    key: str = ""


#: Version of the resume state's layout.
_RESUME_FORMAT = 1


def resume_key(*parts: Any) -> str:
    """A short hash identifying a run (its settings and data), for :class:`ResumeSettings`.

    ``parts`` must be JSON-serialisable (parameter dumps, id lists); key order of mappings
    does not matter.
    """
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def checkpoint_due(resume: ResumeSettings | None, epoch: int, epochs: int) -> bool:
    """Whether the state is written after ``epoch`` (every ``resume.every``, and the last)."""
    if resume is None or resume.every <= 0:
        return False
    return epoch % resume.every == 0 or epoch == epochs


def _rng_state() -> dict[str, Any]:
    """Every global RNG's state, as tensors and plain values (``weights_only``-loadable)."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": random.getstate(),
    }


def _set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore every global RNG from :func:`_rng_state`'s record."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def capture_state(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler,
    generator: torch.Generator | None,
) -> dict[str, Any]:
    """The training state after an epoch (CPU copies), to be written by the main process."""
    return {
        "model": {key: value.detach().cpu() for key, value in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler.is_enabled() else None,
        "rng": _rng_state(),
        "loader_generator": generator.get_state() if generator is not None else None,
    }


def _restore_state(
    state: Mapping[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler,
    generator: torch.Generator | None,
) -> None:
    """Load a :func:`capture_state` record back into the live objects, RNGs included."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state["scheduler"] is not None:
        scheduler.load_state_dict(state["scheduler"])
    if state["scaler"] is not None and scaler.is_enabled():
        scaler.load_state_dict(state["scaler"])
    _set_rng_state(state["rng"])
    if generator is not None and state["loader_generator"] is not None:
        generator.set_state(state["loader_generator"])


def save_resume_state(
    resume: ResumeSettings,
    state: dict[str, Any],
    *,
    epoch: int,
    history: Sequence[Mapping[str, float]],
    wall_time_s: float,
) -> None:
    """Write the state atomically: a reader sees the previous file or the new one, whole."""
    path = Path(resume.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": _RESUME_FORMAT,
        "key": resume.key,
        "epoch": epoch,
        "history": [
            {key: value if isinstance(value, int) else float(value) for key, value in row.items()}
            for row in history
        ],
        "wall_time_s": float(wall_time_s),
        **state,
    }
    for leftover in stale_temporaries(path.parent, path.name):
        logger.warning("Removing %s: a killed run's unfinished write of %s", leftover, path)
        leftover.unlink(missing_ok=True)
    temporary = temporary_path(path)
    try:
        torch.save(payload, temporary)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def _load_resume_state(resume: ResumeSettings) -> dict[str, Any] | None:
    """The state in ``resume.path`` (``None`` when there is none yet).

    Raises:
        ResumeStateError: the file is unreadable, of another layout, or another run's.
    """
    path = Path(resume.path)
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a bad file
        raise ResumeStateError(
            f"resume state {path} cannot be read ({error}); delete it to start afresh"
        ) from error
    if not isinstance(state, dict) or state.get("format") != _RESUME_FORMAT:
        raise ResumeStateError(
            f"resume state {path} is not a format-{_RESUME_FORMAT} training state; delete it"
        )
    if state.get("key") != resume.key:
        raise ResumeStateError(
            f"resume state {path} was written by another run (key {state.get('key')!r}, this "
            f"run {resume.key!r}: other settings or data); delete it or set "
            "runtime.resume: false"
        )
    return state


@dataclass(frozen=True)
class ResumePoint:
    """Where a resumed run starts: the history so far, its next epoch and its past cost.

    Attributes:
        rows: the history rows of the epochs already done.
        first_epoch: the first epoch still to run.
        previous_time_s: the optimisation wall time the earlier attempt(s) spent.
    """

    rows: list[dict[str, float]]
    first_epoch: int
    previous_time_s: float


def resume_point(
    resume: ResumeSettings | None,
    *,
    epochs: int,
    description: str,
    objects: tuple[nn.Module, torch.optim.Optimizer, Any, torch.amp.GradScaler],
    generator: torch.Generator | None,
    log: bool,
) -> ResumePoint | None:
    """Restore the run from ``resume``'s state file when asked and present, else ``None``.

    ``objects`` are the model, optimiser, scheduler and scaler the state is loaded into (the
    loader's ``generator`` too); ``log`` says whether this process logs the resume.

    Raises:
        ResumeStateError: the file is unusable, or past the ``epochs`` asked for.
    """
    if resume is None or not resume.resume:
        return None
    state = _load_resume_state(resume)
    if state is None:
        return None
    model, optimizer, scheduler, scaler = objects
    _restore_state(state, model, optimizer, scheduler, scaler, generator)
    done = int(state["epoch"])
    if done > epochs:
        raise ResumeStateError(
            f"{description}: the resume state {resume.path} is at "
            f"epoch {done}, past the {epochs} epochs asked for"
        )
    if log:
        logger.info(
            "%s: resuming after epoch %d/%d from %s", description, done, epochs, resume.path
        )
    return ResumePoint(
        rows=[dict(row) for row in state["history"]],
        first_epoch=done + 1,
        previous_time_s=float(state["wall_time_s"]),
    )
