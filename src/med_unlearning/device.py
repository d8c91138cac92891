"""Device selection: ``auto`` means CUDA when present, else CPU, everywhere in the project."""

from __future__ import annotations

import torch

__all__ = ["resolve_device", "autocast_dtype"]


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
