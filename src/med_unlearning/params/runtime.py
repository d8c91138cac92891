"""``runtime``: where and how every torch computation of the project runs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from med_unlearning.params.base import StrictModel, register_section


@register_section("runtime")
class RuntimeParams(StrictModel):
    """Device, precision, seed and data-loading settings shared by every pipeline.

    Attributes:
        device: ``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``fp32``; ``bf16``/``fp16`` enable autocast mixed precision on CUDA
            (ignored on CPU, where fp32 is used).
        seed: global seed; every random choice of the project derives from it.
        num_workers: DataLoader worker processes (0 = load in the main process).
        pin_memory: pin host memory for faster host-to-GPU copies (``auto`` = on CUDA only).
        progress: show progress bars (epoch, loss, ETA) on the terminal.
        deterministic: ask torch for deterministic algorithms (slower on GPU).
        cudnn_benchmark: let cuDNN pick the fastest kernels for fixed shapes.
        compile: wrap models with ``torch.compile``.
        checkpoint_every: write a training run's resume state every this many epochs
            (and after its last); ``0`` = never.
        resume: start each training run from its resume state when one exists (a run that
            stopped continues from its last saved epoch; a finished run is not retrained).
        resume_dir: where resume states live (``<resume_dir>/<task>/<run>.pt``); conf/base
            derives it from ``data_root``, next to the models (``06_models/resume``).
    """

    device: str = Field(default="auto", pattern=r"^(auto|cpu|cuda(:\d+)?|mps)$")
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    seed: int = Field(default=42, ge=0)
    num_workers: int = Field(default=0, ge=0)
    pin_memory: Literal["auto", True, False] = "auto"
    progress: bool = True
    deterministic: bool = True
    cudnn_benchmark: bool = False
    compile: bool = False
    checkpoint_every: int = Field(default=0, ge=0)
    resume: bool = False
    resume_dir: str = Field(default="data/06_models/resume", min_length=1)
