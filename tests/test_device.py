"""Device selection."""

from __future__ import annotations

import pytest
import torch

from med_unlearning.device import autocast_dtype, resolve_device


def test_auto_picks_cuda_when_present_else_cpu() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


def test_explicit_cpu() -> None:
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_gpu_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no CUDA device"):
        resolve_device("cuda")


def test_mixed_precision_only_on_cuda() -> None:
    assert autocast_dtype("bf16", torch.device("cpu")) is None
    assert autocast_dtype("fp32", torch.device("cuda")) is None
    assert autocast_dtype("fp16", torch.device("cuda")) == torch.float16
