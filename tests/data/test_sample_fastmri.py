"""Tests of the sample fastMRI generator: schema, physics, determinism, anatomy contrast."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from pydantic import ValidationError

import med_unlearning.data.sample_fastmri as sample_fastmri
from med_unlearning.data.phantoms import BrainTissue, KneeTissue, fov_grid
from med_unlearning.data.sample_fastmri import (
    BRAIN_CONTRASTS,
    KNEE_CONTRASTS,
    centered_fft2,
    centered_ifft2,
    coil_sensitivities,
    generate_fastmri_volume,
    ismrmrd_header,
    lazy_fastmri_sample,
    plan_fastmri_sample,
    root_sum_of_squares,
)
from med_unlearning.io.fastmri import ISMRMRD_NAMESPACE, FastMRIVolume, parse_ismrmrd_header
from med_unlearning.params.sample_data import (
    SCANNER_FIELD_STRENGTH_T,
    FastMRISampleParams,
    SampleDataParams,
)


def tiny_params(**overrides) -> FastMRISampleParams:
    settings = {
        "image_size": (32, 32),
        "num_coils": 2,
        "brain": {"num_volumes": 2, "num_slices": 3},
        "knee": {"num_volumes": 2, "num_slices": 3},
    }
    settings.update(overrides)
    return FastMRISampleParams.model_validate(settings)


@pytest.fixture(scope="module")
def volumes() -> dict[str, tuple[object, FastMRIVolume]]:
    params = tiny_params(readout_oversampling=2)
    return {
        plan.partition_id: (plan, generate_fastmri_volume(plan, params))
        for plan in plan_fastmri_sample(params, seed=5)
    }


# ------------------------------------------------------------------------------------------
# Fourier conventions and coils
# ------------------------------------------------------------------------------------------


def test_centered_fft_is_orthonormal_centred_and_inverted() -> None:
    image = np.random.default_rng(0).normal(size=(2, 8, 6)) + 0j
    kspace = centered_fft2(image)
    np.testing.assert_allclose(np.sum(np.abs(kspace) ** 2), np.sum(np.abs(image) ** 2))
    np.testing.assert_allclose(centered_ifft2(kspace), image, atol=1e-12)
    # A constant image has all its energy at the centre of k-space, index (H//2, W//2).
    constant = centered_fft2(np.ones((8, 6), dtype=complex))
    assert np.unravel_index(np.argmax(np.abs(constant)), constant.shape) == (4, 3)
    assert np.abs(constant[4, 3]) == pytest.approx(np.sqrt(48))


def test_coil_sensitivities_are_normalised_smooth_and_distinct() -> None:
    points = fov_grid((32, 32))
    maps = coil_sensitivities(np.random.default_rng(0), 4, points)
    assert maps.shape == (4, 32, 32) and np.iscomplexobj(maps)
    np.testing.assert_allclose(np.sum(np.abs(maps) ** 2, axis=0), 1.0)
    magnitudes = np.abs(maps)
    # Each coil sees its own side of the field of view best.
    assert len({int(np.argmax(magnitude)) for magnitude in magnitudes}) == 4
    # Smooth: neighbouring pixels differ little.
    assert np.max(np.abs(np.diff(magnitudes, axis=-1))) < 0.2


def test_root_sum_of_squares_combines_coils() -> None:
    coils = np.array([[[3.0 + 0j]], [[0.0 + 4j]]])
    np.testing.assert_allclose(root_sum_of_squares(coils), [[5.0]])


# ------------------------------------------------------------------------------------------
# Header
# ------------------------------------------------------------------------------------------


def test_ismrmrd_header_is_namespaced_xml_with_the_fields_readers_use() -> None:
    header = ismrmrd_header(
        protocol="CORPD_FBK",
        scanner="Aera",
        kspace_size=(64, 36),
        recon_size=(32, 32),
        num_slices=5,
        num_coils=8,
        fov_mm=140.0,
        slice_thickness_mm=3.0,
        measurement_id="abc",
    )
    root = ET.fromstring(header)
    assert root.tag == f"{{{ISMRMRD_NAMESPACE}}}ismrmrdHeader"
    info = parse_ismrmrd_header(header)
    assert info.encoded_matrix == (64, 36, 1)
    assert info.recon_matrix == (32, 32, 1)
    assert (info.encoding_step_1.minimum, info.encoding_step_1.maximum) == (0, 35)
    assert info.encoding_step_1.center == 18
    assert info.system_model == "Aera"
    assert info.field_strength_t == pytest.approx(SCANNER_FIELD_STRENGTH_T["Aera"])
    assert info.receiver_channels == 8
    assert info.recon_fov_mm == (140.0, 140.0, 3.0)
    assert info.encoded_fov_mm[0] == pytest.approx(280.0)


# ------------------------------------------------------------------------------------------
# Plans
# ------------------------------------------------------------------------------------------


def test_plan_names_volumes_by_anatomy_protocol_and_index() -> None:
    params = tiny_params(brain={"num_volumes": 3}, knee={"num_volumes": 2})
    plans = plan_fastmri_sample(params, seed=1)
    assert [plan.anatomy for plan in plans] == ["brain"] * 3 + ["knee"] * 2
    for plan in plans:
        assert plan.volume_id == f"sample_{plan.anatomy}_{plan.protocol}_{plan.index:03d}"
        assert plan.partition_id == f"{plan.anatomy}/{plan.volume_id}"
        expected = params.brain if plan.anatomy == "brain" else params.knee
        assert plan.protocol in expected.protocols
        assert plan.scanner in expected.scanners
    assert [plan.order for plan in plans] == list(range(5))
    assert {plan.total for plan in plans} == {5}


def test_plan_protocols_follow_their_weights() -> None:
    params = tiny_params(brain={"num_volumes": 200, "protocols": {"AXT2": 0.8, "AXT1": 0.2}})
    plans = plan_fastmri_sample(params, 0)
    protocols = [plan.protocol for plan in plans if plan.anatomy == "brain"]
    assert 0.7 < protocols.count("AXT2") / len(protocols) < 0.9
    assert set(protocols) == {"AXT2", "AXT1"}


def test_adding_volumes_keeps_existing_ones() -> None:
    small = tiny_params(brain={"num_volumes": 1}, knee={"num_volumes": 1})
    large = tiny_params(brain={"num_volumes": 3}, knee={"num_volumes": 2})
    small_plans = {plan.partition_id: plan for plan in plan_fastmri_sample(small, 3)}
    large_plans = {plan.partition_id: plan for plan in plan_fastmri_sample(large, 3)}
    assert set(small_plans) <= set(large_plans)
    for key, plan in small_plans.items():
        np.testing.assert_array_equal(
            generate_fastmri_volume(plan, small).kspace,
            generate_fastmri_volume(large_plans[key], large).kspace,
        )


def test_lazy_sample_generates_nothing_until_called(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = sample_fastmri.generate_fastmri_volume

    def counting(plan, params):
        calls.append(plan.partition_id)
        return real(plan, params)

    monkeypatch.setattr(sample_fastmri, "generate_fastmri_volume", counting)
    partitions = lazy_fastmri_sample(tiny_params(), seed=0)
    assert calls == []
    assert sorted(key.split("/")[0] for key in partitions) == ["brain", "brain", "knee", "knee"]
    volume = partitions[sorted(partitions)[0]]()
    assert isinstance(volume, FastMRIVolume)
    assert calls == [sorted(partitions)[0]]


# ------------------------------------------------------------------------------------------
# Volumes
# ------------------------------------------------------------------------------------------


def test_volume_follows_the_fastmri_multicoil_schema(volumes) -> None:
    for plan, volume in volumes.values():
        assert volume.kspace.dtype == np.complex64
        assert volume.kspace.shape == (3, 2, 64, 32)  # readout oversampled 2x
        assert volume.reconstruction.dtype == np.float32
        assert volume.reconstruction.shape == (3, 32, 32)
        assert volume.is_multicoil and volume.reconstruction_key == "reconstruction_rss"
        assert set(volume.attrs) == {"acquisition", "max", "norm", "patient_id"}
        assert volume.attrs["acquisition"] == plan.protocol
        assert len(volume.attrs["patient_id"]) == 64
        info = parse_ismrmrd_header(volume.ismrmrd_header)
        assert info.encoded_matrix == (64, 32, 1)
        assert info.recon_matrix == (32, 32, 1)
        assert info.encoding_step_1.center == 16
        assert info.system_model == plan.scanner
    patients = {volume.attrs["patient_id"] for _, volume in volumes.values()}
    assert len(patients) == len(volumes)


def test_reconstruction_is_rss_of_the_stored_kspace(volumes) -> None:
    for _, volume in volumes.values():
        rss = root_sum_of_squares(centered_ifft2(volume.kspace.astype(np.complex128)))
        cropped = rss[:, 16:48]
        np.testing.assert_allclose(volume.reconstruction, cropped, rtol=1e-5, atol=1e-9)
        assert volume.attrs["max"] == pytest.approx(float(volume.reconstruction.max()), rel=1e-6)
        norm = float(np.linalg.norm(volume.reconstruction.astype(np.float64)))
        assert volume.attrs["norm"] == pytest.approx(norm, rel=1e-5)


def test_values_sit_on_the_raw_fastmri_scale(volumes) -> None:
    for _, volume in volumes.values():
        assert 1e-4 < volume.attrs["max"] < 2e-3
        assert np.abs(volume.kspace).max() < 1e-1


def test_generation_is_deterministic_and_seeded() -> None:
    params = tiny_params()
    plan = plan_fastmri_sample(params, seed=11)[0]
    first, again = generate_fastmri_volume(plan, params), generate_fastmri_volume(plan, params)
    np.testing.assert_array_equal(first.kspace, again.kspace)
    np.testing.assert_array_equal(first.reconstruction, again.reconstruction)
    assert first.ismrmrd_header == again.ismrmrd_header and first.attrs == again.attrs
    other_plan = plan_fastmri_sample(params, seed=12)[0]
    other = generate_fastmri_volume(other_plan, params)
    assert not np.allclose(first.reconstruction, other.reconstruction)


def test_anatomy_and_scale_do_not_depend_on_the_image_size() -> None:
    small, large = tiny_params(image_size=(32, 32)), tiny_params(image_size=(64, 64))
    for plan in plan_fastmri_sample(small, seed=2):
        low = generate_fastmri_volume(plan, small).reconstruction
        high = generate_fastmri_volume(plan, large).reconstruction
        downsampled = high.reshape(3, 32, 2, 32, 2).mean(axis=(2, 4))
        correlation = np.corrcoef(low.ravel(), downsampled.ravel())[0, 1]
        assert correlation > 0.9


def test_knee_size_sets_how_much_of_the_field_of_view_the_knee_fills() -> None:
    def tissue_columns(size: float) -> float:
        params = tiny_params(
            noise_level=0.0, brain={"num_volumes": 0}, knee={"num_volumes": 1, "size": size}
        )
        volume = generate_fastmri_volume(plan_fastmri_sample(params, 3)[0], params)
        image = volume.reconstruction
        return float((image > 0.05 * image.max()).any(axis=(0, 1)).mean())

    assert tissue_columns(0.5) < tissue_columns(0.8) < tissue_columns(1.0)


def test_noise_level_sets_the_background_noise() -> None:
    def background(noise_level: float) -> float:
        params = tiny_params(
            noise_level=noise_level, brain={"num_volumes": 1}, knee={"num_volumes": 0}
        )
        volume = generate_fastmri_volume(plan_fastmri_sample(params, 0)[0], params)
        corners = volume.reconstruction[:, :3, :3]  # air outside the head
        return float(corners.mean() / volume.attrs["max"])

    assert background(0.0) < 1e-3
    assert 0.005 < background(0.02) < background(0.1)


def test_contrast_tables_follow_real_relative_intensities() -> None:
    t2, t1, flair = BRAIN_CONTRASTS["AXT2"], BRAIN_CONTRASTS["AXT1"], BRAIN_CONTRASTS["AXFLAIR"]
    tissue = BrainTissue
    assert t2[tissue.CSF] > t2[tissue.CORTICAL_GM] > t2[tissue.WHITE_MATTER]
    assert t1[tissue.WHITE_MATTER] > t1[tissue.CORTICAL_GM] > t1[tissue.CSF]
    assert flair[tissue.WM_LESION] > flair[tissue.CORTICAL_GM] > flair[tissue.CSF]
    pd, pdfs = KNEE_CONTRASTS["CORPD_FBK"], KNEE_CONTRASTS["CORPDFS_FBK"]
    assert pd[KneeTissue.FAT] > pd[KneeTissue.MUSCLE] > pd[KneeTissue.LIGAMENT]
    assert pdfs[KneeTissue.FLUID] > pdfs[KneeTissue.MUSCLE] > pdfs[KneeTissue.FAT]


# ------------------------------------------------------------------------------------------
# Brain vs knee: the structural difference the unlearning study relies on
# ------------------------------------------------------------------------------------------


def _radial_power_spectrum(image: np.ndarray, bins: int = 16) -> np.ndarray:
    """Log of the normalised, radially averaged power spectrum (spatial frequency content)."""
    power = np.abs(np.fft.fftshift(np.fft.fft2(image - image.mean()))) ** 2
    rows, columns = np.indices(power.shape)
    radius = np.hypot(rows - image.shape[0] // 2, columns - image.shape[1] // 2)
    edges = np.linspace(1, image.shape[0] // 2, bins + 1)
    rings = zip(edges[:-1], edges[1:], strict=True)
    spectrum = np.array([power[(radius >= low) & (radius < high)].mean() for low, high in rings])
    return np.log(spectrum / spectrum.sum())


def _orientation_histogram(image: np.ndarray, bins: int = 8) -> np.ndarray:
    """Gradient-magnitude-weighted histogram of edge orientations (structure direction)."""
    rows, columns = np.gradient(image / image.max())
    angles = np.mod(np.arctan2(rows, columns), np.pi)
    magnitude = np.hypot(rows, columns)
    histogram, _ = np.histogram(angles, bins=bins, range=(0, np.pi), weights=magnitude)
    return histogram / histogram.sum()


@pytest.fixture(scope="module")
def anatomy_descriptors() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    params = tiny_params(
        image_size=(64, 64),
        brain={"num_volumes": 5, "num_slices": 4},
        knee={"num_volumes": 5, "num_slices": 4},
    )
    anatomies, spectra, orientations = [], [], []
    for plan in plan_fastmri_sample(params, seed=0):
        slices = generate_fastmri_volume(plan, params).reconstruction
        anatomies.append(plan.anatomy)
        spectra.append(np.mean([_radial_power_spectrum(image) for image in slices], axis=0))
        orientations.append(np.mean([_orientation_histogram(image) for image in slices], axis=0))
    labels = np.array(anatomies)
    return {
        "spectrum": (np.array(spectra), labels),
        "orientation": (np.array(orientations), labels),
    }


@pytest.mark.parametrize(("descriptor", "margin"), [("spectrum", 1.8), ("orientation", 3.0)])
def test_brain_and_knee_differ_far_more_than_volumes_of_one_anatomy(
    anatomy_descriptors, descriptor: str, margin: float
) -> None:
    features, labels = anatomy_descriptors[descriptor]
    distances = np.linalg.norm(features[:, None] - features[None], axis=-1)
    same = labels[:, None] == labels[None]
    off_diagonal = ~np.eye(len(labels), dtype=bool)
    within = distances[same & off_diagonal].mean()
    between = distances[~same].mean()
    assert between > margin * within


def test_anatomy_is_recognisable_from_edge_orientations_alone(anatomy_descriptors) -> None:
    features, labels = anatomy_descriptors["orientation"]
    correct = 0
    for index in range(len(labels)):
        rest = np.arange(len(labels)) != index
        centroids = {
            anatomy: features[rest & (labels == anatomy)].mean(axis=0)
            for anatomy in ("brain", "knee")
        }
        distances = {
            anatomy: np.linalg.norm(features[index] - centroid)
            for anatomy, centroid in centroids.items()
        }
        guess = min(distances, key=distances.__getitem__)
        correct += guess == labels[index]
    assert correct == len(labels)


# ------------------------------------------------------------------------------------------
# Parameters
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"brain": {"protocols": {"CORPD_FBK": 1.0}}}, "protocols"),
        ({"knee": {"scanners": ["Signa"]}}, "scanners"),
        ({"image_size": [8, 64]}, "image_size"),
        ({"image_max_range": [1e-3, 1e-4]}, "image_max_range"),
        ({"num_coils": 0}, "num_coils"),
        ({"knee": {"size": 0.0}}, "size"),
        ({"noise": 0.1}, "noise"),
    ],
)
def test_invalid_parameters_name_the_field(settings: dict, field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        FastMRISampleParams.model_validate(settings)


def test_a_sample_without_volumes_is_rejected() -> None:
    with pytest.raises(ValidationError, match="num_volumes"):
        SampleDataParams.model_validate(
            {"fastmri": {"brain": {"num_volumes": 0}, "knee": {"num_volumes": 0}}}
        )

