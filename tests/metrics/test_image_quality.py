"""fastMRI image-quality metrics, checked against scikit-image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from med_unlearning.metrics.image_quality import nmse, psnr, slice_ssim, ssim, volume_metrics


def _pair(scale: float, seed: int = 0, shape=(4, 40, 36)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    target = np.abs(rng.normal(size=shape)).astype(np.float32) * scale
    prediction = (target + rng.normal(scale=0.2 * scale, size=shape)).astype(np.float32)
    return target, prediction


def _skimage_ssim(target: np.ndarray, prediction: np.ndarray, data_range: float) -> float:
    return float(
        np.mean(
            [
                structural_similarity(t, p, data_range=data_range, win_size=7, K1=0.01, K2=0.03)
                for t, p in zip(target.astype(np.float64), prediction.astype(np.float64))
            ]
        )
    )


@pytest.mark.parametrize("scale", [1e-4, 1.0, 300.0])
def test_ssim_matches_scikit_image_per_slice_with_volume_max(scale: float) -> None:
    target, prediction = _pair(scale)
    expected = _skimage_ssim(target, prediction, float(target.max()))
    assert ssim(target, prediction) == pytest.approx(expected, abs=1e-4)


def test_ssim_uses_the_given_max_value() -> None:
    target, prediction = _pair(1e-4, seed=1)
    peak = 3.0 * float(target.max())
    expected = _skimage_ssim(target, prediction, peak)
    assert ssim(target, prediction, max_value=peak) == pytest.approx(expected, abs=1e-4)
    assert ssim(target, prediction, max_value=peak) != pytest.approx(ssim(target, prediction), abs=1e-3)


@pytest.mark.parametrize("scale", [1e-4, 1.0])
def test_psnr_matches_scikit_image_over_the_volume(scale: float) -> None:
    target, prediction = _pair(scale, seed=2)
    peak = float(target.max())
    expected = peak_signal_noise_ratio(target.astype(np.float64), prediction.astype(np.float64), data_range=peak)
    assert psnr(target, prediction) == pytest.approx(expected, abs=1e-4)
    assert psnr(target, prediction, max_value=2 * peak) == pytest.approx(
        expected + 20 * np.log10(2), abs=1e-4
    )


def test_nmse_definition() -> None:
    target, prediction = _pair(1e-4, seed=3)
    t64, p64 = target.astype(np.float64), prediction.astype(np.float64)
    expected = np.linalg.norm(t64 - p64) ** 2 / np.linalg.norm(t64) ** 2
    assert nmse(target, prediction) == pytest.approx(expected, rel=1e-9)


def test_volume_metrics_and_ordering() -> None:
    target, prediction = _pair(1e-4, seed=4)
    worse = prediction + np.random.default_rng(5).normal(scale=2e-5, size=target.shape)
    good, bad = volume_metrics(target, prediction), volume_metrics(target, worse)
    assert set(good) == {"psnr", "ssim", "nmse"}
    assert good["psnr"] > bad["psnr"] and good["ssim"] > bad["ssim"] and good["nmse"] < bad["nmse"]
    perfect = volume_metrics(target, target)
    assert perfect["ssim"] == pytest.approx(1.0, abs=1e-6) and perfect["nmse"] == 0.0


def test_slice_ssim_is_batched_and_differentiable_with_per_slice_ranges() -> None:
    target, prediction = _pair(1e-4, seed=6)
    ranges = torch.tensor([1.0, 2.0, 0.5, 1.5]) * float(target.max())
    prediction_t = torch.tensor(prediction, requires_grad=True)
    values = slice_ssim(prediction_t, torch.tensor(target), ranges)
    assert values.shape == (4,)
    for index in range(4):
        expected = structural_similarity(
            target[index].astype(np.float64), prediction[index].astype(np.float64),
            data_range=float(ranges[index]),
        )
        assert float(values[index].detach()) == pytest.approx(expected, abs=1e-4)
    (1 - values).mean().backward()
    assert prediction_t.grad is not None and torch.isfinite(prediction_t.grad).all()
    assert prediction_t.grad.abs().sum() > 0


def test_bad_inputs_are_clear_errors() -> None:
    target, prediction = _pair(1.0)
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(target, prediction[:, :10])
    with pytest.raises(ValueError, match="smaller than the 7x7"):
        ssim(target[:, :5, :5], prediction[:, :5, :5])
    with pytest.raises(ValueError, match="must be positive"):
        ssim(np.zeros((2, 8, 8)), np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match="all-zero target"):
        nmse(np.zeros((2, 8, 8)), np.ones((2, 8, 8)))


def test_slice_metrics_match_a_direct_per_slice_computation() -> None:
    from med_unlearning.metrics.image_quality import slice_metrics

    target, prediction = _pair(1e-4, seed=3)
    target[2] = 0.0  # an empty slice: NMSE undefined there
    peak = float(target.max())
    values = slice_metrics(target, prediction, peak)
    assert set(values) == {"psnr", "ssim", "nmse"}
    for index, (t, p) in enumerate(zip(target.astype(np.float64), prediction.astype(np.float64))):
        expected_ssim = structural_similarity(t, p, data_range=peak, win_size=7, K1=0.01, K2=0.03)
        assert values["ssim"][index] == pytest.approx(expected_ssim, abs=1e-4)
        expected_psnr = peak_signal_noise_ratio(t, p, data_range=peak)
        assert values["psnr"][index] == pytest.approx(expected_psnr, rel=1e-6)
        if index != 2:
            expected_nmse = np.sum((t - p) ** 2) / np.sum(t**2)
            assert values["nmse"][index] == pytest.approx(expected_nmse, rel=1e-6)
    assert np.isnan(values["nmse"][2])
    # the volume SSIM is the mean of the slice SSIMs
    assert float(values["ssim"].mean()) == pytest.approx(ssim(target, prediction, peak), abs=1e-6)
