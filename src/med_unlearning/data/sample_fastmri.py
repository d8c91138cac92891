"""Sample multi-coil MRI volumes in the fastMRI schema: brain (retain) and knee (forget).

One acquisition simulator (over 500 lines with its protocol contrasts, coil model and
ISMRMRD header; the anatomies are in :mod:`med_unlearning.data.phantoms`).

Each volume is simulated the way a fastMRI file came to be: an anatomy
(:mod:`med_unlearning.data.phantoms`) is rendered with a protocol's tissue contrast, given a
smooth random phase, seen through smooth coil sensitivities, Fourier transformed with
fastMRI's centred orthonormal convention, and measured with complex Gaussian noise. The
stored target ``reconstruction_rss`` is the root-sum-of-squares of the inverse transform of
that fully sampled noisy k-space, exactly as fastMRI computed its targets, and the values sit
on fastMRI's raw scale (image maxima around 1e-4..1e-3), so noise scales and loss weights
quoted by the studies keep their meaning.

Everything is deterministic from a seed; each volume's randomness derives from the seed and
its anatomy and index only, so adding volumes never changes existing ones.
"""

from __future__ import annotations

import functools
import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from med_unlearning.data.phantoms import (
    KNEE_SIZE,
    BrainTissue,
    KneeTissue,
    RandomWaveField,
    block_mean,
    brain_tissue_map,
    derive_rng,
    draw_brain_anatomy,
    draw_knee_anatomy,
    knee_tissue_slice,
    smooth_noise,
    stable_digest,
)
from med_unlearning.io.fastmri import ISMRMRD_NAMESPACE, FastMRIVolume
from med_unlearning.params.sample_data import (
    SCANNER_FIELD_STRENGTH_T,
    BrainSampleParams,
    FastMRISampleParams,
    KneeSampleParams,
)

__all__ = [
    "BRAIN_CONTRASTS",
    "KNEE_CONTRASTS",
    "SampleVolumePlan",
    "centered_fft2",
    "centered_ifft2",
    "coil_sensitivities",
    "generate_fastmri_volume",
    "ismrmrd_header",
    "lazy_fastmri_sample",
    "plan_fastmri_sample",
    "root_sum_of_squares",
]

logger = logging.getLogger(__name__)

Anatomy = Literal["brain", "knee"]

# Relative tissue intensities per protocol (before per-volume jitter and raw-scale gain).
# They follow the real relative signal: on T2 CSF is brightest and GM > WM; on T1 WM > GM >
# CSF; on FLAIR CSF is dark and lesions bright; on PD fat and marrow are bright, and fat
# suppression (PDFS) darkens them and leaves fluid brightest.
_T2 = {
    BrainTissue.CORTICAL_GM: 0.55, BrainTissue.BASAL_GANGLIA: 0.45, BrainTissue.WHITE_MATTER: 0.36,
    BrainTissue.WM_LESION: 0.8, BrainTissue.CSF: 1.0, BrainTissue.VENTRICLE: 1.0,
    BrainTissue.CEREBELLAR_GM: 0.55, BrainTissue.CEREBELLAR_WM: 0.36, BrainTissue.BRAINSTEM: 0.42,
    BrainTissue.INFARCTION: 0.9, BrainTissue.OTHER: 0.65, BrainTissue.SKULL: 0.03,
    BrainTissue.DIPLOE: 0.3, BrainTissue.SCALP: 0.6,
}  # fmt: skip
_T1 = {
    BrainTissue.CORTICAL_GM: 0.45, BrainTissue.BASAL_GANGLIA: 0.5, BrainTissue.WHITE_MATTER: 0.7,
    BrainTissue.WM_LESION: 0.45, BrainTissue.CSF: 0.12, BrainTissue.VENTRICLE: 0.12,
    BrainTissue.CEREBELLAR_GM: 0.45, BrainTissue.CEREBELLAR_WM: 0.68, BrainTissue.BRAINSTEM: 0.62,
    BrainTissue.INFARCTION: 0.15, BrainTissue.OTHER: 0.35, BrainTissue.SKULL: 0.03,
    BrainTissue.DIPLOE: 0.7, BrainTissue.SCALP: 0.9,
}  # fmt: skip
_FLAIR = {
    BrainTissue.CORTICAL_GM: 0.6, BrainTissue.BASAL_GANGLIA: 0.55, BrainTissue.WHITE_MATTER: 0.45,
    BrainTissue.WM_LESION: 0.95, BrainTissue.CSF: 0.06, BrainTissue.VENTRICLE: 0.05,
    BrainTissue.CEREBELLAR_GM: 0.58, BrainTissue.CEREBELLAR_WM: 0.45, BrainTissue.BRAINSTEM: 0.5,
    BrainTissue.INFARCTION: 0.15, BrainTissue.OTHER: 0.8, BrainTissue.SKULL: 0.03,
    BrainTissue.DIPLOE: 0.35, BrainTissue.SCALP: 0.55,
}  # fmt: skip
BRAIN_CONTRASTS: dict[str, dict[int, float]] = {
    "AXT2": _T2,
    "AXT1": _T1,
    "AXT1PRE": _T1,
    "AXT1POST": {**_T1, BrainTissue.OTHER: 0.9, BrainTissue.CSF: 0.16},  # enhancing finding
    "AXFLAIR": _FLAIR,
}
KNEE_CONTRASTS: dict[str, dict[int, float]] = {
    "CORPD_FBK": {
        KneeTissue.SKIN: 0.5, KneeTissue.FAT: 0.95, KneeTissue.MUSCLE: 0.35,
        KneeTissue.CORTICAL_BONE: 0.03, KneeTissue.MARROW: 0.85, KneeTissue.CARTILAGE: 0.62,
        KneeTissue.FLUID: 0.7, KneeTissue.LIGAMENT: 0.06,
    },
    "CORPDFS_FBK": {
        KneeTissue.SKIN: 0.3, KneeTissue.FAT: 0.12, KneeTissue.MUSCLE: 0.38,
        KneeTissue.CORTICAL_BONE: 0.03, KneeTissue.MARROW: 0.2, KneeTissue.CARTILAGE: 0.6,
        KneeTissue.FLUID: 1.0, KneeTissue.LIGAMENT: 0.06,
    },
}  # fmt: skip

# Header values per protocol: human protocol name, TR/TE/TI (ms), flip angle, sequence.
_SEQUENCES: dict[str, tuple[str, float, float, float, float, str]] = {
    "AXT2": ("AX T2", 6000.0, 113.0, 100.0, 150.0, "TurboSpinEcho"),
    "AXT1": ("AX T1", 250.0, 2.64, 100.0, 70.0, "Flash"),
    "AXT1PRE": ("AX T1 PRE", 250.0, 2.64, 100.0, 70.0, "Flash"),
    "AXT1POST": ("AX T1 POST", 250.0, 2.64, 100.0, 70.0, "Flash"),
    "AXFLAIR": ("AX FLAIR", 9000.0, 81.0, 2500.0, 150.0, "TurboSpinEcho"),
    "CORPD_FBK": ("COR PD", 2750.0, 27.0, 100.0, 130.0, "TurboSpinEcho"),
    "CORPDFS_FBK": ("COR PDFS", 2870.0, 33.0, 100.0, 130.0, "TurboSpinEcho"),
}
# Field of view (mm, in-plane) and slice thickness (mm) per anatomy, as in fastMRI.
_GEOMETRY: dict[str, tuple[float, float]] = {"brain": (220.0, 5.0), "knee": (140.0, 3.0)}
_GYROMAGNETIC_HZ_PER_T = 42.577478e6
_REFERENCE_FIELD_T = 2.89362


@dataclass(frozen=True)
class SampleVolumePlan:
    """What one sample volume will be, decided before any voxel is computed.

    Attributes:
        anatomy: ``brain`` or ``knee``.
        index: the volume's index within its anatomy.
        protocol: acquisition protocol (the file's ``acquisition`` attribute).
        scanner: scanner model written into the header.
        seed: the sample study's global seed.
        order: position of this volume in the whole sample (for progress messages).
        total: number of volumes in the whole sample.
    """

    anatomy: Anatomy
    index: int
    protocol: str
    scanner: str
    seed: int
    order: int = 0
    total: int = 1

    @property
    def volume_id(self) -> str:
        """File stem, e.g. ``sample_brain_AXT2_000``."""
        return f"sample_{self.anatomy}_{self.protocol}_{self.index:03d}"

    @property
    def partition_id(self) -> str:
        """Path below the raw folder without suffix, e.g. ``brain/sample_brain_AXT2_000``."""
        return f"{self.anatomy}/{self.volume_id}"


# --------------------------------------------------------------------------------------------
# Fourier transforms and coil combination (fastMRI conventions)
# --------------------------------------------------------------------------------------------


def centered_fft2(images: np.ndarray) -> np.ndarray:
    """Centred orthonormal 2D FFT over the last two axes (fastMRI's ``fft2c``)."""
    shifted = np.fft.ifftshift(images, axes=(-2, -1))
    return np.fft.fftshift(np.fft.fft2(shifted, norm="ortho"), axes=(-2, -1))


def centered_ifft2(kspace: np.ndarray) -> np.ndarray:
    """Centred orthonormal 2D inverse FFT over the last two axes (fastMRI's ``ifft2c``)."""
    shifted = np.fft.ifftshift(kspace, axes=(-2, -1))
    return np.fft.fftshift(np.fft.ifft2(shifted, norm="ortho"), axes=(-2, -1))


def root_sum_of_squares(coil_images: np.ndarray, coil_axis: int = -3) -> np.ndarray:
    """Root-sum-of-squares coil combination of complex coil images."""
    return np.sqrt(np.sum(np.abs(coil_images) ** 2, axis=coil_axis))


def coil_sensitivities(
    rng: np.random.Generator, num_coils: int, points: np.ndarray
) -> np.ndarray:
    """Smooth complex receive sensitivities of coils placed around the field of view.

    Each coil is a loop at a random-jittered position on a ring around the object; its
    magnitude falls off like a loop's field on its axis, its phase is a smooth ramp plus an
    offset. The maps are normalised so that ``sum_c |S_c|^2 = 1`` at every pixel, which
    makes the root-sum-of-squares of noise-free coil images equal the object's magnitude.

    Args:
        rng: the volume's generator.
        num_coils: number of coils.
        points: ``[2, H, W]`` pixel positions (field-of-view units).

    Returns:
        ``[num_coils, H, W]`` complex128 maps.
    """
    angles = 2.0 * np.pi * (np.arange(num_coils) + rng.uniform(0.0, 1.0)) / num_coils
    angles = angles + rng.uniform(-0.2, 0.2, size=num_coils)
    ring = rng.uniform(1.1, 1.4, size=num_coils)
    loop_radius = rng.uniform(0.7, 1.0, size=num_coils)
    maps = []
    for angle, distance, width in zip(angles, ring, loop_radius, strict=True):
        position = distance * np.array([np.cos(angle), np.sin(angle)])
        squared = (points[0] - position[0]) ** 2 + (points[1] - position[1]) ** 2
        magnitude = (1.0 + squared / width**2) ** -1.5
        ramp = rng.normal(0.0, 0.5, size=2)
        phase = rng.uniform(0, 2 * np.pi) + np.pi * (ramp[0] * points[0] + ramp[1] * points[1])
        maps.append(magnitude * np.exp(1j * phase))
    sensitivities = np.stack(maps)
    return sensitivities / np.sqrt(np.sum(np.abs(sensitivities) ** 2, axis=0, keepdims=True))


# --------------------------------------------------------------------------------------------
# ISMRMRD header
# --------------------------------------------------------------------------------------------


def _add(parent: ET.Element, tag: str, text: object | None = None) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ISMRMRD_NAMESPACE}}}{tag}")
    if text is not None:
        element.text = str(text)
    return element


def _add_xyz(parent: ET.Element, tag: str, values: tuple[object, object, object]) -> None:
    element = _add(parent, tag)
    for axis, value in zip("xyz", values, strict=True):
        _add(element, axis, value)


def _add_limit(parent: ET.Element, tag: str, maximum: int, centre: int = 0) -> None:
    element = _add(parent, tag)
    _add(element, "minimum", 0)
    _add(element, "maximum", maximum)
    _add(element, "center", centre)


def ismrmrd_header(
    *,
    protocol: str,
    scanner: str,
    kspace_size: tuple[int, int],
    recon_size: tuple[int, int],
    num_slices: int,
    num_coils: int,
    fov_mm: float,
    slice_thickness_mm: float,
    measurement_id: str,
) -> bytes:
    """An ISMRMRD XML header like those in fastMRI files.

    The fields readers use are those of fastMRI: ``encoding/encodedSpace/matrixSize``
    (``x`` = k-space rows = readout, ``y`` = k-space columns = phase encoding),
    ``encoding/reconSpace/matrixSize`` (the target image size) and
    ``encoding/encodingLimits/kspace_encoding_step_1`` (``center`` and ``maximum`` locate
    the acquired phase-encoding lines), plus the scanner in ``acquisitionSystemInformation``.

    Args:
        protocol: acquisition protocol (e.g. ``AXT2``).
        scanner: scanner model (a key of ``SCANNER_FIELD_STRENGTH_T``).
        kspace_size: k-space ``(rows, columns)``.
        recon_size: reconstruction ``(rows, columns)``.
        num_slices: slices in the volume.
        num_coils: receive channels.
        fov_mm: in-plane field of view of the reconstruction.
        slice_thickness_mm: slice thickness.
        measurement_id: an identifier of the measurement.

    Returns:
        UTF-8 encoded XML.
    """
    ET.register_namespace("", ISMRMRD_NAMESPACE)
    name, tr, te, ti, flip, sequence = _SEQUENCES[protocol]
    field_t = SCANNER_FIELD_STRENGTH_T[scanner]
    rows, columns = kspace_size
    recon_rows, recon_columns = recon_size

    root = ET.Element(f"{{{ISMRMRD_NAMESPACE}}}ismrmrdHeader")
    measurement = _add(root, "measurementInformation")
    _add(measurement, "measurementID", measurement_id)
    _add(measurement, "patientPosition", "HFS" if protocol.startswith("AX") else "FFS")
    _add(measurement, "protocolName", name)
    system = _add(root, "acquisitionSystemInformation")
    _add(system, "systemVendor", "SIEMENS")
    _add(system, "systemModel", scanner)
    _add(system, "systemFieldStrength_T", field_t)
    _add(system, "relativeReceiverNoiseBandwidth", 0.793)
    _add(system, "receiverChannels", num_coils)
    _add(system, "institutionName", "med_unlearning sample")
    conditions = _add(root, "experimentalConditions")
    _add(conditions, "H1resonanceFrequency_Hz", int(round(_GYROMAGNETIC_HZ_PER_T * field_t)))

    encoding = _add(root, "encoding")
    oversampling = rows / recon_rows
    encoded = _add(encoding, "encodedSpace")
    _add_xyz(encoded, "matrixSize", (rows, columns, 1))
    _add_xyz(
        encoded,
        "fieldOfView_mm",
        (fov_mm * oversampling, fov_mm * columns / recon_columns, slice_thickness_mm),
    )
    recon = _add(encoding, "reconSpace")
    _add_xyz(recon, "matrixSize", (recon_rows, recon_columns, 1))
    _add_xyz(recon, "fieldOfView_mm", (fov_mm, fov_mm, slice_thickness_mm))
    limits = _add(encoding, "encodingLimits")
    _add_limit(limits, "kspace_encoding_step_1", columns - 1, columns // 2)
    _add_limit(limits, "kspace_encoding_step_2", 0)
    _add_limit(limits, "average", 0)
    _add_limit(limits, "slice", num_slices - 1)
    for tag in ("contrast", "phase", "repetition", "set", "segment"):
        _add_limit(limits, tag, 0)
    _add(encoding, "trajectory", "cartesian")
    parallel = _add(encoding, "parallelImaging")
    acceleration = _add(parallel, "accelerationFactor")
    _add(acceleration, "kspace_encoding_step_1", 1)
    _add(acceleration, "kspace_encoding_step_2", 1)
    _add(parallel, "calibrationMode", "other")

    sequence_parameters = _add(root, "sequenceParameters")
    _add(sequence_parameters, "TR", tr)
    _add(sequence_parameters, "TE", te)
    _add(sequence_parameters, "TI", ti)
    _add(sequence_parameters, "flipAngle_deg", flip)
    _add(sequence_parameters, "sequence_type", sequence)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


# --------------------------------------------------------------------------------------------
# Volumes
# --------------------------------------------------------------------------------------------


def plan_fastmri_sample(params: FastMRISampleParams, seed: int) -> list[SampleVolumePlan]:
    """Decide every sample volume's anatomy, protocol and scanner (brain first, then knee).

    Each volume's choices derive from ``seed``, its anatomy and its index only.
    """
    plans: list[SampleVolumePlan] = []
    anatomies: tuple[tuple[Anatomy, BrainSampleParams | KneeSampleParams], ...] = (
        ("brain", params.brain),
        ("knee", params.knee),
    )
    for anatomy, settings in anatomies:
        protocols = sorted(settings.protocols)
        weights = np.array([settings.protocols[name] for name in protocols], dtype=np.float64)
        for index in range(settings.num_volumes):
            rng = derive_rng(seed, "fastmri", anatomy, index, "plan")
            protocol = str(rng.choice(protocols, p=weights / weights.sum()))
            scanner = str(rng.choice(settings.scanners))
            plans.append(SampleVolumePlan(anatomy, index, protocol, scanner, seed))
    total = len(plans)
    return [
        SampleVolumePlan(p.anatomy, p.index, p.protocol, p.scanner, p.seed, order, total)
        for order, p in enumerate(plans)
    ]


def _pixel_points(rows: int, columns: int, supersample: int) -> np.ndarray:
    """``[2, rows*s, columns*s]`` (row, column) positions with square pixels.

    Columns span (-1, 1); rows span ``(-rows/columns, rows/columns)``, so an oversampled
    readout sees more of the anatomy above and below, as in a real scan.
    """
    extent = rows / columns
    row_axis = ((np.arange(rows * supersample) + 0.5) / (rows * supersample) * 2 - 1) * extent
    column_axis = (np.arange(columns * supersample) + 0.5) / (columns * supersample) * 2 - 1
    return np.stack(np.meshgrid(row_axis, column_axis, indexing="ij"))


def _jittered_contrast(
    table: dict[int, float], rng: np.random.Generator, size: int
) -> np.ndarray:
    """Lookup table tissue class -> intensity, each tissue jittered by a few percent."""
    lookup = np.zeros(size)
    for tissue, value in sorted(table.items()):
        lookup[int(tissue)] = value * float(np.exp(rng.normal(0.0, 0.06)))
    return lookup


def _render_brain(
    plan: SampleVolumePlan,
    rng: np.random.Generator,
    texture_rng: np.random.Generator,
    rows: int,
    columns: int,
    slices: int,
) -> np.ndarray:
    """Magnitude images ``[slices, rows, columns]`` of an axial brain, peak ~1.

    ``rng`` decides the anatomy, contrast and slice placement (independent of the image
    size); ``texture_rng`` draws the pixel-scale texture.
    """
    supersample = 2
    anatomy = draw_brain_anatomy(
        rng, lesion_count=(0, 4), infarct_probability=0.1, other_probability=0.1
    )
    lookup = _jittered_contrast(BRAIN_CONTRASTS[plan.protocol], rng, len(BrainTissue))
    bottom, top = rng.uniform(-0.62, -0.5), rng.uniform(0.6, 0.72)
    gains = np.exp(rng.normal(0.0, 0.02, size=slices))
    points = _pixel_points(rows, columns, supersample)
    images = []
    for height, gain in zip(np.linspace(bottom, top, slices), gains, strict=True):
        # Radiological view: image left = patient right, image top = anterior.
        fov = np.stack([-points[1], -points[0], np.full(points.shape[1:], height)])
        labels = brain_tissue_map(anatomy, fov)
        texture = 1.0 + 0.05 * smooth_noise(texture_rng, labels.shape, sigma=1.0)
        images.append(block_mean(lookup[labels] * texture * gain, supersample))
    return np.stack(images)


def _render_knee(
    plan: SampleVolumePlan,
    rng: np.random.Generator,
    texture_rng: np.random.Generator,
    rows: int,
    columns: int,
    slices: int,
    size: float = KNEE_SIZE,
) -> np.ndarray:
    """Magnitude images ``[slices, rows, columns]`` of a coronal knee, peak ~1.

    ``rng`` decides the anatomy, contrast and slice placement (independent of the image
    size); ``texture_rng`` draws the pixel-scale texture; ``size`` is the knee's size
    relative to the field of view.
    """
    supersample = 2
    anatomy = draw_knee_anatomy(rng, size=size)
    lookup = _jittered_contrast(KNEE_CONTRASTS[plan.protocol], rng, len(KneeTissue))
    first, last = rng.uniform(0.15, 0.3), rng.uniform(0.82, 0.95)
    gains = np.exp(rng.normal(0.0, 0.02, size=slices))
    motion = rng.uniform(-0.01, 0.01, size=(slices, 3))  # small rotation/shift per slice
    points = _pixel_points(rows, columns, supersample)
    images = []
    for position, gain, (angle, *shift) in zip(
        np.linspace(first, last, slices), gains, motion, strict=True
    ):
        knee = knee_tissue_slice(
            anatomy, float(position), points, texture_rng, slice_rotation=angle, slice_shift=shift
        )
        noise = 1.0 + 0.03 * smooth_noise(texture_rng, knee.labels.shape, sigma=1.0)
        images.append(block_mean(lookup[knee.labels] * knee.texture * noise * gain, supersample))
    return np.stack(images)


def _smooth_phase(rng: np.random.Generator, points: np.ndarray, slices: int) -> np.ndarray:
    """Smooth random object phase ``[slices, H, W]`` (B0 inhomogeneity, RF phase)."""
    field = RandomWaveField.draw(rng, 2, (0.15, 0.6), num_waves=8)
    base = np.pi * 0.8 * field(points)
    offsets = rng.uniform(0.0, 2.0 * np.pi) + rng.normal(0.0, 0.2, size=slices)
    drift = RandomWaveField.draw(rng, 2, (0.2, 0.5), num_waves=4)(points)
    ramp = np.linspace(-0.5, 0.5, slices)
    return base[None] + offsets[:, None, None] + 0.5 * ramp[:, None, None] * drift[None]


def generate_fastmri_volume(plan: SampleVolumePlan, params: FastMRISampleParams) -> FastMRIVolume:
    """Simulate one multi-coil volume in the fastMRI schema.

    Args:
        plan: which volume (see :func:`plan_fastmri_sample`).
        params: sizes, coils, noise level and raw-scale range.

    Returns:
        A :class:`FastMRIVolume` with complex64 ``kspace [slices, coils, H, W]`` (``H`` =
        ``image_size[0] * readout_oversampling``), float32 ``reconstruction [slices, h, w]``
        (the RSS of the fully sampled noisy k-space, centre-cropped to ``image_size``),
        an ISMRMRD header and the attributes ``acquisition``, ``max``, ``norm``,
        ``patient_id``.
    """
    # Separate streams, so that the anatomy and the acquisition do not change with the image
    # size (only the pixel-scale texture and noise draws depend on it).
    anatomy_rng, texture_rng, acquisition_rng, noise_rng = (
        derive_rng(plan.seed, "fastmri", plan.anatomy, plan.index, stream)
        for stream in ("anatomy", "texture", "acquisition", "noise")
    )
    height, width = params.image_size
    rows = height * params.readout_oversampling
    settings = params.brain if plan.anatomy == "brain" else params.knee
    slices = settings.num_slices
    if plan.anatomy == "brain":
        magnitude = _render_brain(plan, anatomy_rng, texture_rng, rows, width, slices)
    else:
        magnitude = _render_knee(
            plan, anatomy_rng, texture_rng, rows, width, slices, size=params.knee.size
        )

    low, high = params.image_max_range
    peak = float(np.exp(acquisition_rng.uniform(np.log(low), np.log(high))))
    magnitude *= peak / magnitude.max()
    points = _pixel_points(rows, width, 1)
    sensitivities = coil_sensitivities(acquisition_rng, params.num_coils, points)
    objects = magnitude * np.exp(1j * _smooth_phase(acquisition_rng, points, slices))
    kspace = centered_fft2(objects[:, None] * sensitivities[None])

    field_t = SCANNER_FIELD_STRENGTH_T[plan.scanner]
    sigma = params.noise_level * peak * np.sqrt(_REFERENCE_FIELD_T / field_t)
    noise = noise_rng.normal(size=kspace.shape) + 1j * noise_rng.normal(size=kspace.shape)
    kspace = (kspace + sigma / np.sqrt(2.0) * noise).astype(np.complex64)

    rss = root_sum_of_squares(centered_ifft2(kspace.astype(np.complex128)))
    top = (rows - height) // 2
    reconstruction = rss[:, top : top + height].astype(np.float32)

    fov_mm, thickness_mm = _GEOMETRY[plan.anatomy]
    header = ismrmrd_header(
        protocol=plan.protocol,
        scanner=plan.scanner,
        kspace_size=(rows, width),
        recon_size=(height, width),
        num_slices=slices,
        num_coils=params.num_coils,
        fov_mm=fov_mm,
        slice_thickness_mm=thickness_mm,
        measurement_id=stable_digest(plan.seed, plan.volume_id, length=12),
    )
    attrs = {
        "acquisition": plan.protocol,
        "max": float(reconstruction.max()),
        "norm": float(np.linalg.norm(reconstruction.astype(np.float64))),
        "patient_id": stable_digest(plan.seed, "patient", plan.volume_id),
    }
    logger.info(
        "Sample fastMRI volume %d/%d: %s (%s, %d slices, %d coils)",
        plan.order + 1,
        plan.total,
        plan.partition_id,
        plan.scanner,
        slices,
        params.num_coils,
    )
    return FastMRIVolume(
        kspace=kspace, reconstruction=reconstruction, ismrmrd_header=header, attrs=attrs
    )


def lazy_fastmri_sample(
    params: FastMRISampleParams, seed: int
) -> dict[str, Callable[[], FastMRIVolume]]:
    """``{partition id: zero-argument callable}`` for every sample volume.

    Nothing is computed until a callable is called, so a writer that decides not to write
    (e.g. because the folder already holds data) costs nothing.
    """
    return {
        plan.partition_id: functools.partial(generate_fastmri_volume, plan, params)
        for plan in plan_fastmri_sample(params, seed)
    }
