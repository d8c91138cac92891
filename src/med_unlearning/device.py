"""Device selection (``auto`` = CUDA when present, else CPU) and mixed-precision helpers.

:func:`full_precision` marks a loss or metric as computed in float32 with autocast off,
whoever calls it: the network's forward pass may run under ``torch.autocast`` (bf16/fp16),
but the objective is defined in float32 — SSIM's window convolutions in bf16 move a slice's
SSIM by ~1e-2, more than the differences the studies report.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

import torch

__all__ = ["autocast_dtype", "full_precision", "resolve_device", "to_float32"]

_P = ParamSpec("_P")
_R = TypeVar("_R")

#: Floating dtypes below float32 that :func:`to_float32` upcasts.
_LOW_PRECISION = (torch.float16, torch.bfloat16)


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """Turn a device spec (``auto``, ``cpu``, ``cuda``, ``cuda:1``, ``mps``) into a device.

    Raises:
        ValueError: when CUDA/MPS is asked for explicitly but is not available.
    """
    if isinstance(spec, torch.device):
        return spec
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"runtime.device={spec!r} but no CUDA device is visible; use 'auto' or 'cpu'")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"runtime.device={spec!r} but MPS is not available; use 'auto' or 'cpu'")
    return device


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """Return the autocast dtype for ``precision`` on ``device``, or ``None`` for plain fp32.

    Mixed precision is used on CUDA only; on CPU the project always computes in fp32 so that
    results stay deterministic and comparable. ``bf16`` falls back to ``fp16`` on GPUs
    without bf16 support.
    """
    if precision == "fp32" or device.type != "cuda":
        return None
    if precision == "bf16":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float16


def to_float32(value: Any) -> Any:
    """``value`` with every fp16/bf16 tensor inside (tuples, lists, dicts) cast to float32.

    float32/float64 and integer tensors, and non-tensors, are returned unchanged, so a
    float64 metric keeps its precision. Gradients flow through the cast.
    """
    if isinstance(value, torch.Tensor):
        return value.float() if value.dtype in _LOW_PRECISION else value
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(to_float32(item) for item in value))
    if isinstance(value, (tuple, list)):
        return type(value)(to_float32(item) for item in value)
    if isinstance(value, Mapping):
        return {key: to_float32(item) for key, item in value.items()}
    return value


def _autocast_device_types(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> set[str]:
    """The device types whose autocast must be switched off: CPU plus the tensors' ones."""
    types = {"cpu"}
    stack: list[Any] = [*args, *kwargs.values()]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            types.add(item.device.type)
        elif isinstance(item, (tuple, list)):
            stack.extend(item)
        elif isinstance(item, Mapping):
            stack.extend(item.values())
    if torch.cuda.is_available():
        types.add("cuda")
    return types


def full_precision(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """Decorate a loss/metric so it always computes in float32 with autocast disabled.

    fp16/bf16 tensor arguments (also inside tuples, lists and dicts, e.g. a batch or a
    tuple of features) are cast to float32 and every autocast context is switched off for
    the call, so ``loss(output_bf16, target)`` under ``torch.autocast`` equals the float32
    loss of the same values. Use it where a loss or metric is *defined*, so that every
    caller (training loops, unlearning objectives, evaluation) gets the same numbers.
    """

    @functools.wraps(function)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with contextlib.ExitStack() as stack:
            for kind in sorted(_autocast_device_types(args, kwargs)):
                if torch.is_autocast_enabled(kind):
                    stack.enter_context(torch.autocast(kind, enabled=False))
            return function(*to_float32(args), **to_float32(dict(kwargs)))

    return wrapper
