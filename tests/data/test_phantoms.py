"""Tests of the synthetic anatomies (brain and knee phantoms) and their random helpers."""

from __future__ import annotations

import numpy as np
import pytest

from med_unlearning.data.phantoms import (
    BrainTissue,
    KneeTissue,
    RandomWaveField,
    block_mean,
    brain_tissue_map,
    derive_rng,
    draw_brain_anatomy,
    draw_knee_anatomy,
    fov_grid,
    knee_tissue_slice,
    rotation_matrix,
    stable_digest,
)


def test_derive_rng_depends_only_on_seed_and_keys() -> None:
    first = derive_rng(7, "brain", 3).random(5)
    assert np.array_equal(first, derive_rng(7, "brain", 3).random(5))
    assert not np.array_equal(first, derive_rng(8, "brain", 3).random(5))
    assert not np.array_equal(first, derive_rng(7, "brain", 4).random(5))
    assert not np.array_equal(first, derive_rng(7, "knee", 3).random(5))


def test_stable_digest_is_hex_of_requested_length_and_stable() -> None:
    digest = stable_digest(1, "patient", "x")
    assert digest == stable_digest(1, "patient", "x")
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert len(stable_digest("a", length=12)) == 12
    assert stable_digest(1, "a") != stable_digest(2, "a")


def test_random_wave_field_has_unit_variance_and_exact_gradient() -> None:
    field = RandomWaveField.draw(np.random.default_rng(0), 3, (1.0, 3.0), num_waves=64)
    points = np.random.default_rng(1).uniform(-20, 20, size=(3, 20000))
    values = field(points)
    assert abs(values.mean()) < 0.05
    assert 0.85 < values.std() < 1.15

    probe = np.random.default_rng(2).uniform(-1, 1, size=(3, 10))
    _, gradient = field.value_and_gradient(probe)
    step = 1e-6
    for axis in range(3):
        shifted = probe.copy()
        shifted[axis] += step
        numeric = (field(shifted) - field(probe)) / step
        np.testing.assert_allclose(gradient[axis], numeric, rtol=1e-3, atol=1e-3)


def test_random_wave_field_orientation_sets_wave_directions() -> None:
    field = RandomWaveField.draw(
        np.random.default_rng(0), 2, (5.0, 6.0), orientation=0.0, orientation_spread=0.1
    )
    angles = np.arctan2(field.wave_vectors[:, 1], field.wave_vectors[:, 0])
    assert np.all(np.abs(angles) <= 0.1 + 1e-12)
    with pytest.raises(ValueError, match="2D"):
        RandomWaveField.draw(np.random.default_rng(0), 3, (1.0, 2.0), orientation=0.0)


def test_fov_grid_spans_the_field_of_view_with_pixel_centres() -> None:
    grid = fov_grid((4, 8))
    assert grid.shape == (2, 4, 8)
    np.testing.assert_allclose(grid[0, :, 0], [-0.75, -0.25, 0.25, 0.75])
    assert grid[1].min() == pytest.approx(-1 + 1 / 8)
    assert fov_grid((4, 8), supersample=2).shape == (2, 8, 16)


def test_block_mean_averages_blocks_and_rejects_ragged_shapes() -> None:
    image = np.arange(16, dtype=float).reshape(4, 4)
    np.testing.assert_allclose(block_mean(image, 2), [[2.5, 4.5], [10.5, 12.5]])
    assert block_mean(image, 1) is image
    with pytest.raises(ValueError, match="multiple"):
        block_mean(np.zeros((5, 4)), 2)


def test_rotation_matrix_is_orthonormal_in_2d_and_3d() -> None:
    for angles in ([0.3], [0.1, -0.2, 0.4]):
        matrix = rotation_matrix(angles)
        np.testing.assert_allclose(matrix @ matrix.T, np.eye(len(matrix)), atol=1e-12)
        assert np.linalg.det(matrix) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="angles"):
        rotation_matrix([0.1, 0.2])


@pytest.fixture(scope="module")
def brain_labels() -> np.ndarray:
    anatomy = draw_brain_anatomy(
        derive_rng(0, "brain"), infarct_probability=1.0, other_probability=1.0
    )
    return brain_tissue_map(anatomy, fov_grid((64, 64, 24)))


def test_brain_phantom_holds_every_tissue(brain_labels: np.ndarray) -> None:
    present = set(np.unique(brain_labels).tolist())
    assert present == {int(tissue) for tissue in BrainTissue}


def test_brain_phantom_is_layered_from_scalp_to_white_matter(brain_labels: np.ndarray) -> None:
    # Along the axis from the centre to the right edge of a mid slice: brain, then skull,
    # then scalp, then air.
    profile = brain_labels[32:, 32, 14].tolist()
    first = {tissue: profile.index(tissue) for tissue in set(profile)}
    assert first[BrainTissue.SKULL] < first[BrainTissue.SCALP] < first[BrainTissue.BACKGROUND]
    assert brain_labels[0, 0, 0] == BrainTissue.BACKGROUND
    assert brain_labels.dtype == np.uint8
    volume = {tissue: int(np.sum(brain_labels == tissue)) for tissue in BrainTissue}
    assert volume[BrainTissue.WHITE_MATTER] > volume[BrainTissue.WM_LESION]
    assert volume[BrainTissue.CORTICAL_GM] > volume[BrainTissue.VENTRICLE]


def test_brain_phantom_is_a_function_of_position_not_of_the_grid() -> None:
    anatomy = draw_brain_anatomy(derive_rng(3, "brain"))
    points = fov_grid((32, 32, 8))
    full = brain_tissue_map(anatomy, points)
    assert np.array_equal(full[::2, 1::2], brain_tissue_map(anatomy, points[:, ::2, 1::2]))


def test_brain_anatomies_differ_between_subjects_and_with_deformation() -> None:
    points = fov_grid((32, 32, 8))
    first = brain_tissue_map(draw_brain_anatomy(derive_rng(0, "a")), points)
    second = brain_tissue_map(draw_brain_anatomy(derive_rng(0, "b")), points)
    assert np.mean(first != second) > 0.05
    rigid = brain_tissue_map(draw_brain_anatomy(derive_rng(0, "a"), deformation=0.0), points)
    assert np.mean(first != rigid) > 0.01


def test_knee_slice_has_bones_cartilage_and_oriented_muscle_texture() -> None:
    anatomy = draw_knee_anatomy(derive_rng(0, "knee"))
    points = fov_grid((128, 128))
    knee = knee_tissue_slice(anatomy, 0.6, points, np.random.default_rng(0))
    present = set(np.unique(knee.labels).tolist())
    assert present == {int(tissue) for tissue in KneeTissue}

    # Texture only modulates marrow (trabeculae) and muscle (fibres).
    plain = ~np.isin(knee.labels, [KneeTissue.MARROW, KneeTissue.MUSCLE])
    assert np.all(knee.texture[plain] == 1.0)
    assert knee.texture[knee.labels == KneeTissue.MARROW].std() > 0.05

    # Muscle fibres run along the leg (vertical): the texture varies across columns.
    rotation = rotation_matrix(-anatomy.rotation)
    upright = knee_tissue_slice(
        anatomy, 0.6, np.tensordot(rotation, points, axes=(1, 0)), np.random.default_rng(0)
    )
    texture = np.where(upright.labels == KneeTissue.MUSCLE, upright.texture, np.nan)
    across = np.nanmean(np.abs(np.diff(texture, axis=1)))
    along = np.nanmean(np.abs(np.diff(texture, axis=0)))
    assert across > 2.0 * along


def test_knee_leaves_background_at_both_sides_like_a_fastmri_knee() -> None:
    """The limb spans ~60-70 % of the width (a ~100 mm knee in fastMRI's 140 mm field of view)."""
    points = fov_grid((64, 64))
    for index in range(4):
        anatomy = draw_knee_anatomy(derive_rng(index, "knee"))
        labels = knee_tissue_slice(anatomy, 0.5, points, np.random.default_rng(0)).labels
        columns_with_tissue = (labels != KneeTissue.BACKGROUND).any(axis=0)
        assert 0.5 < columns_with_tissue.mean() < 0.8
        assert not columns_with_tissue[:3].any() and not columns_with_tissue[-3:].any()
    full = draw_knee_anatomy(derive_rng(0, "knee"), size=1.0)
    labels = knee_tissue_slice(full, 0.5, points, np.random.default_rng(0)).labels
    assert (labels != KneeTissue.BACKGROUND).any(axis=0).mean() > 0.8


def test_knee_notch_and_fibula_depend_on_slice_position() -> None:
    anatomy = draw_knee_anatomy(derive_rng(1, "knee"), pose_jitter=0.0, size=1.0)
    points = fov_grid((96, 96))
    anterior = knee_tissue_slice(anatomy, 0.1, points, np.random.default_rng(0)).labels
    posterior = knee_tissue_slice(anatomy, 0.8, points, np.random.default_rng(0)).labels
    bone = (KneeTissue.MARROW, KneeTissue.CORTICAL_BONE)
    # The fibula (lateral, below the joint) shows only in posterior slices.
    lateral_low = (slice(60, 90), slice(70, 90))
    assert np.isin(posterior[lateral_low], bone).sum() > np.isin(anterior[lateral_low], bone).sum()
