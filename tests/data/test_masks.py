"""K-space undersampling with MONAI's masks: acceleration, centre, seeding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from med_unlearning.data.masks import (
    KspaceMaskError,
    KspaceUndersampler,
    build_kspace_mask,
    seed_for_volume,
    training_seed,
)


def _kspace(coils: int = 3, height: int = 16, width: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (coils, height, width)
    return (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(np.complex64)


def _columns(mask: torch.Tensor) -> np.ndarray:
    return mask.reshape(-1).numpy()


@pytest.mark.parametrize("width", [64, 320, 368])
@pytest.mark.parametrize(("acceleration", "fraction"), [(8, 0.04), (4, 0.08)])
def test_equispaced_mask_has_the_requested_acceleration_and_full_centre(
    width: int, acceleration: int, fraction: float
) -> None:
    undersample = KspaceUndersampler("equispaced", [acceleration], [fraction])
    kspace = _kspace(width=width)
    for seed in range(10):
        columns = _columns(undersample(kspace, seed).mask)
        assert abs(columns.sum() - width / acceleration) <= 1.5
        num_low = int(round(width * fraction))
        start = (width - num_low + 1) // 2
        assert columns[start : start + num_low].all()
        assert columns[width // 2]


def test_random_mask_acceleration_holds_on_average() -> None:
    undersample = KspaceUndersampler("random", [8], [0.04])
    kspace = _kspace(width=320)
    sampled = [_columns(undersample(kspace, seed).mask).sum() for seed in range(200)]
    assert np.mean(sampled) == pytest.approx(320 / 8, rel=0.05)
    assert len(set(sampled)) > 1


def test_masked_kspace_keeps_sampled_columns_and_zeros_the_rest() -> None:
    kspace = _kspace()
    sample = KspaceUndersampler("equispaced", [4], [0.08])(kspace, seed=3)
    columns = _columns(sample.mask)
    masked = sample.masked_kspace.numpy()
    assert masked.shape == (3, 16, 64, 2)
    assert sample.mask.dtype == torch.bool and sample.mask.shape == (1, 1, 64, 1)
    complex_masked = masked[..., 0] + 1j * masked[..., 1]
    np.testing.assert_allclose(complex_masked[..., columns], kspace[..., columns], rtol=1e-6)
    assert np.all(complex_masked[..., ~columns] == 0)
    assert sample.acceleration == pytest.approx(64 / columns.sum())


def test_zero_filled_image_follows_fastmri_fft_convention() -> None:
    kspace = _kspace()
    sample = KspaceUndersampler("equispaced", [4], [0.08])(kspace, seed=1)
    columns = _columns(sample.mask)
    images = np.fft.fftshift(
        np.fft.ifft2(np.fft.ifftshift(kspace * columns, axes=(-2, -1)), norm="ortho"),
        axes=(-2, -1),
    )
    expected = np.sqrt((np.abs(images) ** 2).sum(axis=0))
    np.testing.assert_allclose(sample.zero_filled.numpy(), expected, rtol=1e-4, atol=1e-6)


def test_same_seed_same_mask_and_file_name_seeds_are_stable() -> None:
    undersample = KspaceUndersampler("equispaced", [8], [0.04])
    kspace = _kspace(width=320)
    seed = seed_for_volume("brain/file_brain_AXT2_200_2000019")
    assert seed == seed_for_volume("file_brain_AXT2_200_2000019")  # folder does not matter
    first = _columns(undersample(kspace, seed).mask)
    undersample(kspace, 12345)  # an unrelated call in between must not matter
    np.testing.assert_array_equal(_columns(undersample(kspace, seed).mask), first)
    # Another undersampler with the same settings (e.g. in another process) agrees.
    other = KspaceUndersampler("equispaced", [8], [0.04])
    np.testing.assert_array_equal(_columns(other(kspace, seed).mask), first)
    # Different files get different offsets.
    masks = {
        tuple(_columns(undersample(kspace, seed_for_volume(f"file_{index}")).mask))
        for index in range(20)
    }
    assert len(masks) > 1


def test_seed_for_volume_is_crc32_of_the_file_name() -> None:
    import zlib

    assert seed_for_volume("knee/file1000001") == zlib.crc32(b"file1000001")


def test_training_seeds_follow_torch_seed() -> None:
    torch.manual_seed(7)
    first = [training_seed() for _ in range(5)]
    torch.manual_seed(7)
    assert [training_seed() for _ in range(5)] == first
    assert len(set(first)) > 1


def test_single_coil_kspace_gets_a_coil_axis() -> None:
    sample = KspaceUndersampler("equispaced", [4], [0.08])(_kspace()[0], seed=0)
    assert sample.masked_kspace.shape == (1, 16, 64, 2)
    assert sample.zero_filled.shape == (16, 64)


@pytest.mark.parametrize(
    ("kind", "accelerations", "fractions", "message"),
    [
        ("gaussian", [8], [0.04], "Unknown mask kind"),
        ("equispaced", [8, 4], [0.04], "equal length"),
        ("equispaced", [8], [0.2], "center_fraction"),
        ("random", [1], [0.04], "acceleration must be > 1"),
    ],
)
def test_bad_mask_settings_are_clear_errors(kind, accelerations, fractions, message) -> None:
    with pytest.raises(KspaceMaskError, match=message):
        build_kspace_mask(kind, accelerations, fractions)


def test_bad_kspace_is_a_clear_error() -> None:
    undersample = KspaceUndersampler("equispaced", [8], [0.04])
    with pytest.raises(KspaceMaskError, match="complex"):
        undersample(np.ones((2, 8, 64), dtype=np.float32), seed=0)
    with pytest.raises(KspaceMaskError, match="too small"):
        undersample(_kspace(width=8), seed=0)
