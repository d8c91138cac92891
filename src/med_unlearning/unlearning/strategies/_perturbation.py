"""The inner step of bilevel boundary unlearning, as small pure functions (docs/studies.md §3);
used by :mod:`~med_unlearning.unlearning.strategies.boundary`.

From a forget input ``x`` the frozen original model f₀ is pushed towards its decision
boundary by one *perturbed sign-gradient* step kept inside an L∞ ball of radius ε:

    x' = clip_ε( x + η · sign(∇_x L(f₀(x), y)) − λ_t · (x' − x) + γ · z )

``x'`` appears on both sides: the closeness pull λ_t · (x' − x) acts on the step it is part
of. Solved exactly (before the projection) this is

    x' − x = (η · sign(∇_x L) + γ · z) / (1 + λ_t),   then clipped to [−ε, ε]

i.e. the pull shrinks the whole displacement by 1 / (1 + λ_t) (λ = 0: a plain noisy FGSM
step; large λ: x' stays at x), and the projection keeps ``|x' − x| ≤ ε`` everywhere.

The study states ε = 0.1 for inputs in [0, 1]. Our inputs are z-scored (segmentation) or at
the raw fastMRI scale (reconstruction), so ε, η and γ are given *relative* to a per-item
scale (:func:`input_scale`): the item's value range (max − min, which is 1 for [0, 1]
images, so the study's numbers carry over), its standard deviation, or 1 (absolute units).

The closeness weight may decay over the passes t = 1 … T (:func:`closeness_weight`) and the
noise ``z`` comes from a standard Gaussian, Laplace, Cauchy or uniform distribution
(:func:`sample_noise`), drawn from an explicit generator so runs are reproducible.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

__all__ = [
    "ClosenessSchedule",
    "NoiseDistribution",
    "ScaleReference",
    "closeness_weight",
    "input_scale",
    "perturbed_sign_step",
    "sample_noise",
]

#: How the closeness weight λ_t decays over the passes (see :func:`closeness_weight`).
ClosenessSchedule = Literal["constant", "inverse", "exponential", "linear"]

#: The noise distributions of the study (see :func:`sample_noise`).
NoiseDistribution = Literal["gaussian", "laplace", "cauchy", "uniform"]

#: What ε, η and γ are relative to (see :func:`input_scale`).
ScaleReference = Literal["range", "std", "absolute"]

_TINY = 1e-12


def closeness_weight(
    base: float,
    pass_index: int,
    total_passes: int,
    schedule: ClosenessSchedule = "constant",
    decay: float = 0.5,
) -> float:
    """The closeness weight λ_t of pass ``t = pass_index`` (1-based) out of ``total_passes``.

    Schedules (λ = ``base``, T = ``total_passes``):

    - ``constant``: λ_t = λ
    - ``inverse``: λ_t = λ / t
    - ``exponential``: λ_t = λ · decay^(t − 1)
    - ``linear``: λ_t = λ · (T − t + 1) / T  (λ at the first pass, λ / T at the last)

    Raises:
        ValueError: for a pass outside 1 … T, a negative λ, a decay outside (0, 1] or an
            unknown schedule.
    """
    if total_passes < 1 or not 1 <= pass_index <= total_passes:
        raise ValueError(f"pass_index must be in 1..{total_passes}, got {pass_index}")
    if base < 0:
        raise ValueError(f"closeness weight must be >= 0, got {base}")
    if schedule == "constant":
        return float(base)
    if schedule == "inverse":
        return float(base) / pass_index
    if schedule == "exponential":
        if not 0.0 < decay <= 1.0:
            raise ValueError(f"exponential closeness decay must be in (0, 1], got {decay}")
        return float(base) * decay ** (pass_index - 1)
    if schedule == "linear":
        return float(base) * (total_passes - pass_index + 1) / total_passes
    raise ValueError(
        f"Unknown closeness schedule {schedule!r}; valid: constant, inverse, exponential, linear"
    )


def sample_noise(
    shape: torch.Size | tuple[int, ...],
    distribution: NoiseDistribution = "gaussian",
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Standard noise ``z`` of ``shape``, location 0 and unit *scale parameter*.

    - ``gaussian``: N(0, 1) (standard deviation 1);
    - ``laplace``: Laplace(0, b = 1) (mean absolute value 1, standard deviation √2);
    - ``cauchy``: Cauchy(0, 1) (median absolute value 1; no mean or variance);
    - ``uniform``: U(−1, 1) (standard deviation 1/√3).

    Laplace, Cauchy and uniform samples are drawn by inverting their CDF on uniforms from
    ``generator``, so every distribution is reproducible from the same generator. The
    generator must live on ``device`` (its default is the generator's device).
    """
    if device is None:
        device = generator.device if generator is not None else torch.device("cpu")
    if distribution == "gaussian":
        return torch.randn(shape, generator=generator, dtype=dtype, device=device)
    uniform = torch.rand(shape, generator=generator, dtype=torch.float64, device=device)
    if distribution == "uniform":
        return (2.0 * uniform - 1.0).to(dtype)
    # open interval (0, 1): the inverse CDFs below are infinite at the ends
    uniform = uniform.clamp(_TINY, 1.0 - _TINY)
    if distribution == "laplace":
        centred = uniform - 0.5
        return (-torch.sign(centred) * torch.log1p(-2.0 * centred.abs())).to(dtype)
    if distribution == "cauchy":
        return torch.tan(math.pi * (uniform - 0.5)).to(dtype)
    raise ValueError(
        f"Unknown noise distribution {distribution!r}; valid: gaussian, laplace, cauchy, uniform"
    )


def input_scale(inputs: torch.Tensor, reference: ScaleReference = "range") -> torch.Tensor:
    """A per-item scale ``[B, 1, …, 1]`` (broadcastable to ``inputs``) that ε, η, γ multiply.

    Args:
        inputs: a batch ``[B, …]``.
        reference: ``range`` (max − min of the item: 1 for [0, 1] images, so the study's
            ε = 0.1 keeps its meaning), ``std`` (the item's standard deviation: suits
            z-scored volumes and k-space) or ``absolute`` (1: ε is in the input's units).

    Items with zero range/std get scale 0 (they are not perturbed).
    """
    flat = inputs.detach().flatten(1).float()
    if reference == "range":
        scale = flat.amax(dim=1) - flat.amin(dim=1)
    elif reference == "std":
        scale = flat.std(dim=1, unbiased=False)
    elif reference == "absolute":
        scale = torch.ones(flat.shape[0], device=inputs.device)
    else:
        raise ValueError(f"Unknown scale reference {reference!r}; valid: range, std, absolute")
    return scale.to(inputs.dtype).reshape(-1, *([1] * (inputs.dim() - 1)))


def perturbed_sign_step(
    inputs: torch.Tensor,
    gradient: torch.Tensor,
    *,
    step_size: float | torch.Tensor,
    epsilon: float | torch.Tensor,
    closeness: float = 0.0,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """One perturbed sign-gradient step from ``inputs``, projected onto the L∞ ε-ball.

    Solves ``x' = x + η·sign(g) − λ·(x' − x) + noise`` for ``x'`` (see the module
    docstring): ``x' = x + clip((η·sign(g) + noise) / (1 + λ), −ε, ε)``.

    Args:
        inputs: ``x``.
        gradient: ``∇_x L(f₀(x), y)`` (same shape); only its sign is used.
        step_size: η, a number or a tensor broadcastable to ``x`` (e.g. per item).
        epsilon: ε, the ball's radius, same conventions (must be >= 0).
        closeness: λ_t >= 0, the pull back towards ``x`` (0 = none).
        noise: ``γ · z`` already scaled (same shape as ``x``), or ``None``.

    Returns:
        The perturbed input ``x'`` (no gradient history).
    """
    if gradient.shape != inputs.shape:
        raise ValueError(
            f"gradient shape {tuple(gradient.shape)} differs from input shape {tuple(inputs.shape)}"
        )
    if closeness < 0:
        raise ValueError(f"closeness must be >= 0, got {closeness}")
    epsilon = torch.as_tensor(epsilon, dtype=inputs.dtype, device=inputs.device)
    if bool((epsilon < 0).any()):
        raise ValueError("epsilon must be >= 0")
    step = torch.as_tensor(step_size, dtype=inputs.dtype, device=inputs.device)
    delta = step * gradient.detach().sign()
    if noise is not None:
        if noise.shape != inputs.shape:
            raise ValueError(
                f"noise shape {tuple(noise.shape)} differs from input shape {tuple(inputs.shape)}"
            )
        delta = delta + noise.to(inputs.dtype)
    delta = delta / (1.0 + closeness)
    delta = torch.maximum(torch.minimum(delta, epsilon), -epsilon)
    return (inputs.detach() + delta).detach()
