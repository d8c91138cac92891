"""Tests of the inner perturbed sign-gradient step, its schedules and noise distributions."""

from __future__ import annotations

import math

import pytest
import torch

from med_unlearning.unlearning.strategies._perturbation import (
    closeness_weight,
    input_scale,
    perturbed_sign_step,
    sample_noise,
)


def _inputs_and_gradient(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.rand(3, 2, 5, 5, generator=generator)
    gradient = torch.randn(3, 2, 5, 5, generator=generator)
    return inputs, gradient


# ---- the step ---------------------------------------------------------------------------


def test_step_moves_along_gradient_sign_by_step_size() -> None:
    inputs, gradient = _inputs_and_gradient()
    gradient[0, 0, 0, 0] = 0.0  # sign 0: that element must not move
    perturbed = perturbed_sign_step(inputs, gradient, step_size=0.05, epsilon=0.1)
    delta = perturbed - inputs
    assert torch.allclose(delta, 0.05 * gradient.sign(), atol=1e-7)
    assert delta[0, 0, 0, 0] == 0.0


def test_step_stays_inside_the_epsilon_ball_whatever_the_noise() -> None:
    inputs, gradient = _inputs_and_gradient(1)
    noise = 10.0 * sample_noise(inputs.shape, "cauchy", generator=torch.Generator().manual_seed(3))
    epsilon = 0.1
    perturbed = perturbed_sign_step(
        inputs, gradient, step_size=0.5, epsilon=epsilon, closeness=0.2, noise=noise
    )
    delta = perturbed - inputs
    assert delta.abs().max() <= epsilon + 1e-6
    # big steps saturate at the ball's surface
    assert torch.isclose(delta.abs().max(), torch.tensor(epsilon), atol=1e-6)


def test_step_respects_per_item_epsilon() -> None:
    inputs, gradient = _inputs_and_gradient(2)
    epsilon = torch.tensor([0.0, 0.01, 0.2]).reshape(3, 1, 1, 1)
    perturbed = perturbed_sign_step(inputs, gradient, step_size=1.0, epsilon=epsilon)
    per_item = (perturbed - inputs).abs().flatten(1).amax(1)
    assert torch.allclose(per_item, epsilon.flatten(), atol=1e-6)


def test_closeness_solves_the_implicit_update() -> None:
    """x' = x + η·sign(g) − λ·(x' − x) + noise holds exactly inside the ball."""
    inputs, gradient = _inputs_and_gradient(4)
    generator = torch.Generator().manual_seed(0)
    noise = 0.01 * sample_noise(inputs.shape, "gaussian", generator=generator)
    step, closeness = 0.03, 0.5
    perturbed = perturbed_sign_step(
        inputs, gradient, step_size=step, epsilon=1.0, closeness=closeness, noise=noise
    )
    rhs = inputs + step * gradient.sign() - closeness * (perturbed - inputs) + noise
    assert torch.allclose(perturbed, rhs, atol=1e-6)
    # the pull shrinks the displacement compared with no pull
    free = perturbed_sign_step(inputs, gradient, step_size=step, epsilon=1.0, noise=noise)
    assert (perturbed - inputs).abs().sum() < (free - inputs).abs().sum()


def test_step_rejects_bad_arguments() -> None:
    inputs, gradient = _inputs_and_gradient()
    with pytest.raises(ValueError, match="gradient shape"):
        perturbed_sign_step(inputs, gradient[:1], step_size=0.1, epsilon=0.1)
    with pytest.raises(ValueError, match="epsilon"):
        perturbed_sign_step(inputs, gradient, step_size=0.1, epsilon=-0.1)
    with pytest.raises(ValueError, match="closeness"):
        perturbed_sign_step(inputs, gradient, step_size=0.1, epsilon=0.1, closeness=-1.0)


# ---- scales -----------------------------------------------------------------------------


def test_input_scale_references() -> None:
    inputs = torch.stack([torch.linspace(0, 1, 8), torch.linspace(-3, 5, 8)]).reshape(2, 1, 8)
    assert torch.allclose(input_scale(inputs, "range").flatten(), torch.tensor([1.0, 8.0]))
    expected_std = inputs.flatten(1).std(1, unbiased=False)
    assert torch.allclose(input_scale(inputs, "std").flatten(), expected_std)
    assert torch.equal(input_scale(inputs, "absolute").flatten(), torch.ones(2))
    assert input_scale(inputs, "range").shape == (2, 1, 1)
    with pytest.raises(ValueError, match="scale reference"):
        input_scale(inputs, "median")  # type: ignore[arg-type]


# ---- schedules --------------------------------------------------------------------------


def test_closeness_schedules_follow_their_definitions() -> None:
    total = 4
    values = {
        schedule: [closeness_weight(0.8, t, total, schedule, decay=0.5) for t in range(1, 5)]
        for schedule in ("constant", "inverse", "exponential", "linear")
    }
    assert values["constant"] == pytest.approx([0.8] * 4)
    assert values["inverse"] == pytest.approx([0.8, 0.4, 0.8 / 3, 0.2])
    assert values["exponential"] == pytest.approx([0.8, 0.4, 0.2, 0.1])
    assert values["linear"] == pytest.approx([0.8, 0.6, 0.4, 0.2])
    for schedule in ("inverse", "exponential", "linear"):
        series = values[schedule]
        assert all(later < earlier for earlier, later in zip(series, series[1:], strict=False))


def test_closeness_schedule_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="pass_index"):
        closeness_weight(0.1, 0, 3)
    with pytest.raises(ValueError, match="pass_index"):
        closeness_weight(0.1, 4, 3)
    with pytest.raises(ValueError, match=">= 0"):
        closeness_weight(-0.1, 1, 3)
    with pytest.raises(ValueError, match="decay"):
        closeness_weight(0.1, 2, 3, "exponential", decay=1.5)
    with pytest.raises(ValueError, match="Unknown closeness schedule"):
        closeness_weight(0.1, 1, 3, "cosine")  # type: ignore[arg-type]


# ---- noise ------------------------------------------------------------------------------

SAMPLES = 200_000


def _draw(distribution: str) -> torch.Tensor:
    return sample_noise(
        (SAMPLES,), distribution, generator=torch.Generator().manual_seed(11), dtype=torch.float64
    )  # type: ignore[arg-type]


def test_gaussian_noise_has_unit_std() -> None:
    z = _draw("gaussian")
    assert abs(z.mean().item()) < 0.01
    assert z.std().item() == pytest.approx(1.0, abs=0.01)


def test_laplace_noise_has_unit_scale() -> None:
    z = _draw("laplace")
    assert abs(z.median().item()) < 0.01
    assert z.abs().mean().item() == pytest.approx(1.0, abs=0.01)  # E|z| = b
    assert z.std().item() == pytest.approx(math.sqrt(2.0), abs=0.02)


def test_cauchy_noise_has_unit_scale() -> None:
    z = _draw("cauchy")
    assert abs(z.median().item()) < 0.01
    assert z.abs().median().item() == pytest.approx(1.0, abs=0.02)  # P(|z| < γ) = 1/2
    assert z.abs().max().item() > 100  # heavy tails


def test_uniform_noise_spans_minus_one_to_one() -> None:
    z = _draw("uniform")
    assert z.min().item() >= -1.0 and z.max().item() <= 1.0
    assert z.std().item() == pytest.approx(1.0 / math.sqrt(3.0), abs=0.01)


@pytest.mark.parametrize("distribution", ["gaussian", "laplace", "cauchy", "uniform"])
def test_noise_shape_dtype_and_reproducibility(distribution: str) -> None:
    def draw() -> torch.Tensor:
        generator = torch.Generator().manual_seed(5)
        return sample_noise((2, 3, 4), distribution, generator=generator)  # type: ignore[arg-type]

    first, second = draw(), draw()
    assert first.shape == (2, 3, 4) and first.dtype == torch.float32
    assert torch.isfinite(first).all()
    assert torch.equal(first, second)


def test_unknown_noise_distribution_is_an_error() -> None:
    with pytest.raises(ValueError, match="Unknown noise distribution"):
        sample_noise((3,), "poisson")  # type: ignore[arg-type]
